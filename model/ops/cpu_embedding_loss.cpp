// Token embedding and softmax cross-entropy on the CPU.
//
// Embedding: out[t] = table[tokens[t]]; the backward adds dout[t] into dtable[tokens[t]].
// Repeated ids make that a scatter-add with collisions, so the positions are grouped by id
// first (token_groups.hpp) and each table row is owned by one iteration of the parallel
// loop, which adds its positions in ascending order.
//
// Cross-entropy of a row z against target y: loss = lse(z) - z_y with
// lse(z) = max + log sum exp(z - max). Subtracting the max keeps every exp in (0, 1], so
// logits of any size neither overflow nor lose the sum. The gradient is
// (softmax(z) - onehot(y)) * grad_scale with softmax(z) = exp(z - max) / sum: each exp is
// evaluated once, kept in a per-thread double row (not in dlogits, whose float rounding
// would add a second rounding to the gradient), then scaled. Row losses are summed in
// row order in double, so the total does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "model/ops/cpu_ops.hpp"

namespace longnet::cpu_ops {

template <typename T>
void embedding_forward(std::span<const int32_t> tokens, const T* table, T* out, int64_t channels) {
  const auto count = static_cast<int64_t>(tokens.size());
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < count; ++t) {
    const T* row = table + static_cast<int64_t>(tokens[static_cast<std::size_t>(t)]) * channels;
    std::copy(row, row + channels, out + t * channels);
  }
}

template <typename T>
void embedding_backward(const TokenGroups& groups, const T* dout, T* dtable, int64_t channels) {
  const auto count = static_cast<int64_t>(groups.ids.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t g = 0; g < count; ++g) {
    T* row = dtable + static_cast<int64_t>(groups.ids[static_cast<std::size_t>(g)]) * channels;
    for (int64_t p = groups.offsets[static_cast<std::size_t>(g)];
         p < groups.offsets[static_cast<std::size_t>(g) + 1]; ++p) {
      const T* src = dout + groups.positions[static_cast<std::size_t>(p)] * channels;
      for (int64_t c = 0; c < channels; ++c) row[c] += src[c];
    }
  }
}

template <typename T>
double cross_entropy(const T* logits, std::span<const int32_t> targets, int64_t vocab,
                     double grad_scale, T* dlogits, std::span<double> per_token_loss) {
  const auto rows = static_cast<int64_t>(targets.size());
  std::vector<double> losses(targets.size());
#pragma omp parallel
  {
    std::vector<double> row_exp(static_cast<std::size_t>(vocab));  // exp(z_j - max)
    double* e = row_exp.data();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* z = logits + r * vocab;
      double zmax = static_cast<double>(z[0]);
      for (int64_t j = 1; j < vocab; ++j) zmax = std::max(zmax, static_cast<double>(z[j]));
      double sum = 0;
      for (int64_t j = 0; j < vocab; ++j) {
        e[j] = std::exp(static_cast<double>(z[j]) - zmax);
        sum += e[j];
      }
      const double lse = zmax + std::log(sum);
      const int32_t target = targets[static_cast<std::size_t>(r)];
      losses[static_cast<std::size_t>(r)] = lse - static_cast<double>(z[target]);
      if (dlogits != nullptr) {
        T* dz = dlogits + r * vocab;
        for (int64_t j = 0; j < vocab; ++j) {
          const double p = e[j] / sum;
          dz[j] = static_cast<T>((p - (j == target ? 1.0 : 0.0)) * grad_scale);
        }
      }
    }
  }
  double total = 0;
  for (double loss : losses) total += loss;
  if (!per_token_loss.empty()) std::copy(losses.begin(), losses.end(), per_token_loss.begin());
  return total;
}

template <typename T>
void argmax_rows(const T* logits, int64_t rows, int64_t vocab, std::span<int32_t> out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* z = logits + r * vocab;
    out[static_cast<std::size_t>(r)] = static_cast<int32_t>(std::max_element(z, z + vocab) - z);
  }
}

#define LONGNET_INSTANTIATE(T)                                                              \
  template void embedding_forward<T>(std::span<const int32_t>, const T*, T*, int64_t);      \
  template void embedding_backward<T>(const TokenGroups&, const T*, T*, int64_t);           \
  template double cross_entropy<T>(const T*, std::span<const int32_t>, int64_t, double, T*, \
                                   std::span<double>);                                      \
  template void argmax_rows<T>(const T*, int64_t, int64_t, std::span<int32_t>);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cpu_ops
