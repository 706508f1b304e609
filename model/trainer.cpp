#include "model/trainer.hpp"

#include "comm/collective_step.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "kernels/philox.hpp"
#include "model/attention_core.hpp"
#include "model/longnet_decoder.hpp"
#include "model/ops/model_ops.hpp"
#include "model/trainer_agreement.hpp"
#include "model/training/checkpoint.hpp"
#include "model/training/directory_lock.hpp"
#include "model/training/json_log.hpp"
#include "model/training/token_dataset.hpp"
#include "runtime/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <numbers>

namespace longnet {
namespace {

// Set by SIGTERM / SIGUSR1 (how Slurm and other schedulers preempt); read at step
// boundaries, where the ranks agree on it and checkpoint together.
volatile std::sig_atomic_t g_stop_requested = 0;
extern "C" void request_stop(int) { g_stop_requested = 1; }

class SignalScope {
 public:
  SignalScope() {
    g_stop_requested = 0;
    old_term_ = std::signal(SIGTERM, request_stop);
    old_usr1_ = std::signal(SIGUSR1, request_stop);
  }
  ~SignalScope() {
    std::signal(SIGTERM, old_term_);
    std::signal(SIGUSR1, old_usr1_);
  }

 private:
  void (*old_term_)(int);
  void (*old_usr1_)(int);
};

DecoderConfig decoder_config(const TrainConfig& c) {
  DecoderConfig d;
  d.vocab_size = c.model.vocab_size;
  d.layers = c.model.layers;
  d.ffn_dim = c.model.ffn_dim;
  d.layer_norm_eps = c.model.layer_norm_eps;
  d.attention.dim = c.model.dim;
  d.attention.heads = c.model.heads;
  d.attention.segment_lengths = c.model.segment_lengths;
  d.attention.dilation_rates = c.model.dilation_rates;
  d.attention.causal = c.model.causal;
  d.attention.head_offsets = parse_head_offsets(c.model.head_offsets);
  d.attention.use_xpos = c.model.use_xpos;
  d.attention.xpos_scale_base = c.model.xpos_scale_base;
  d.attention.use_rel_pos_bias = c.model.use_rel_pos_bias;
  d.attention.rel_pos_buckets = c.model.rel_pos_buckets;
  d.attention.rel_pos_max_distance = c.model.rel_pos_max_distance;
  d.attention.dropout = c.model.dropout;
  d.attention.init_std = c.model.init_std;
  return d;
}

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// The gradient all-reduce, in buckets: one per group of parameters whose gradients the
// backward has finished (a decoder block, then the embedding and final norm), each
// packed and started (a non-blocking MPI_Iallreduce) while the backward goes on with
// the blocks below, and all completed and unpacked after it. Summation per element is
// the same as one all-reduce of everything.
class GradientBuckets {
 public:
  explicit GradientBuckets(Communicator& world) : world_(world) {}

  void start(std::span<Parameter* const> params) {
    Bucket bucket{{params.begin(), params.end()}, {}, nullptr};
    std::size_t total = 0;
    for (Parameter* p : params) total += static_cast<std::size_t>(p->grad.numel());
    bucket.flat.resize(total);
    std::size_t at = 0;
    for (Parameter* p : params) {
      std::ranges::copy(p->grad.span<float>(),
                        bucket.flat.begin() + static_cast<std::ptrdiff_t>(at));
      at += static_cast<std::size_t>(p->grad.numel());
    }
    bucket.pending =
        world_.start_all_reduce_in_place<float>(bucket.flat, ReduceOp::sum, "gradients");
    buckets_.push_back(std::move(bucket));
  }

  // Waits for every bucket and writes the sums back into the gradients.
  void finish() {
    for (Bucket& bucket : buckets_) {
      bucket.pending->wait();
      std::size_t at = 0;
      for (Parameter* p : bucket.params) {
        auto g = p->grad.span<float>();
        std::copy_n(bucket.flat.begin() + static_cast<std::ptrdiff_t>(at), g.size(), g.begin());
        at += g.size();
      }
    }
    buckets_.clear();
  }

