// The passkey probe (`longnet eval passkey`): does the model retrieve a fact planted far
// back in its context?
//
// A prompt is seq_len + 1 tokens of validation text (inputs [:-1], targets [1:], as in
// training) with two things written over it:
//   somewhere inside:  "\n// passkey = 48213\n"   (the needle: a Go comment line)
//   at the very end:   "\n// passkey = 48213"     (the question and its answer)
// The key is key_digits random decimal digits. The model is scored on the answer, the
// last key_digits targets: it is right when its most likely next token is the key's
// digit at every one of them (teacher-forced greedy, which is exactly "greedy decoding
// reproduces the key"), and the key's loss is its mean loss per digit. The distance of
// a prompt is how far back the planted key sits: (position of the answer's first digit)
// - (position of the needle's first digit). Distances are drawn uniformly inside each
// bucket [edges[i], edges[i + 1]); chance is 10^-key_digits for a key, 1/10 for a digit,
// ln 10 nats for the loss.
//
// Prompts are a pure function of (seed, bucket, trial) and the validation split, so every
// rank builds the same prompts without communicating and runs are comparable.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/training/token_dataset.hpp"

namespace longnet {

inline constexpr char kPasskeyPrefix[] = "\n// passkey = ";  // before the key, twice

struct PasskeyOptions {
  int64_t seq_len = 1024;
  int64_t key_digits = 5;
  int64_t trials = 32;  // prompts per distance bucket
  uint64_t seed = 0;
  // Bucket edges, increasing; empty: 32, 64, 128, ... doubling, then the largest
  // distance that fits (passkey_max_distance) + 1.
  std::vector<int64_t> bucket_edges;
};

// The shortest and longest distances a prompt of this shape can hold.
int64_t passkey_min_distance(int64_t key_digits);
int64_t passkey_max_distance(int64_t seq_len, int64_t key_digits);
// options.bucket_edges if given (checked: increasing, inside [min, max + 1]), else the
// default doubling edges.
std::vector<int64_t> passkey_bucket_edges(const PasskeyOptions& options);
// Throws longnet::Error naming the option to fix (too short a sequence, no digits, ...).
void check_passkey_options(const PasskeyOptions& options);

struct PasskeyPrompt {
  std::vector<int32_t> window;  // seq_len + 1 tokens
  std::string key;              // the digits
  int64_t distance = 0;
};
// The prompt of (bucket, trial): filler text from validation window `trial * buckets +
// bucket` of `filler`, the needle at `distance` before the answer.
PasskeyPrompt make_passkey_prompt(const TokenDataset& filler, const PasskeyOptions& options,
                                  int64_t bucket, int64_t trial);

// Scores `rows` windows (row-major [rows, seq_len + 1]): for each row and each of its last
// `answer` target positions (targets seq_len - answer .. seq_len - 1), the loss of the
// target (nats) and the most likely next token, written row-major into [rows, answer].
// With a model split across ranks the scorer is collective: every rank calls it with the
// same windows and gets the same scores.
using PasskeyScorer =
    std::function<void(std::span<const int32_t> windows, int64_t rows, int64_t answer,
                       std::span<double> loss, std::span<int32_t> predicted)>;

struct PasskeyBucket {
  int64_t first = 0, last = 0;  // distances [first, last)
  int64_t trials = 0;
  double key_accuracy = 0;    // keys entirely right
  double digit_accuracy = 0;  // digits right
  double key_loss = 0;        // mean loss per digit (nats)
};
struct PasskeyReport {
  std::vector<PasskeyBucket> buckets;
  int64_t key_digits = 0;
  double chance_key_accuracy = 0, chance_digit_accuracy = 0, chance_key_loss = 0;
};

// Builds every prompt, scores them `batch` at a time and aggregates per bucket. progress
// (may be empty) gets one line per bucket.
PasskeyReport evaluate_passkey(const TokenDataset& filler, const PasskeyOptions& options,
                               int64_t batch, const PasskeyScorer& scorer,
                               const std::function<void(const std::string&)>& progress = {});

// The report as an aligned text table (with a chance row), and as CSV.
std::string passkey_table(const PasskeyReport& report);
std::string passkey_csv(const PasskeyReport& report);

}  // namespace longnet
