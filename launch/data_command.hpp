// `longnet data`: prepares the token data the training job reads.
#pragma once

#include <CLI/CLI.hpp>

namespace longnet {

// Registers the `data` subcommand (with its subcommand `prepare`) on the `longnet` app.
void add_data_command(CLI::App& app);

}  // namespace longnet
