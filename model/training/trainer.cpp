#include "model/training/trainer.hpp"

#include "comm/collective_step.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "kernels/philox.hpp"
#include "model/attention_core.hpp"
#include "model/longnet_decoder.hpp"
#include "model/ops/model_ops.hpp"
#include "model/training/checkpoint.hpp"
#include "model/training/decoder_config.hpp"
#include "model/training/directory_lock.hpp"
#include "model/training/json_log.hpp"
#include "model/training/token_dataset.hpp"
#include "model/training/trainer_agreement.hpp"
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

namespace {

// One training job: set up by the constructor (agreement, communicators, outputs, data,
// model, optimizer state), then resume(), and step() / validate() / save() in run().
// Every member that calls a collective is called by every rank in the same order.
class Trainer {
 public:
  Trainer(const TrainConfig& config, Communicator& world, const TrainOptions& options);
  TrainResult run();

 private:
  void say(const std::string& line) const;
  // Resumes per options.resume (rank 0 chooses the file; every rank loads it).
  void resume();
  // What one optimizer step did, for the log.
  struct StepOutcome {
    double loss = 0;  // mean training loss (nats per token)
    double grad_norm = 0;
    double lr = 0;
    bool skipped = false;         // non-finite loss or gradient norm, with on_nonfinite = "skip"
    bool stop_requested = false;  // SIGTERM / SIGUSR1 on any rank
  };
  // One optimizer step: all micro-batches, the gradient all-reduce, AdamW or a skip.
  StepOutcome step();
  // The validation loss (nats per token) over config.eval.batches windows, also by
  // position in the sequence (result_.validation_by_position).
  double validate();
  // Rank 0 writes the checkpoint of `completed` steps.
  void save(int64_t completed);
  // This rank's slice of the [B, seq_len + 1] window batch: inputs and targets.
  void slice();
  int64_t parameter_count() const;
  int bucket_of(int64_t position) const;

