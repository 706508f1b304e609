#include "model/training/passkey.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "model/training/counter_hash.hpp"
#include "runtime/error.hpp"

namespace longnet {
namespace {

constexpr int64_t kPrefixLength = static_cast<int64_t>(sizeof(kPasskeyPrefix) - 1);
constexpr int64_t kFirstDefaultEdge = 32;

uint64_t prompt_hash(uint64_t seed, int64_t bucket, int64_t trial, uint64_t what) {
  return hash_combine(hash_combine(hash_combine(hash_combine(seed, 0x70617373ULL /* "pass" */),
                                                static_cast<uint64_t>(bucket)),
                                   static_cast<uint64_t>(trial)),
                      what);
}

void write_text(std::vector<int32_t>& window, int64_t at, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    window[static_cast<std::size_t>(at) + i] = static_cast<unsigned char>(text[i]);
  }
}

}  // namespace

// The needle is prefix + key + "\n" and must end before the question's prefix begins.
int64_t passkey_min_distance(int64_t key_digits) { return key_digits + 1 + kPrefixLength; }

// The answer's first digit is target seq_len - key_digits, i.e. window position
// seq_len + 1 - key_digits; the needle's prefix must start at position >= 0.
int64_t passkey_max_distance(int64_t seq_len, int64_t key_digits) {
  return seq_len + 1 - key_digits - kPrefixLength;
}

void check_passkey_options(const PasskeyOptions& options) {
  LONGNET_CHECK(options.key_digits >= 1 && options.key_digits <= 64,
                "passkey: --key-digits {} must be in [1, 64]", options.key_digits);
  LONGNET_CHECK(options.trials >= 1, "passkey: --trials {} must be >= 1 (prompts per bucket)",
                options.trials);
  const int64_t lo = passkey_min_distance(options.key_digits);
  const int64_t hi = passkey_max_distance(options.seq_len, options.key_digits);
  LONGNET_CHECK(hi > lo,
                "passkey: a sequence of {} tokens cannot hold a {}-digit needle and question "
                "apart: it needs at least {} tokens",
                options.seq_len, options.key_digits, 2 * (kPrefixLength + options.key_digits) + 1);
  if (options.bucket_edges.empty()) return;
  const std::vector<int64_t>& e = options.bucket_edges;
  LONGNET_CHECK(e.size() >= 2, "passkey: --buckets needs at least two edges, got {}", e.size());
  for (std::size_t i = 1; i < e.size(); ++i) {
    LONGNET_CHECK(e[i] > e[i - 1], "passkey: --buckets must increase; {} follows {}", e[i],
                  e[i - 1]);
  }
  LONGNET_CHECK(e.front() >= lo && e.back() <= hi + 1,
                "passkey: --buckets [{}, {}) must lie inside the distances a {}-token prompt "
                "can hold, [{}, {}]",
                e.front(), e.back(), options.seq_len, lo, hi);
}

std::vector<int64_t> passkey_bucket_edges(const PasskeyOptions& options) {
  check_passkey_options(options);
  if (!options.bucket_edges.empty()) return options.bucket_edges;
  const int64_t lo = passkey_min_distance(options.key_digits);
  const int64_t hi = passkey_max_distance(options.seq_len, options.key_digits);
  std::vector<int64_t> edges = {std::max(lo, std::min(kFirstDefaultEdge, hi))};
  for (int64_t e = 2 * kFirstDefaultEdge; e <= hi; e *= 2) {
    if (e > edges.back()) edges.push_back(e);
  }
  if (edges.back() < hi + 1) edges.push_back(hi + 1);
  return edges;
}

PasskeyPrompt make_passkey_prompt(const TokenDataset& filler, const PasskeyOptions& options,
                                  int64_t bucket, int64_t trial) {
  const std::vector<int64_t> edges = passkey_bucket_edges(options);
  const auto buckets = static_cast<int64_t>(edges.size()) - 1;
  LONGNET_CHECK(bucket >= 0 && bucket < buckets && trial >= 0,
                "passkey: no bucket {} (there are {}) or trial {}", bucket, buckets, trial);
  const int64_t n = options.seq_len;
  PasskeyPrompt prompt;
  filler.validation_batch(trial * buckets + bucket, 1, n, prompt.window);

  const uint64_t span = static_cast<uint64_t>(edges[bucket + 1] - edges[bucket]);
  prompt.distance =
      edges[bucket] + static_cast<int64_t>(prompt_hash(options.seed, bucket, trial, 0) % span);
  for (int64_t i = 0; i < options.key_digits; ++i) {
    prompt.key += static_cast<char>(
        '0' + prompt_hash(options.seed, bucket, trial, 1 + static_cast<uint64_t>(i)) % 10);
  }
  const int64_t answer = n + 1 - options.key_digits;  // window position of the answer
  write_text(prompt.window, answer - kPrefixLength, kPasskeyPrefix);
  write_text(prompt.window, answer, prompt.key);
  const int64_t needle = answer - prompt.distance;  // window position of the planted key
  write_text(prompt.window, needle - kPrefixLength, kPasskeyPrefix);
  write_text(prompt.window, needle, prompt.key + "\n");
  return prompt;
}

