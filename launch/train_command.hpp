// `longnet train`: train the LongNet decoder from a TOML config (configs/tiny.toml is the
// built-in default), on one rank or under mpirun (data-parallel x sequence-parallel).
#pragma once

#include <CLI/CLI.hpp>

namespace longnet {

// Registers the `train` subcommand on the `longnet` app.
void add_train_command(CLI::App& app);

}  // namespace longnet
