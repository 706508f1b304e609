#include "launch/eval_command.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "comm/collective_step.hpp"
#include "comm/communicator_factory.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "model/attention_core.hpp"
#include "model/training/checkpoint_model.hpp"
#include "model/training/decoder_config.hpp"
#include "model/training/passkey.hpp"
#include "model/training/passkey_scorer.hpp"
#include "model/training/token_dataset.hpp"
#include "runtime/atomic_output_file.hpp"
#include "runtime/error.hpp"

namespace longnet {
namespace {

struct PasskeyCommandOptions {
  std::filesystem::path checkpoint;  // a file, or a directory (its newest checkpoint)
  std::filesystem::path data;        // empty: the checkpoint config's data.dir
  std::filesystem::path csv;         // empty: no CSV
  PasskeyOptions passkey;
  int64_t batch = 4;
  bool quiet = false;
};

void run_passkey(const PasskeyCommandOptions& options) {
  auto world = make_world_communicator();
  const bool leader = world->rank() == 0;
  const auto say = [&](const std::string& line) {
    if (!leader || options.quiet) return;
    fmt::print("{}\n", line);
    std::fflush(stdout);
  };

  // Every rank reads the same files; a failure on any of them ends all of them together.
  std::filesystem::path file;
  CheckpointModel loaded;
  std::optional<TokenDataset> filler;
  PasskeyOptions passkey = options.passkey;
  std::optional<AtomicOutputFile> csv_out;
  run_collectively(*world, [&] {
    file = resolve_checkpoint(options.checkpoint);
    loaded = load_checkpoint_model(file);
    passkey.seq_len = loaded.config.data.seq_len;
    check_passkey_options(passkey);
    LONGNET_CHECK(options.batch >= 1, "--batch {} must be >= 1", options.batch);
    filler.emplace(
        options.data.empty() ? std::filesystem::path(loaded.config.data.dir) : options.data, "val");
    // The CSV's temporary is made now, so an unwritable path fails before the work.
    if (leader && !options.csv.empty()) csv_out.emplace(options.csv);
  });

  const DecoderConfig model_config = loaded.model->config();
  const AttentionShape shape =
      model_config.attention.attention_shape(options.batch, passkey.seq_len);
  auto kernels = make_dilated_attention(Device::cpu, DType::float32);
  auto ops = make_cpu_model_ops();
  std::unique_ptr<AttentionCore> core =
      world->size() > 1
          ? make_sequence_parallel_core(*world, model_config.attention.attention_config(), shape,
                                        *kernels)
          : make_local_attention_core(model_config.attention.attention_config(), shape, *kernels);
  say(
      fmt::format("eval passkey: {} (step {}), {} tokens per prompt on {} rank(s), {} trials per "
                  "bucket, {}-digit keys, filler from {}",
                  file.string(), loaded.step, passkey.seq_len, world->size(), passkey.trials,
                  passkey.key_digits, filler->name()));
  const PasskeyReport report =
      evaluate_passkey(*filler, passkey, options.batch,
                       make_decoder_passkey_scorer(*loaded.model, *core, *ops, *world), say);
  say(passkey_table(report));
  run_collectively(*world, [&] {
    if (!csv_out) return;
    std::ofstream out(csv_out->path(), std::ios::binary | std::ios::trunc);
    out << passkey_csv(report);
    out.close();
    LONGNET_CHECK(out.good(), "cannot write {}: {}", options.csv.string(), std::strerror(errno));
    csv_out->commit();
    say(fmt::format("wrote {}", options.csv.string()));
  });
}

}  // namespace

void add_eval_command(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "evaluate a trained checkpoint");
  eval->require_subcommand(1);

  auto options = std::make_shared<PasskeyCommandOptions>();
  CLI::App* passkey = eval->add_subcommand(
      "passkey",
      "the passkey probe: plant a random key in validation text, ask for it at the end of the "
      "sequence, report accuracy and the key's loss by distance; under mpirun each prompt is "
      "split across the ranks");
  passkey
      ->add_option("--checkpoint", options->checkpoint,
                   "a checkpoint file, or a directory (its newest complete checkpoint)")
      ->required();
  passkey->add_option("--data", options->data,
                      "token data directory for the filler text (its val.h5; default: the "
                      "checkpoint config's data.dir)");
  passkey->add_option("--trials", options->passkey.trials, "prompts per distance bucket")
      ->capture_default_str();
  passkey->add_option("--key-digits", options->passkey.key_digits, "digits in each key")
      ->capture_default_str();
  passkey
      ->add_option("--buckets", options->passkey.bucket_edges,
                   "distance bucket edges, increasing (default: 32, 64, 128, ... up to the "
                   "longest distance the sequence holds)")
      ->delimiter(',');
  passkey->add_option("--seed", options->passkey.seed, "seed of the keys and distances")
      ->capture_default_str();
  passkey->add_option("--batch", options->batch, "prompts per forward pass")->capture_default_str();
  passkey->add_option("--csv", options->csv, "also write the table as CSV to this file");
  passkey->add_flag("--quiet,-q", options->quiet, "print nothing");
  passkey->callback([options] { run_passkey(*options); });
}

}  // namespace longnet
