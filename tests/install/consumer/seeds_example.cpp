// The seeds' example (batch 4, 32 tokens, dim 512, 8 heads, segment 16, dilation 2) built
// against the installed package: the DilatedAttention layer's output must be the right
// shape, finite, and equal to the same computation done a second way (projections written
// out here, attention through the op interface), which fails if the package links the
// wrong code or the layer and the op disagree.
#include <cmath>
#include <cstdio>
#include <string>

#include "kernels/dilated_attention_factory.hpp"
#include "model/dilated_attention_layer.hpp"
#include "runtime/random_fill.hpp"

namespace {

// y[t, n] = sum_k x[t, k] w[n, k] + b[n], in double.
longnet::Tensor project(const longnet::Tensor& x, const longnet::Parameter& w,
                        const longnet::Parameter& b, int64_t tokens, int64_t dim) {
  longnet::Tensor y({tokens, dim}, longnet::DType::float32);
  const float* xs = x.data<float>();
  const float* ws = w.value.data<float>();
  const float* bs = b.value.data<float>();
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t n = 0; n < dim; ++n) {
      double sum = bs[n];
      for (int64_t k = 0; k < dim; ++k) sum += double(xs[t * dim + k]) * ws[n * dim + k];
      y.data<float>()[t * dim + n] = static_cast<float>(sum);
    }
  }
  return y;
}

const longnet::Parameter& find(longnet::DilatedAttention& layer, const std::string& name) {
  for (longnet::Parameter* p : layer.parameters()) {
    if (p->name == "attn." + name) return *p;
  }
  throw longnet::Error("no parameter attn." + name);
}

}  // namespace

int main() try {
  const int64_t batch = 4, tokens = 32, dim = 512, heads = 8;
  auto ops = longnet::make_cpu_model_ops();
  auto kernels = longnet::make_dilated_attention(longnet::Device::cpu, longnet::DType::float32);
  auto config = longnet::DilatedAttentionLayerConfig::single(dim, heads, /*segment_size=*/16,
                                                             /*dilation_rate=*/2);
  longnet::DilatedAttention layer("attn", config, longnet::DType::float32, /*seed=*/1);
  const longnet::AttentionShape shape{batch, tokens, heads, dim / heads};
  auto core = longnet::make_local_attention_core(config.attention_config(), shape, *kernels);

  longnet::DilatedAttentionSaved saved;
  const longnet::Tensor x = longnet::random_tensor({batch, tokens, dim}, 2);
  const longnet::Tensor y = layer.forward(x, *core, *ops, saved);
  if (y.shape() != longnet::Shape{batch, tokens, dim}) {
    std::fprintf(stderr, "y is %s, expected [4, 32, 512]\n",
                 longnet::shape_string(y.shape()).c_str());
    return 1;
  }

  // The second path.
  const int64_t rows = batch * tokens;
  const longnet::Shape heads_shape = longnet::qkv_shape(shape);
  const longnet::Tensor x2 = x.view({rows, dim});
  const longnet::Tensor q = project(x2, find(layer, "wq"), find(layer, "bq"), rows, dim);
  const longnet::Tensor k = project(x2, find(layer, "wk"), find(layer, "bk"), rows, dim);
  const longnet::Tensor v = project(x2, find(layer, "wv"), find(layer, "bv"), rows, dim);
  const longnet::AttentionOutputs out =
      longnet::run_forward(*kernels, config.attention_config(), q.view(heads_shape),
                           k.view(heads_shape), v.view(heads_shape));
  const longnet::Tensor expected =
      project(out.o.view({rows, dim}), find(layer, "wo"), find(layer, "bo"), rows, dim);

  double worst = 0, largest = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double got = y.data<float>()[i], want = expected.data<float>()[i];
    if (!std::isfinite(got)) {
      std::fprintf(stderr, "y[%lld] = %g is not finite\n", static_cast<long long>(i), got);
      return 1;
    }
    worst = std::fmax(worst, std::fabs(got - want));
    largest = std::fmax(largest, std::fabs(want));
  }
  std::printf("seeds example: y [4, 32, 512], max |y| %.3g, max |y - second path| %.3g\n", largest,
              worst);
  if (largest == 0 || worst > 1e-4 * largest + 1e-6) {
    std::fprintf(stderr, "the layer and the second path disagree (or y is all zero)\n");
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