PasskeyReport evaluate_passkey(const TokenDataset& filler, const PasskeyOptions& options,
                               int64_t batch, const PasskeyScorer& scorer,
                               const std::function<void(const std::string&)>& progress) {
  LONGNET_CHECK(batch >= 1, "passkey: batch {} must be >= 1", batch);
  const std::vector<int64_t> edges = passkey_bucket_edges(options);
  const int64_t k = options.key_digits, n = options.seq_len;
  PasskeyReport report;
  report.key_digits = k;
  report.chance_digit_accuracy = 0.1;
  report.chance_key_accuracy = std::pow(0.1, static_cast<double>(k));
  report.chance_key_loss = std::numbers::ln10;

  std::vector<int32_t> windows;
  std::vector<std::string> keys;
  std::vector<double> loss;
  std::vector<int32_t> predicted;
  for (std::size_t b = 0; b + 1 < edges.size(); ++b) {
    PasskeyBucket result{edges[b], edges[b + 1], options.trials, 0, 0, 0};
    int64_t keys_right = 0, digits_right = 0;
    double loss_sum = 0;
    for (int64_t first = 0; first < options.trials; first += batch) {
      const int64_t rows = std::min(batch, options.trials - first);
      windows.clear();
      keys.clear();
      for (int64_t r = 0; r < rows; ++r) {
        PasskeyPrompt prompt =
            make_passkey_prompt(filler, options, static_cast<int64_t>(b), first + r);
        windows.insert(windows.end(), prompt.window.begin(), prompt.window.end());
        keys.push_back(std::move(prompt.key));
      }
      loss.assign(static_cast<std::size_t>(rows * k), 0.0);
      predicted.assign(loss.size(), -1);
      scorer(windows, rows, k, loss, predicted);
      for (int64_t r = 0; r < rows; ++r) {
        bool all = true;
        for (int64_t i = 0; i < k; ++i) {
          const auto at = static_cast<std::size_t>(r * k + i);
          const bool right = predicted[at] == static_cast<unsigned char>(keys[r][i]);
          // The scorer's target must be the key: a check on the prompt layout itself.
          LONGNET_CHECK(windows[static_cast<std::size_t>(r * (n + 1) + n + 1 - k + i)] ==
                            static_cast<unsigned char>(keys[r][i]),
                        "passkey: internal error: the answer is not at the end of the prompt");
          digits_right += right ? 1 : 0;
          all = all && right;
          loss_sum += loss[at];
        }
        keys_right += all ? 1 : 0;
      }
    }
    const auto trials = static_cast<double>(options.trials);
    result.key_accuracy = static_cast<double>(keys_right) / trials;
    result.digit_accuracy = static_cast<double>(digits_right) / (trials * static_cast<double>(k));
    result.key_loss = loss_sum / (trials * static_cast<double>(k));
    report.buckets.push_back(result);
    if (progress) {
      progress(fmt::format("passkey: distances [{}, {}): {} of {} keys right", result.first,
                           result.last, keys_right, options.trials));
    }
  }
  return report;
}

std::string passkey_table(const PasskeyReport& report) {
  std::string out = fmt::format("{:>14} {:>7} {:>13} {:>15} {:>18}\n", "distance", "trials",
                                "key accuracy", "digit accuracy", "key loss (nats)");
  for (const PasskeyBucket& b : report.buckets) {
    out += fmt::format("{:>14} {:>7} {:>13.3f} {:>15.3f} {:>18.4f}\n",
                       fmt::format("[{}, {})", b.first, b.last), b.trials, b.key_accuracy,
                       b.digit_accuracy, b.key_loss);
  }
  out +=
      fmt::format("{:>14} {:>7} {:>13.0e} {:>15.3f} {:>18.4f}\n", "chance", "",
                  report.chance_key_accuracy, report.chance_digit_accuracy, report.chance_key_loss);
  return out;
}

std::string passkey_csv(const PasskeyReport& report) {
  std::string out = "distance_first,distance_last,trials,key_accuracy,digit_accuracy,key_loss\n";
  for (const PasskeyBucket& b : report.buckets) {
    out += fmt::format("{},{},{},{:.6f},{:.6f},{:.6f}\n", b.first, b.last, b.trials, b.key_accuracy,
                       b.digit_accuracy, b.key_loss);
  }
  return out;
}

}  // namespace longnet
