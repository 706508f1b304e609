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
// evaluated once, kept in a per-thread row, then scaled. Row losses are summed in row
// order in double, so the total does not depend on the thread count.
// In double the exps are libm's. In float they are float_vector_math.hpp's vectorised
// exp (within 2 float ulps; libm's double exp per logit took 6 % of a training step),
// summed in double over 8 independent lanes (so the loop vectorises without
// reassociating), and the gradient is e_j (grad_scale / sum) in float, except at the
// target, where p - 1 is formed in double: when p is close to 1 the float difference
// would keep only the rounding error of p.
#include <algorithm>
#include <cmath>
#include <vector>

#include "model/ops/cpu_ops.hpp"
#include "model/ops/float_vector_math.hpp"

namespace longnet::cpu_ops {
namespace {

// e[j] = exp(z[j] - zmax) for a row of n logits, and their sum in double.
LONGNET_VECTOR_CLONES double exp_row(const float* z, float zmax, float* e, int64_t n) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      e[j + l] = exp_nonpositive(z[j + l] - zmax);
      lanes[l] += static_cast<double>(e[j + l]);
    }
  }
  double sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; j < n; ++j) {
    e[j] = exp_nonpositive(z[j] - zmax);
    sum += static_cast<double>(e[j]);
  }
  return sum;
}

LONGNET_VECTOR_CLONES void scale_row(const float* e, float scale, float* dz, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dz[j] = e[j] * scale;
}

// Every row's loss (and gradient) of float logits.
void cross_entropy_rows(const float* logits, std::span<const int32_t> targets, int64_t vocab,
                        double grad_scale, float* dlogits, std::vector<double>& losses) {
  const auto rows = static_cast<int64_t>(targets.size());
#pragma omp parallel
  {
    std::vector<float> row_exp(static_cast<std::size_t>(vocab));
    float* e = row_exp.data();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* z = logits + r * vocab;
      const float zmax = *std::max_element(z, z + vocab);
      const double sum = exp_row(z, zmax, e, vocab);
      const int32_t target = targets[static_cast<std::size_t>(r)];
      losses[static_cast<std::size_t>(r)] =
          static_cast<double>(zmax) + std::log(sum) - static_cast<double>(z[target]);
      if (dlogits != nullptr) {
        float* dz = dlogits + r * vocab;
        scale_row(e, static_cast<float>(grad_scale / sum), dz, vocab);
        dz[target] = static_cast<float>((static_cast<double>(e[target]) / sum - 1.0) * grad_scale);
      }
    }
  }
}

// The same for double logits, with libm's exp.
void cross_entropy_rows(const double* logits, std::span<const int32_t> targets, int64_t vocab,
                        double grad_scale, double* dlogits, std::vector<double>& losses) {
  const auto rows = static_cast<int64_t>(targets.size());
#pragma omp parallel
  {
    std::vector<double> row_exp(static_cast<std::size_t>(vocab));  // exp(z_j - max)
    double* e = row_exp.data();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const double* z = logits + r * vocab;
      const double zmax = *std::max_element(z, z + vocab);
      double sum = 0;
      for (int64_t j = 0; j < vocab; ++j) {
        e[j] = std::exp(z[j] - zmax);
        sum += e[j];
      }
      const int32_t target = targets[static_cast<std::size_t>(r)];
      losses[static_cast<std::size_t>(r)] = zmax + std::log(sum) - z[target];
      if (dlogits != nullptr) {
        double* dz = dlogits + r * vocab;
        for (int64_t j = 0; j < vocab; ++j)
          dz[j] = (e[j] / sum - (j == target ? 1.0 : 0.0)) * grad_scale;
      }
    }
  }
}

}  // namespace

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
  std::vector<double> losses(targets.size());
  cross_entropy_rows(logits, targets, vocab, grad_scale, dlogits, losses);
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