 private:
  struct Bucket {
    std::vector<Parameter*> params;
    std::vector<float> flat;
    std::unique_ptr<PendingCollective> pending;
  };
  Communicator& world_;
  std::vector<Bucket> buckets_;
};

std::vector<NamedTensor> named(const std::vector<Parameter*>& params,
                               const std::vector<Tensor>& tensors) {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < params.size(); ++i) out.push_back({params[i]->name, tensors[i]});
  return out;
}

// Copies the tensor named `name` of a checkpoint group into `target` (same shape).
void restore_by_name(const std::vector<NamedTensor>& group, const std::string& name, Tensor& target,
                     const std::filesystem::path& file, const char* group_name) {
  const auto found = std::ranges::find(group, name, &NamedTensor::name);
  if (found == group.end() || found->tensor.shape() != target.shape()) {
    throw AgreedError(fmt::format(
        "checkpoint {}: /{} has {} for '{}', the model needs {}; resume with the config it "
        "was trained with",
        file.string(), group_name,
        found == group.end() ? std::string("nothing") : shape_string(found->tensor.shape()), name,
        shape_string(target.shape())));
  }
  std::ranges::copy(found->tensor.span<float>(), target.span<float>().begin());
}

}  // namespace

double learning_rate(const OptimizerSection& opt, int64_t step) {
  if (opt.warmup_steps > 0 && step < opt.warmup_steps) {
    return opt.lr * static_cast<double>(step + 1) / static_cast<double>(opt.warmup_steps);
  }
  const double span = static_cast<double>(std::max<int64_t>(1, opt.max_steps - opt.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - opt.warmup_steps) / span);
  return opt.min_lr + 0.5 * (opt.lr - opt.min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

TrainResult train(const TrainConfig& config, Communicator& world, const TrainOptions& options) {
  SignalScope signals;  // from the start: a preemption during setup is honoured too
  // Together: a rank whose config alone is invalid must not leave the others waiting in
  // the agreement below.
  run_collectively(world, [&] {
    validate(config);
    LONGNET_CHECK(!options.stop_at || *options.stop_at >= 1,
                  "--stop-at {} must be a step >= 1: it is the last step to train before "
                  "stopping with a checkpoint",
                  options.stop_at.value_or(0));
  });
  // Before any collective that depends on them: the same config, options and (below)
  // data on every rank.
  agree_on_config(world, config, options);
  const int world_size = world.size(), rank = world.rank();
  const int64_t sp = config.parallel.sp;
  if (world_size % sp != 0) {
    throw AgreedError(fmt::format(
        "parallel.sp = {} does not divide the {} ranks: run a multiple of {} ranks or set "
        "--set parallel.sp=N with N dividing {}",
        sp, world_size, sp, world_size));
  }
  const int64_t dp = world_size / sp;
  const int64_t group = rank / sp;
  const bool leader = rank == 0;
  auto say = [&](const std::string& line) {
    if (leader && !options.quiet) fmt::print("{}\n", line);
    if (leader && !options.quiet) std::fflush(stdout);
  };

  const DecoderConfig model_config = decoder_config(config);
  const int64_t batch = config.data.batch_size, seq_len = config.data.seq_len;
  const AttentionShape global_shape{batch, seq_len, model_config.attention.heads,
                                    model_config.attention.head_dim()};
  // Training runs the CPU kernels in float32; the model's GPU path is not wired in yet.
  auto kernels = make_dilated_attention(Device::cpu, DType::float32);
  auto ops = make_cpu_model_ops();
  std::unique_ptr<Communicator> sp_comm =
      world.split(static_cast<int>(group), rank % static_cast<int>(sp), fmt::format("sp{}", group));
  std::unique_ptr<AttentionCore> core =
      sp > 1 ? make_sequence_parallel_core(*sp_comm, model_config.attention.attention_config(),
                                           global_shape, *kernels)
             : make_local_attention_core(model_config.attention.attention_config(), global_shape,
                                         *kernels);
  const int64_t first = core->first_token(), local_tokens = core->local_shape().tokens;

  // Outputs first, before any work they would waste: rank 0 locks the checkpoint
  // directory (one run per directory; refused when it cannot be created or written) and
  // opens the JSON log.
  std::optional<DirectoryLock> checkpoint_lock;
  std::optional<JsonLog> json;
  run_collectively(world, [&] {
    if (!leader) return;
    checkpoint_lock.emplace(config.checkpoint.dir);
    if (!options.log_json.empty()) json.emplace(options.log_json);
  });

  // Steps that can fail on some ranks only (files) fail on all of them together.
  std::optional<TokenDataset> train_split, val_split;
  run_collectively(world, [&] {
    train_split.emplace(config.data.dir, "train");
    val_split.emplace(config.data.dir, "val");
  });
  const TokenDataset& train_data = *train_split;
  const TokenDataset& val_data = *val_split;
  agree_on_data(world, train_data.size(), val_data.size());

  LongNetDecoder model(model_config, DType::float32, config.seed);
  std::vector<Parameter*> params = model.parameters();
  std::vector<Tensor> adam_m, adam_v;
  for (Parameter* p : params) {
    adam_m.push_back(Tensor::zeros(p->value.shape()));
    adam_v.push_back(Tensor::zeros(p->value.shape()));
  }

  TrainResult result;
  result.unigram_entropy_nats = train_data.unigram_entropy_nats();
  int64_t step = 0;
  if (!options.resume.empty()) {
    // Rank 0 chooses; every rank loads that file or the job stops saying why.
    const std::optional<std::filesystem::path> file =
        agree_on_resume_file(world, options.resume, config.checkpoint.dir);
    if (!file) {
      say(fmt::format("resume auto: no checkpoint in {}; starting at step 0",
                      config.checkpoint.dir));
    }
    if (file) {
      CheckpointState state;
      run_collectively(world, [&] { state = read_checkpoint(*file); });
      agree_on_resumed_step(world, state.step, *file);
      std::vector<NamedTensor> current = named(params, [&] {
        std::vector<Tensor> v;
        for (Parameter* p : params) v.push_back(p->value);
        return v;
      }());
      run_collectively(world, [&] { check_checkpoint_matches(state, current); });
      TrainConfig saved;
      run_collectively(world, [&] { saved = parse_train_config_string(state.config_toml); });
      check_resume_config(saved, config, *file, say);
      // By name, not by position: a file's tensors may come back in another order (one
      // rewritten by h5py, say), and check_checkpoint_matches matches names.
      for (std::size_t i = 0; i < params.size(); ++i) {
        restore_by_name(state.params, params[i]->name, params[i]->value, *file,
                        checkpoint_layout::kParams);
        restore_by_name(state.adam_m, params[i]->name, adam_m[i], *file, checkpoint_layout::kAdamM);
        restore_by_name(state.adam_v, params[i]->name, adam_v[i], *file, checkpoint_layout::kAdamV);
      }
      step = state.step;
      say(fmt::format("resumed from {} at step {} (written by {} x {} ranks; now {} x {})",
                      file->string(), step, state.data_parallel, state.sequence_parallel, dp, sp));
    }
  }
  result.first_step = step;
  if (options.stop_at && *options.stop_at <= step) {
    throw AgreedError(
        fmt::format("--stop-at {} is not after step {}, where the run resumes: "
                    "nothing would be trained; give a later step",
                    *options.stop_at, step));
  }

  say(fmt::format(
      "longnet train: {} ranks = {} data-parallel x {} sequence-parallel; {} "
      "parameters; train {} tokens, val {} tokens; unigram entropy {:.4f} nats "
      "({:.4f} bits) per byte",
      world_size, dp, sp,
      [&] {
        int64_t n = 0;
        for (Parameter* p : params) n += p->value.numel();
        return n;
      }(),
      train_data.size(), val_data.size(), train_data.unigram_entropy_nats(),
      train_data.unigram_entropy_bits()));
  say(describe(config));

  // This rank's slice of a [B, seq_len + 1] window batch: inputs and next-token targets.
  std::vector<int32_t> window, tokens(static_cast<std::size_t>(batch * local_tokens)),
      targets(tokens.size());
  auto slice = [&] {
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < local_tokens; ++t) {
        const int64_t at = b * (seq_len + 1) + first + t;
        tokens[b * local_tokens + t] = window[at];
        targets[b * local_tokens + t] = window[at + 1];
      }
    }
  };

  auto checkpoint = [&](int64_t completed) {
    run_collectively(world, [&] {
      if (!leader) return;
      {
        CheckpointState state;
        state.config_toml = to_toml(config);
        state.step = completed;
        state.data_parallel = dp;
        state.sequence_parallel = sp;
        std::vector<Tensor> values;
        for (Parameter* p : params) values.push_back(p->value);
        state.params = named(params, values);
        state.adam_m = named(params, adam_m);
        state.adam_v = named(params, adam_v);
        state.rng_state = {config.seed};
        state.data_position = static_cast<uint64_t>(completed);
        check_checkpoint_finite(state);
        const auto path = write_checkpoint(config.checkpoint.dir, state,
                                           static_cast<int>(config.checkpoint.keep_last));
        say(fmt::format("checkpoint: {} (step {})", path.string(), completed));
      }
    });
  };

  // Validation: group g takes windows g, g + dp, ...; losses summed over the world, also
  // by position in the sequence, in buckets [0, 4), [4, 16), [16, 64), ... (powers of 4,
  // the last one ending at seq_len), to show that later positions, which see more
  // context, are predicted better.
  std::vector<int64_t> bucket_starts{0};
  for (int64_t edge = 4; edge < seq_len; edge *= 4) bucket_starts.push_back(edge);
  const int kBuckets = static_cast<int>(bucket_starts.size());
  result.validation_bucket_starts = bucket_starts;
  auto bucket_of = [&](int64_t position) {
    int b = 0;
    while (b + 1 < kBuckets && position >= bucket_starts[static_cast<std::size_t>(b + 1)]) ++b;
    return b;
  };
  auto validate_model = [&] {
    std::vector<double> sums(2 * kBuckets + 2, 0.0);  // per bucket: loss, count; total, count
    std::vector<double> per_token(tokens.size());
    for (int64_t i = group; i < config.eval.batches; i += dp) {
      val_data.validation_batch(i, batch, seq_len, window);
      slice();
      DecoderActivations saved;
      model.forward(tokens, targets, *core, *ops, saved, per_token);
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t t = 0; t < local_tokens; ++t) {
          const int bucket = bucket_of(first + t);
          sums[2 * bucket] += per_token[b * local_tokens + t];
          sums[2 * bucket + 1] += 1;
          sums[2 * kBuckets] += per_token[b * local_tokens + t];
          sums[2 * kBuckets + 1] += 1;
        }
      }
    }
    world.all_reduce_in_place<double>(sums, ReduceOp::sum, "validation");
    std::vector<double> by_position(kBuckets);
    for (int b = 0; b < kBuckets; ++b)
      by_position[b] = sums[2 * b] / std::max(1.0, sums[2 * b + 1]);
    result.validation_by_position = by_position;
    result.validation_loss = sums[2 * kBuckets] / std::max(1.0, sums[2 * kBuckets + 1]);
    return result.validation_loss;
  };

  const AdamWSettings adam_base{config.optimizer.lr, config.optimizer.beta1, config.optimizer.beta2,
                                config.optimizer.eps, config.optimizer.weight_decay};
  const double tokens_per_step = static_cast<double>(batch * seq_len * dp * config.data.grad_accum);
  GradientBuckets gradient_buckets(world);
  const auto start = std::chrono::steady_clock::now();
  const int64_t start_step = step;
  const int64_t end_step =
      std::min(config.optimizer.max_steps, options.stop_at.value_or(config.optimizer.max_steps));
  int64_t consecutive_skips = 0;
  while (step < end_step) {
    model.zero_grads();
    double loss_sum = 0;
    for (int64_t micro = 0; micro < config.data.grad_accum; ++micro) {
      train_data.sample_batch(config.seed,
                              static_cast<uint64_t>(step * config.data.grad_accum + micro), group,
                              batch, seq_len, window);
      slice();
      DecoderActivations saved;
      // Dropout masks: keyed by the group too (its rows are other sequences than another
      // group's rows with the same batch index), and by the micro-step.
      const AttentionRandomness randomness{
          true, mix64(config.seed ^ mix64(static_cast<uint64_t>(group))),
          static_cast<uint64_t>(step * config.data.grad_accum + micro)};
      loss_sum += model.forward(tokens, targets, *core, *ops, saved, {}, randomness);
      // The last micro-batch completes the gradients: reduce them bucket by bucket.
      const bool last = micro + 1 == config.data.grad_accum;
      model.backward(saved, 1.0 / tokens_per_step, *core, *ops,
                     last ? LongNetDecoder::GradientsReady([&](std::span<Parameter* const> ready) {
                       gradient_buckets.start(ready);
                     })
                          : LongNetDecoder::GradientsReady());
    }
    gradient_buckets.finish();
    std::vector<double> loss{loss_sum, static_cast<double>(g_stop_requested)};
    world.all_reduce_in_place<double>(loss, ReduceOp::sum, "loss");
    const double mean_loss = loss[0] / tokens_per_step;

    double norm2 = 0;
    for (Parameter* p : params) norm2 += ops->sum_of_squares(p->grad);
    const double norm = std::sqrt(norm2);
    AdamWSettings adam = adam_base;
    adam.lr = learning_rate(config.optimizer, step);
    // Loss and gradients are all-reduced: every rank reaches the same verdict.
    const bool skipped_now = !std::isfinite(mean_loss) || !std::isfinite(norm);
    if (skipped_now) {
      consecutive_skips += 1;
      const std::string what =
          fmt::format("step {}: the {} is {} (loss {}, gradient norm {})", step + 1,
                      std::isfinite(mean_loss) ? "gradient norm" : "loss",
                      std::isfinite(mean_loss) ? norm : mean_loss, mean_loss, norm);
      const auto newest = latest_checkpoint(config.checkpoint.dir);
      const std::string last = newest ? newest->string() : std::string("none");
      if (config.optimizer.on_nonfinite == "stop" ||
          consecutive_skips > config.optimizer.max_skipped_steps) {
        throw AgreedError(fmt::format(
            "{}{}: the training diverged and stops without writing a checkpoint of this "
            "state (the newest checkpoint: {}); lower optimizer.lr or set "
            "optimizer.grad_clip, then resume from that checkpoint{}",
            what,
            config.optimizer.on_nonfinite == "skip"
                ? fmt::format(", after {} skipped steps in a row (optimizer.max_skipped_steps "
                              "= {})",
                              consecutive_skips - 1, config.optimizer.max_skipped_steps)
                : "",
            last,
            config.optimizer.on_nonfinite == "stop" ? " (or set optimizer.on_nonfinite = \"skip\")"
                                                    : ""));
      }
      result.skipped_steps += 1;
      say(
          fmt::format("{}: step skipped (optimizer.on_nonfinite = \"skip\"; {} in a row, {} "
                      "in all)",
                      what, consecutive_skips, result.skipped_steps));
    } else {
      consecutive_skips = 0;
      if (config.optimizer.grad_clip > 0 && norm > config.optimizer.grad_clip) {
        for (Parameter* p : params) ops->scale(p->grad, config.optimizer.grad_clip / norm);
      }
      for (std::size_t i = 0; i < params.size(); ++i) {
        ops->adamw_step(params[i]->value, params[i]->grad, adam_m[i], adam_v[i], step + 1, adam,
                        params[i]->weight_decay);
      }
    }
    ++step;
    result.steps.push_back({step, mean_loss, adam.lr});

    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = static_cast<double>(step - start_step) * tokens_per_step / elapsed;
    if (json) {
      // JSON has no NaN or Infinity: a skipped step's values are null.
      json->write(fmt::format(
          R"({{"step": {}, "loss": {}, "lr": {:.6g}, "grad_norm": {}, "tokens_per_s": {:.1f}, "elapsed_s": {:.2f}{}}})",
          step, skipped_now ? "null" : fmt::format("{:.6f}", mean_loss), adam.lr,
          skipped_now ? "null" : fmt::format("{:.6g}", norm), rate, elapsed,
          skipped_now ? R"(, "skipped": true)" : ""));
    }
    if (step % config.log.every == 0 || step == end_step) {
      const double eta = static_cast<double>(end_step - step) * tokens_per_step / rate;
      say(
          fmt::format("step {:>6}/{} | loss {:.4f} | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s "
                      "| elapsed {} | eta {}",
                      step, config.optimizer.max_steps, mean_loss, adam.lr, norm, rate,
                      duration(elapsed), duration(eta)));
    }
    if (config.eval.every > 0 && step % config.eval.every == 0 && step < end_step) {
      const double val = validate_model();
      say(fmt::format("step {:>6} | validation loss {:.4f} nats/byte ({:.4f} bits)", step, val,
                      val / std::numbers::ln2));
      if (json) json->write(fmt::format(R"({{"step": {}, "validation_loss": {:.6f}}})", step, val));
    }
    const bool stop_now = loss[1] > 0;
    if (stop_now || (config.checkpoint.every > 0 && step % config.checkpoint.every == 0) ||
        step == end_step) {
      checkpoint(step);
    }
    if (stop_now) {
      say(
          fmt::format("stop requested (SIGTERM/SIGUSR1): checkpoint written at step {}; "
                      "resume with --resume auto",
                      step));
      result.interrupted = true;
      break;
    }
  }
  result.last_step = step;
  if (!result.interrupted) {
    const double val = validate_model();
    say(
        fmt::format("done: {} steps | final validation loss {:.4f} nats/byte ({:.4f} bits) | "
                    "unigram byte entropy {:.4f} nats ({:.4f} bits)",
                    step, val, val / std::numbers::ln2, result.unigram_entropy_nats,
                    result.unigram_entropy_nats / std::numbers::ln2));
    std::string buckets;
    for (int b = 0; b < kBuckets; ++b) {
      const int64_t end =
          b + 1 < kBuckets ? bucket_starts[static_cast<std::size_t>(b + 1)] : seq_len;
      buckets += fmt::format(" | [{}, {}) {:.4f}", bucket_starts[static_cast<std::size_t>(b)], end,
                             result.validation_by_position[static_cast<std::size_t>(b)]);
    }
    say(fmt::format("validation loss by position in the sequence (nats/byte){}", buckets));
    if (json) {
      json->write(fmt::format(
          R"({{"step": {}, "final_validation_loss": {:.6f}, "unigram_entropy": {:.6f}}})", step,
          val, result.unigram_entropy_nats));
    }
  }
  // A log that could not be written fails the run, after the training it did not stop.
  run_collectively(world, [&] {
    if (!leader) return;
    if (json) json->close();
    if (json && json->failure()) {
      fail(
          "{}: the training finished (last checkpoint at step {}), but its JSON log is "
          "incomplete; free space or choose another --log-json file",
          *json->failure(), step);
    }
    LONGNET_CHECK(options.quiet || (std::fflush(stdout) == 0 && !std::ferror(stdout)),
                  "cannot write the progress log (standard output): the training finished "
                  "(last checkpoint at step {}), but its log is incomplete",
                  step);
  });
  return result;
}

}  // namespace longnet
