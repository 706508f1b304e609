// `longnet info`: what this build is and where its ranks run. The first thing to run on a
// new machine or allocation, and the first lines of every scaling report.
#pragma once

#include <CLI/CLI.hpp>

namespace longnet {

void add_info_command(CLI::App& app);

}  // namespace longnet