  const TrainConfig& config_;
  Communicator& world_;
  const TrainOptions& options_;
  int64_t sp_ = 1, dp_ = 1, group_ = 0;
  bool leader_ = false;
  int64_t batch_ = 0, seq_len_ = 0;
  std::unique_ptr<DilatedAttentionOp> kernels_;
  std::unique_ptr<ModelOps> ops_;
  std::unique_ptr<Communicator> sp_comm_;
  std::unique_ptr<AttentionCore> core_;
  int64_t first_ = 0, local_tokens_ = 0;
  std::optional<DirectoryLock> checkpoint_lock_;
  std::optional<JsonLog> json_;
  std::optional<TokenDataset> train_data_, val_data_;
  std::optional<LongNetDecoder> model_;
  std::vector<Parameter*> params_;
  std::vector<Tensor> adam_m_, adam_v_;
  std::vector<int32_t> window_, tokens_, targets_;
  std::vector<int64_t> bucket_starts_;
  double tokens_per_step_ = 0;
  int64_t step_ = 0, consecutive_skips_ = 0;
  TrainResult result_;
};

Trainer::Trainer(const TrainConfig& config, Communicator& world, const TrainOptions& options)
    : config_(config), world_(world), options_(options) {
  // Together: a rank whose config alone is invalid must not leave the others waiting in
  // the agreement below.
  run_collectively(world_, [&] {
    ::longnet::validate(config_);
    LONGNET_CHECK(!options_.stop_at || *options_.stop_at >= 1,
                  "--stop-at {} must be a step >= 1: it is the last step to train before "
                  "stopping with a checkpoint",
                  options_.stop_at.value_or(0));
  });
  // Before any collective that depends on them: the same config, options and (below)
  // data on every rank.
  agree_on_config(world_, config_, options_);
  const int world_size = world_.size(), rank = world_.rank();
  sp_ = config_.parallel.sp;
  if (world_size % sp_ != 0) {
    throw AgreedError(fmt::format(
        "parallel.sp = {} does not divide the {} ranks: run a multiple of {} ranks or set "
        "--set parallel.sp=N with N dividing {}",
        sp_, world_size, sp_, world_size));
  }
  dp_ = world_size / sp_;
  group_ = rank / sp_;
  leader_ = rank == 0;

  const DecoderConfig model_config = decoder_config(config_);
  batch_ = config_.data.batch_size;
  seq_len_ = config_.data.seq_len;
  const AttentionShape global_shape = model_config.attention.attention_shape(batch_, seq_len_);
  // Training runs the CPU kernels in float32; the model's GPU path is not wired in yet.
  kernels_ = make_dilated_attention(Device::cpu, DType::float32);
  ops_ = make_cpu_model_ops();
  sp_comm_ = world_.split(static_cast<int>(group_), rank % static_cast<int>(sp_),
                          fmt::format("sp{}", group_));
  core_ = sp_ > 1
              ? make_sequence_parallel_core(*sp_comm_, model_config.attention.attention_config(),
                                            global_shape, *kernels_)
              : make_local_attention_core(model_config.attention.attention_config(), global_shape,
                                          *kernels_);
  first_ = core_->first_token();
  local_tokens_ = core_->local_shape().tokens;

  // Outputs first, before any work they would waste: rank 0 locks the checkpoint
  // directory (one run per directory; refused when it cannot be created or written) and
  // opens the JSON log.
  run_collectively(world_, [&] {
    if (!leader_) return;
    checkpoint_lock_.emplace(config_.checkpoint.dir);
    if (!options_.log_json.empty()) json_.emplace(options_.log_json);
  });

  // Steps that can fail on some ranks only (files) fail on all of them together.
  run_collectively(world_, [&] {
    train_data_.emplace(config_.data.dir, "train");
    val_data_.emplace(config_.data.dir, "val");
  });
  agree_on_data(world_, train_data_->size(), val_data_->size());

  model_.emplace(model_config, DType::float32, config_.seed);
  params_ = model_->parameters();
  for (Parameter* p : params_) {
    adam_m_.push_back(Tensor::zeros(p->value.shape()));
    adam_v_.push_back(Tensor::zeros(p->value.shape()));
  }
  result_.unigram_entropy_nats = train_data_->unigram_entropy_nats();

  tokens_.resize(static_cast<std::size_t>(batch_ * local_tokens_));
  targets_.resize(tokens_.size());
  // Validation by position, in buckets [0, 4), [4, 16), [16, 64), ... (powers of 4, the
  // last one ending at seq_len), to show that later positions, which see more context,
  // are predicted better.
  bucket_starts_ = {0};
  for (int64_t edge = 4; edge < seq_len_; edge *= 4) bucket_starts_.push_back(edge);
  result_.validation_bucket_starts = bucket_starts_;
  tokens_per_step_ = static_cast<double>(batch_ * seq_len_ * dp_ * config_.data.grad_accum);
}

void Trainer::say(const std::string& line) const {
  if (leader_ && !options_.quiet) fmt::print("{}\n", line);
  if (leader_ && !options_.quiet) std::fflush(stdout);
}

int64_t Trainer::parameter_count() const {
  int64_t n = 0;
  for (const Parameter* p : params_) n += p->value.numel();
  return n;
}

void Trainer::resume() {
  if (options_.resume.empty()) return;
  // Rank 0 chooses; every rank loads that file or the job stops saying why.
  const std::optional<std::filesystem::path> file =
      agree_on_resume_file(world_, options_.resume, config_.checkpoint.dir);
  if (!file) {
    say(fmt::format("resume auto: no checkpoint in {}; starting at step 0",
                    config_.checkpoint.dir));
    return;
  }
  CheckpointState state;
  run_collectively(world_, [&] { state = read_checkpoint(*file); });
  agree_on_resumed_step(world_, state.step, *file);
  std::vector<Tensor> values;
  for (Parameter* p : params_) values.push_back(p->value);
  const std::vector<NamedTensor> current = named(params_, values);
  run_collectively(world_, [&] { check_checkpoint_matches(state, current); });
  TrainConfig saved;
  run_collectively(world_, [&] { saved = parse_train_config_string(state.config_toml); });
  check_resume_config(saved, config_, *file, [this](const std::string& line) { say(line); });
  // By name, not by position: a file's tensors may come back in another order (one
  // rewritten by h5py, say), and check_checkpoint_matches matches names.
  for (std::size_t i = 0; i < params_.size(); ++i) {
    restore_by_name(state.params, params_[i]->name, params_[i]->value, *file,
                    checkpoint_layout::kParams);
    restore_by_name(state.adam_m, params_[i]->name, adam_m_[i], *file, checkpoint_layout::kAdamM);
    restore_by_name(state.adam_v, params_[i]->name, adam_v_[i], *file, checkpoint_layout::kAdamV);
  }
  step_ = state.step;
  say(fmt::format("resumed from {} at step {} (written by {} x {} ranks; now {} x {})",
                  file->string(), step_, state.data_parallel, state.sequence_parallel, dp_, sp_));
}

void Trainer::slice() {
  for (int64_t b = 0; b < batch_; ++b) {
    for (int64_t t = 0; t < local_tokens_; ++t) {
      const int64_t at = b * (seq_len_ + 1) + first_ + t;
      tokens_[b * local_tokens_ + t] = window_[at];
      targets_[b * local_tokens_ + t] = window_[at + 1];
    }
  }
}

void Trainer::save(int64_t completed) {
  run_collectively(world_, [&] {
    if (!leader_) return;
    CheckpointState state;
    state.config_toml = to_toml(config_);
    state.step = completed;
    state.data_parallel = dp_;
    state.sequence_parallel = sp_;
    std::vector<Tensor> values;
    for (Parameter* p : params_) values.push_back(p->value);
    state.params = named(params_, values);
    state.adam_m = named(params_, adam_m_);
    state.adam_v = named(params_, adam_v_);
    state.rng_state = {config_.seed};
    state.data_position = static_cast<uint64_t>(completed);
    check_checkpoint_finite(state);
    const auto path = write_checkpoint(config_.checkpoint.dir, state,
                                       static_cast<int>(config_.checkpoint.keep_last));
    say(fmt::format("checkpoint: {} (step {})", path.string(), completed));
  });
}

int Trainer::bucket_of(int64_t position) const {
  const int buckets = static_cast<int>(bucket_starts_.size());
  int b = 0;
  while (b + 1 < buckets && position >= bucket_starts_[static_cast<std::size_t>(b + 1)]) ++b;
  return b;
}

// Group g takes windows g, g + dp, ...; losses summed over the world.
double Trainer::validate() {
  const int kBuckets = static_cast<int>(bucket_starts_.size());
  std::vector<double> sums(2 * kBuckets + 2, 0.0);  // per bucket: loss, count; total, count
  std::vector<double> per_token(tokens_.size());
  for (int64_t i = group_; i < config_.eval.batches; i += dp_) {
    val_data_->validation_batch(i, batch_, seq_len_, window_);
    slice();
    DecoderActivations saved;
    model_->forward(tokens_, targets_, *core_, *ops_, saved, per_token);
    for (int64_t b = 0; b < batch_; ++b) {
      for (int64_t t = 0; t < local_tokens_; ++t) {
        const int bucket = bucket_of(first_ + t);
        sums[2 * bucket] += per_token[b * local_tokens_ + t];
        sums[2 * bucket + 1] += 1;
        sums[2 * kBuckets] += per_token[b * local_tokens_ + t];
        sums[2 * kBuckets + 1] += 1;
      }
    }
  }
  world_.all_reduce_in_place<double>(sums, ReduceOp::sum, "validation");
  std::vector<double> by_position(kBuckets);
  for (int b = 0; b < kBuckets; ++b) by_position[b] = sums[2 * b] / std::max(1.0, sums[2 * b + 1]);
  result_.validation_by_position = by_position;
  result_.validation_loss = sums[2 * kBuckets] / std::max(1.0, sums[2 * kBuckets + 1]);
  return result_.validation_loss;
}

Trainer::StepOutcome Trainer::step() {
  const auto started = std::chrono::steady_clock::now();
  const AdamWSettings adam_base{config_.optimizer.lr, config_.optimizer.beta1,
                                config_.optimizer.beta2, config_.optimizer.eps,
                                config_.optimizer.weight_decay};
  GradientBuckets gradient_buckets(world_);
  model_->zero_grads();
  double loss_sum = 0;
  for (int64_t micro = 0; micro < config_.data.grad_accum; ++micro) {
    train_data_->sample_batch(config_.seed,
                              static_cast<uint64_t>(step_ * config_.data.grad_accum + micro),
                              group_, batch_, seq_len_, window_);
    slice();
    DecoderActivations saved;
    // Dropout masks: keyed by the group too (its rows are other sequences than another
    // group's rows with the same batch index), and by the micro-step.
    const AttentionRandomness randomness{
        true, mix64(config_.seed ^ mix64(static_cast<uint64_t>(group_))),
        static_cast<uint64_t>(step_ * config_.data.grad_accum + micro)};
    loss_sum += model_->forward(tokens_, targets_, *core_, *ops_, saved, {}, randomness);
    // The last micro-batch completes the gradients: reduce them bucket by bucket.
    const bool last = micro + 1 == config_.data.grad_accum;
    model_->backward(saved, 1.0 / tokens_per_step_, *core_, *ops_,
                     last ? LongNetDecoder::GradientsReady([&](std::span<Parameter* const> ready) {
                       gradient_buckets.start(ready);
                     })
                          : LongNetDecoder::GradientsReady());
  }
  gradient_buckets.finish();
  std::vector<double> loss{loss_sum, static_cast<double>(g_stop_requested)};
  world_.all_reduce_in_place<double>(loss, ReduceOp::sum, "loss");
  const double mean_loss = loss[0] / tokens_per_step_;

  double norm2 = 0;
  for (Parameter* p : params_) norm2 += ops_->sum_of_squares(p->grad);
  const double norm = std::sqrt(norm2);
  AdamWSettings adam = adam_base;
  adam.lr = learning_rate(config_.optimizer, step_);
  // Loss and gradients are all-reduced: every rank reaches the same verdict.
  const bool skipped_now = !std::isfinite(mean_loss) || !std::isfinite(norm);
  if (skipped_now) {
    consecutive_skips_ += 1;
    const std::string what =
        fmt::format("step {}: the {} is {} (loss {}, gradient norm {})", step_ + 1,
                    std::isfinite(mean_loss) ? "gradient norm" : "loss",
                    std::isfinite(mean_loss) ? norm : mean_loss, mean_loss, norm);
    const auto newest = latest_checkpoint(config_.checkpoint.dir);
    const std::string last = newest ? newest->string() : std::string("none");
    if (config_.optimizer.on_nonfinite == "stop" ||
        consecutive_skips_ > config_.optimizer.max_skipped_steps) {
      throw AgreedError(fmt::format(
          "{}{}: the training diverged and stops without writing a checkpoint of this "
          "state (the newest checkpoint: {}); lower optimizer.lr or set "
          "optimizer.grad_clip, then resume from that checkpoint{}",
          what,
          config_.optimizer.on_nonfinite == "skip"
              ? fmt::format(", after {} skipped steps in a row (optimizer.max_skipped_steps "
                            "= {})",
                            consecutive_skips_ - 1, config_.optimizer.max_skipped_steps)
              : "",
          last,
          config_.optimizer.on_nonfinite == "stop" ? " (or set optimizer.on_nonfinite = \"skip\")"
                                                   : ""));
    }
    result_.skipped_steps += 1;
    say(
        fmt::format("{}: step skipped (optimizer.on_nonfinite = \"skip\"; {} in a row, {} "
                    "in all)",
                    what, consecutive_skips_, result_.skipped_steps));
  } else {
    consecutive_skips_ = 0;
    if (config_.optimizer.grad_clip > 0 && norm > config_.optimizer.grad_clip) {
      for (Parameter* p : params_) ops_->scale(p->grad, config_.optimizer.grad_clip / norm);
    }
    for (std::size_t i = 0; i < params_.size(); ++i) {
      ops_->adamw_step(params_[i]->value, params_[i]->grad, adam_m_[i], adam_v_[i], step_ + 1, adam,
                       params_[i]->weight_decay);
    }
  }
  ++step_;
  result_.steps.push_back(
      {step_, mean_loss, adam.lr,
       std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()});
  return {mean_loss, norm, adam.lr, skipped_now, loss[1] > 0};
}

TrainResult Trainer::run() {
  resume();
  result_.first_step = step_;
  if (options_.stop_at && *options_.stop_at <= step_) {
    throw AgreedError(
        fmt::format("--stop-at {} is not after step {}, where the run resumes: "
                    "nothing would be trained; give a later step",
                    *options_.stop_at, step_));
  }
  say(fmt::format(
      "longnet train: {} ranks = {} data-parallel x {} sequence-parallel; {} "
      "parameters; train {} tokens, val {} tokens; unigram entropy {:.4f} nats "
      "({:.4f} bits) per byte",
      world_.size(), dp_, sp_, parameter_count(), train_data_->size(), val_data_->size(),
      train_data_->unigram_entropy_nats(), train_data_->unigram_entropy_bits()));
  say(describe(config_));

  const auto start = std::chrono::steady_clock::now();
  const int64_t start_step = step_;
  const int64_t end_step =
      std::min(config_.optimizer.max_steps, options_.stop_at.value_or(config_.optimizer.max_steps));
  while (step_ < end_step) {
    const StepOutcome done = step();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = static_cast<double>(step_ - start_step) * tokens_per_step_ / elapsed;
    if (json_) {
      // JSON has no NaN or Infinity: a skipped step's values are null.
      json_->write(fmt::format(
          R"({{"step": {}, "loss": {}, "lr": {:.6g}, "grad_norm": {}, "tokens_per_s": {:.1f}, "elapsed_s": {:.2f}{}}})",
          step_, done.skipped ? "null" : fmt::format("{:.6f}", done.loss), done.lr,
          done.skipped ? "null" : fmt::format("{:.6g}", done.grad_norm), rate, elapsed,
          done.skipped ? R"(, "skipped": true)" : ""));
    }
    if (step_ % config_.log.every == 0 || step_ == end_step) {
      const double eta = static_cast<double>(end_step - step_) * tokens_per_step_ / rate;
      say(
          fmt::format("step {:>6}/{} | loss {:.4f} | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s "
                      "| elapsed {} | eta {}",
                      step_, config_.optimizer.max_steps, done.loss, done.lr, done.grad_norm, rate,
                      duration(elapsed), duration(eta)));
    }
    if (config_.eval.every > 0 && step_ % config_.eval.every == 0 && step_ < end_step) {
      const double val = validate();
      say(fmt::format("step {:>6} | validation loss {:.4f} nats/byte ({:.4f} bits)", step_, val,
                      val / std::numbers::ln2));
      if (json_) {
        json_->write(fmt::format(R"({{"step": {}, "validation_loss": {:.6f}}})", step_, val));
      }
    }
    if (done.stop_requested ||
        (config_.checkpoint.every > 0 && step_ % config_.checkpoint.every == 0) ||
        step_ == end_step) {
      save(step_);
    }
    if (done.stop_requested) {
      say(
          fmt::format("stop requested (SIGTERM/SIGUSR1): checkpoint written at step {}; "
                      "resume with --resume auto",
                      step_));
      result_.interrupted = true;
      break;
    }
  }
  result_.last_step = step_;
  if (!result_.interrupted) {
    const double val = validate();
    say(
        fmt::format("done: {} steps | final validation loss {:.4f} nats/byte ({:.4f} bits) | "
                    "unigram byte entropy {:.4f} nats ({:.4f} bits)",
                    step_, val, val / std::numbers::ln2, result_.unigram_entropy_nats,
                    result_.unigram_entropy_nats / std::numbers::ln2));
    const int kBuckets = static_cast<int>(bucket_starts_.size());
    std::string buckets;
    for (int b = 0; b < kBuckets; ++b) {
      const int64_t end =
          b + 1 < kBuckets ? bucket_starts_[static_cast<std::size_t>(b + 1)] : seq_len_;
      buckets += fmt::format(" | [{}, {}) {:.4f}", bucket_starts_[static_cast<std::size_t>(b)], end,
                             result_.validation_by_position[static_cast<std::size_t>(b)]);
    }
    say(fmt::format("validation loss by position in the sequence (nats/byte){}", buckets));
    if (json_) {
      json_->write(fmt::format(
          R"({{"step": {}, "final_validation_loss": {:.6f}, "unigram_entropy": {:.6f}}})", step_,
          val, result_.unigram_entropy_nats));
    }
  }
  // A log that could not be written fails the run, after the training it did not stop.
  run_collectively(world_, [&] {
    if (!leader_) return;
    if (json_) json_->close();
    if (json_ && json_->failure()) {
      fail(
          "{}: the training finished (last checkpoint at step {}), but its JSON log is "
          "incomplete; free space or choose another --log-json file",
          *json_->failure(), step_);
    }
    LONGNET_CHECK(options_.quiet || (std::fflush(stdout) == 0 && !std::ferror(stdout)),
                  "cannot write the progress log (standard output): the training finished "
                  "(last checkpoint at step {}), but its log is incomplete",
                  step_);
  });
  return result_;
}

}  // namespace

TrainConfig agreed_train_config(const std::string& path, std::span<const std::string> overrides) {
  try {
    TrainConfig config;
    if (!path.empty()) config = parse_train_config_file(path);
    apply_overrides(config, overrides);  // all at once, then the cross-field rules
    return config;
  } catch (const AgreedError&) {
    throw;
  } catch (const Error& e) {
    throw AgreedError(e.what());
  }
}

TrainResult train(const TrainConfig& config, Communicator& world, const TrainOptions& options) {
  SignalScope signals;  // from the start: a preemption during setup is honoured too
  Trainer trainer(config, world, options);
  return trainer.run();
}

}  // namespace longnet
