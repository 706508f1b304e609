// Shared pieces of the attention-extras tests: random inputs with fixed seeds, random
// bias tensors with their reference twin, and relative-error comparison.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/dilated_attention.hpp"
#include "tests/reference/dense_attention_reference.hpp"
#include "tests/support/relative_error.hpp"

namespace longnet::test {

inline Tensor random_tensor(const Shape& shape, std::mt19937_64& rng, float stddev = 1.0f) {
  std::normal_distribution<float> dist(0.0f, stddev);
  Tensor t(shape, DType::float32);
  for (float& x : t.span<float>()) x = dist(rng);
  return t;
}

inline Tensor poisoned(const Shape& shape) {
  return Tensor::filled(shape, std::numeric_limits<double>::quiet_NaN());
}

// One [H, 2L - 1] bias tensor per pattern, values N(0, stddev^2).
inline std::vector<Tensor> random_bias(const DilatedAttentionConfig& config, int64_t heads,
                                       std::mt19937_64& rng, float stddev = 1.0f) {
  std::vector<Tensor> bias;
  for (const DilationPattern& pattern : config.patterns) {
    bias.push_back(random_tensor({heads, 2 * relative_bias_rows(pattern) - 1}, rng, stddev));
  }
  return bias;
}

// The same values as the reference's [pattern][head][2L - 1] table.
inline reference::BiasTable bias_table(const std::vector<Tensor>& bias) {
  reference::BiasTable table;
  for (const Tensor& t : bias) {
    auto& heads = table.emplace_back();
    const auto values = t.span<float>();
    for (int64_t h = 0; h < t.dim(0); ++h) {
      heads.emplace_back(values.begin() + h * t.dim(1), values.begin() + (h + 1) * t.dim(1));
    }
  }
  return table;
}

inline std::vector<double> flatten(const reference::BiasTable& table) {
  std::vector<double> out;
  for (const auto& heads : table) {
    for (const auto& values : heads) out.insert(out.end(), values.begin(), values.end());
  }
  return out;
}

inline std::vector<double> flatten(const std::vector<Tensor>& tensors) {
  std::vector<double> out;
  for (const Tensor& t : tensors) {
    const auto values = t.span<float>();
    out.insert(out.end(), values.begin(), values.end());
  }
  return out;
}

// ||got - ref|| / max(||ref||, floor): for quantities whose exact value may nearly cancel
// (dbias of a short segment), where a floor of O(1) inputs' natural unit, 1, keeps the
// measure meaningful.
template <typename Got>
double error_over_floor(const Got& got, const std::vector<double>& ref, double floor) {
  double diff2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (!std::isfinite(g)) return std::numeric_limits<double>::quiet_NaN();
    diff2 += (g - ref[i]) * (g - ref[i]);
    ref2 += ref[i] * ref[i];
  }
  return std::sqrt(diff2) / std::max(std::sqrt(ref2), floor);
}

}  // namespace longnet::test
