// The training job's configuration: one TOML file, one struct, every value checked.
//
// Every field has the default of a tiny model that trains on two CPU cores
// (configs/tiny.toml spells them out). The TOML tables and keys are the struct's
// sections and fields, named identically (snake_case), so `--set optimizer.lr=3e-4`
// names the same field as `[optimizer] lr = 3e-4`.
//
// Parsing is strict on purpose: an unknown key (a typo such as `warmup_step`) is an
// error that lists the valid keys of its table, never a silently ignored setting that
// leaves a default in force; a value of the wrong type or out of range names the key,
// the value and the allowed range; cross-field rules (dim % heads == 0, as many
// dilation rates as segment lengths, min_lr <= lr, ...) are checked after every parse
// and after a set of overrides (apply_overrides). to_toml() writes every field, so a checkpoint's
// config text parses back to exactly the struct it came from (doubles are written with the shortest
// representation that round-trips).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace longnet {

// The decoder and its dilated attention.
struct ModelSection {
  int64_t vocab_size = 256;  // tokens are bytes
  int64_t dim = 128;         // model width
  int64_t layers = 2;        // decoder blocks
  int64_t heads = 4;         // attention heads; dim % heads == 0
  int64_t kv_heads = 0;      // heads of k and v (grouped-query attention), dividing heads; 0: heads
  int64_t ffn_dim = 512;     // feed-forward hidden width
  std::vector<int64_t> segment_lengths{64, 256, 1024};  // dilated attention w per pattern
  std::vector<int64_t> dilation_rates{1, 4, 16};        // r per pattern (same count as w)
  bool causal = true;
  std::string head_offsets = "grouped";  // "grouped" or "interleaved"
  bool use_xpos = true;                  // xPos rotary position embedding
  double xpos_scale_base = 512.0;
  bool use_rel_pos_bias = true;  // T5-style bucketed relative bias
  int64_t rel_pos_buckets = 32;
  int64_t rel_pos_max_distance = 128;
  double dropout = 0.0;  // in [0, 1)
  double layer_norm_eps = 1e-5;
  double init_std = 0.02;  // normal init of weight matrices

  bool operator==(const ModelSection&) const = default;
};

// Token data (from `longnet data prepare`) and the batch shape.
struct DataSection {
  std::string dir = "data/go";  // holds train.h5 and val.h5
  int64_t seq_len = 1024;       // tokens per sequence (the model sees seq_len, predicts +1)
  int64_t batch_size = 4;       // sequences per step per data-parallel group
  int64_t grad_accum = 1;       // micro-batches summed per optimizer step

  bool operator==(const DataSection&) const = default;
};

// AdamW with linear warm-up then cosine decay from lr to min_lr at max_steps.
struct OptimizerSection {
  double lr = 1e-3;
  double min_lr = 1e-4;  // <= lr
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;  // global gradient-norm clip; 0 disables
  int64_t warmup_steps = 50;
  int64_t max_steps = 1000;
  // A step whose loss or gradient norm is NaN or infinite: "stop" ends the run with an
  // error (exit status 2) and no checkpoint of that state; "skip" leaves the parameters
  // and moments unchanged and goes on with the next batch, and more than
  // max_skipped_steps such steps in a row end the run as "stop" does.
  std::string on_nonfinite = "stop";  // "stop" or "skip"
  int64_t max_skipped_steps = 10;

  bool operator==(const OptimizerSection&) const = default;
};

struct ParallelSection {
  int64_t sp = 1;  // sequence-parallel ranks per data-parallel group

  bool operator==(const ParallelSection&) const = default;
};

struct CheckpointSection {
  std::string dir = "checkpoints";
  int64_t every = 250;    // steps between checkpoints; 0 disables periodic checkpoints
  int64_t keep_last = 2;  // complete checkpoints kept; older ones are deleted

  bool operator==(const CheckpointSection&) const = default;
};

struct EvalSection {
  int64_t every = 250;  // steps between validation passes; 0 disables
  int64_t batches = 8;  // validation batches per pass

  bool operator==(const EvalSection&) const = default;
};

struct LogSection {
  int64_t every = 50;  // steps between log lines

  bool operator==(const LogSection&) const = default;
};

struct TrainConfig {
  ModelSection model;
  DataSection data;
  OptimizerSection optimizer;
  ParallelSection parallel;
  CheckpointSection checkpoint;
  EvalSection eval;
  LogSection log;
  uint64_t seed = 1234;  // initialisation, data order and dropout

  bool operator==(const TrainConfig&) const = default;
};

// Parses a TOML file / text. Missing keys keep their defaults; unknown keys, wrong
// types, out-of-range values and violated cross-field rules throw longnet::Error.
TrainConfig parse_train_config_file(const std::string& path);
TrainConfig parse_train_config_string(std::string_view toml_text);

// Applies one `--set` override, "section.key=value" (or "seed=value"), with the same
// key, type and range checks as the file; lists are "[64,128]" or "64,128", strings may
// be quoted. Cross-field rules are NOT checked here, because fields that go together
// (segment_lengths and dilation_rates) change one override at a time: call validate()
// after the last override, or use apply_overrides. On error `config` is unchanged.
void apply_override(TrainConfig& config, std::string_view assignment);

// Applies every override in order, then validate(); all or nothing. What `--set` uses.
void apply_overrides(TrainConfig& config, std::span<const std::string> assignments);

// Throws longnet::Error naming the first violated cross-field rule. Sizes are checked
// too, before anything is allocated: a batch window of data.batch_size x (data.seq_len
// + 1) tokens above kMaxWindowTokens, or an activation whose byte count overflows int64,
// is refused naming the fields.
inline constexpr int64_t kMaxWindowTokens = int64_t{1} << 36;  // 256 GiB of int32 tokens
void validate(const TrainConfig& config);

// Every field, as TOML that parse_train_config_string turns back into `config` exactly.
std::string to_toml(const TrainConfig& config);

// A human-readable multi-line summary for the start of a training run.
std::string describe(const TrainConfig& config);

}  // namespace longnet
