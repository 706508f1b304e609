// `longnet eval`: evaluations of a trained checkpoint. `eval passkey` runs the passkey
// probe (model/training/passkey.hpp) on one rank or with each prompt split across the
// ranks of the job (sequence parallelism).
#pragma once

#include <CLI/CLI.hpp>

namespace longnet {

// Registers the `eval` subcommand on the `longnet` app.
void add_eval_command(CLI::App& app);

}  // namespace longnet
