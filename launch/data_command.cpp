// `longnet data prepare`: a thin command line over prepare_token_data
// (model/training/token_shards.hpp), which holds the logic and documents the format.
#include "launch/data_command.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "model/training/token_shards.hpp"
#include "runtime/error.hpp"

namespace longnet {

void add_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "prepare token data for training");
  data->require_subcommand(1);

  auto options = std::make_shared<PrepareOptions>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* prepare = data->add_subcommand(
      "prepare",
      fmt::format("split source files into OUT/train.h5 and OUT/val.h5 (byte tokens, a NUL "
                  "after each file); default input: {} (*.go, from golang-1.19-src)",
                  kDefaultGoSourceDir));
  prepare->add_option("--input,-i", options->inputs,
                      "files or directories (walked recursively, in sorted order)");
  prepare->add_option("--ext", options->extensions,
                      "keep only files in directories ending in these, e.g. .go (default: all "
                      "files; .go for the default input)");
  prepare->add_option("--out,-o", options->out_dir, "output directory")->required();
  prepare
      ->add_option("--val-fraction", options->val_fraction,
                   "expected share of files in the validation split, in [0, 1)")
      ->capture_default_str();
  prepare->add_option("--seed", options->seed, "seed of the file-to-split hash")
      ->capture_default_str();
  prepare->add_flag("--quiet,-q", *quiet, "print only the summary line");
  prepare->callback([options, quiet] {
    PrepareOptions run = *options;
    if (!*quiet) {
      run.progress = [](const std::string& line) {
        fmt::print("{}\n", line);
        std::fflush(stdout);
      };
    }
    fmt::print("{}\n", prepare_token_data(run).describe());
    // Buffered output fails only when flushed: a summary lost to a full disk is an error.
    LONGNET_CHECK(std::fflush(stdout) == 0 && !std::ferror(stdout),
                  "cannot write the summary to standard output: {} (the token data was "
                  "written)",
                  std::strerror(errno));
  });
}

}  // namespace longnet
