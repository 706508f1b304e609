// `longnet demo`: the built-in default job until training exists.
#pragma once

#include <CLI/CLI.hpp>

namespace longnet {

// Registers the `demo` subcommand on the `longnet` app.
void add_demo_command(CLI::App& app);

}  // namespace longnet
