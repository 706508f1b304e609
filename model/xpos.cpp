#include "model/xpos.hpp"

#include "runtime/error.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

namespace longnet {
namespace {

void check_xpos_args(const Tensor& in, const Tensor& out, const XposTable& table,
                     const char* what) {
  LONGNET_CHECK(in.rank() == 4, "xPos {}: expected [B, T, H, D], got shape {}", what,
                shape_string(in.shape()));
  LONGNET_CHECK(out.shape() == in.shape() && out.dtype() == in.dtype(),
                "xPos {}: output is {} {}, expected {} {}", what, dtype_name(out.dtype()),
                shape_string(out.shape()), dtype_name(in.dtype()), shape_string(in.shape()));
  LONGNET_CHECK(in.dtype() == DType::float32 || in.dtype() == DType::float64,
                "xPos takes float32 or float64 tensors, got {}", dtype_name(in.dtype()));
  LONGNET_CHECK(in.dim(1) == table.tokens() && in.dim(3) == 2 * table.pairs(),
                "xPos {}: the tensor has T={} D={} but its table was built for T={} D={}", what,
                in.dim(1), in.dim(3), table.tokens(), 2 * table.pairs());
}

// y_pair = decay * R x_pair (forward) or dx_pair += decay * R^T dy_pair (transpose).
template <typename T, bool kTranspose>
void apply(const Tensor& in, Tensor& out, XposRole role, const XposTable& table) {
  const int64_t batch = in.dim(0), tokens = in.dim(1), heads = in.dim(2), dim = in.dim(3);
  const int64_t half = dim / 2;
  const T* x = in.data<T>();
  T* y = out.data<T>();
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    const double* cos = table.cos() + t * half;
    const double* sin = table.sin() + t * half;
    const double* decay = table.decay(role) + t * half;
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t row = ((b * tokens + t) * heads + h) * dim;
        for (int64_t i = 0; i < half; ++i) {
          const double x0 = x[row + 2 * i], x1 = x[row + 2 * i + 1];
          const double s = kTranspose ? -sin[i] : sin[i];
          const double y0 = (x0 * cos[i] - x1 * s) * decay[i];
          const double y1 = (x1 * cos[i] + x0 * s) * decay[i];
          if constexpr (kTranspose) {
            y[row + 2 * i] += static_cast<T>(y0);
            y[row + 2 * i + 1] += static_cast<T>(y1);
          } else {
            y[row + 2 * i] = static_cast<T>(y0);
            y[row + 2 * i + 1] = static_cast<T>(y1);
          }
        }
      }
    }
  }
}

}  // namespace

XposTable::XposTable(const XposSpan& span, int64_t tokens, int64_t head_dim)
    : span_(span), tokens_(tokens), pairs_(head_dim / 2) {
  LONGNET_CHECK(head_dim > 0 && head_dim % 2 == 0,
                "xPos needs an even head dim (pairs of elements), got D={}", head_dim);
  LONGNET_CHECK(
      span.segment_length > 0 && span.first_token >= 0 && span.scale_base > 0 && tokens >= 0,
      "xPos: segment length {} and scale base {} must be positive, first token {} and "
      "token count {} non-negative",
      span.segment_length, span.scale_base, span.first_token, tokens);
  // theta_i and ln zeta_i, then per token: the angle from the exact integer position, and
  // the decay exponent (token - a) / s from integers (2a exact), exact up to the division.
  const double d = static_cast<double>(head_dim);
  std::vector<double> theta(pairs_), log_zeta(pairs_);
  for (int64_t i = 0; i < pairs_; ++i) {
    theta[i] = std::pow(10000.0, -2.0 * static_cast<double>(i) / d);
    log_zeta[i] = std::log((2.0 * static_cast<double>(i) + 0.4 * d) / (1.4 * d));
  }
  const auto size = static_cast<std::size_t>(tokens * pairs_);
  cos_.resize(size);
  sin_.resize(size);
  query_decay_.resize(size);
  key_decay_.resize(size);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t token = span.first_token + t;
    const int64_t anchor2 =
        (token / span.segment_length) * span.segment_length * 2 + span.segment_length;
    const double relative =
        (2.0 * static_cast<double>(token) - static_cast<double>(anchor2)) / (2.0 * span.scale_base);
    for (int64_t i = 0; i < pairs_; ++i) {
      const double angle = static_cast<double>(token) * theta[i];
      const auto at = static_cast<std::size_t>(t * pairs_ + i);
      cos_[at] = std::cos(angle);
      sin_[at] = std::sin(angle);
      query_decay_[at] = std::exp(relative * log_zeta[i]);
      key_decay_[at] = std::exp(-relative * log_zeta[i]);
    }
  }
}

bool XposTable::covers(const XposSpan& span, int64_t tokens, int64_t head_dim) const {
  return span.first_token == span_.first_token && span.segment_length == span_.segment_length &&
         span.scale_base == span_.scale_base && tokens == tokens_ && head_dim == 2 * pairs_;
}

std::shared_ptr<const XposTable> shared_xpos_table(const XposSpan& span, int64_t tokens,
                                                   int64_t head_dim) {
  constexpr std::size_t kEntries = 8;
  constexpr int64_t kMaxBytes = int64_t{64} << 20;
  const int64_t bytes = tokens * (head_dim / 2) * 4 * static_cast<int64_t>(sizeof(double));
  if (bytes > kMaxBytes) return std::make_shared<const XposTable>(span, tokens, head_dim);
  static std::mutex mutex;
  static std::vector<std::shared_ptr<const XposTable>> recent;  // most recent first
  std::lock_guard lock(mutex);
  const auto hit = std::ranges::find_if(
      recent, [&](const auto& table) { return table->covers(span, tokens, head_dim); });
  std::shared_ptr<const XposTable> table =
      hit != recent.end() ? *hit : std::make_shared<const XposTable>(span, tokens, head_dim);
  if (hit != recent.end()) recent.erase(hit);
  recent.insert(recent.begin(), table);
  if (recent.size() > kEntries) recent.pop_back();
  return table;
}

void xpos_forward(const Tensor& in, Tensor& out, XposRole role, const XposTable& table) {
  check_xpos_args(in, out, table, "forward");
  LONGNET_CHECK(in.raw() != out.raw(), "xPos forward: the output may not alias the input");
  if (in.dtype() == DType::float32) {
    apply<float, false>(in, out, role, table);
  } else {
    apply<double, false>(in, out, role, table);
  }
}

void xpos_backward_accumulate(const Tensor& dy, Tensor& dx, XposRole role, const XposTable& table) {
  check_xpos_args(dy, dx, table, "backward");
  if (dy.dtype() == DType::float32) {
    apply<float, true>(dy, dx, role, table);
  } else {
    apply<double, true>(dy, dx, role, table);
  }
}

namespace {

// The table of a [B, T, H, D] tensor's tokens; the shape must be checked first.
XposTable table_for(const Tensor& in, const XposSpan& span) {
  LONGNET_CHECK(in.rank() == 4, "xPos: expected [B, T, H, D], got shape {}",
                shape_string(in.shape()));
  return XposTable(span, in.dim(1), in.dim(3));
}

}  // namespace

void xpos_forward(const Tensor& in, Tensor& out, XposRole role, const XposSpan& span) {
  xpos_forward(in, out, role, table_for(in, span));
}

void xpos_backward_accumulate(const Tensor& dy, Tensor& dx, XposRole role, const XposSpan& span) {
  xpos_backward_accumulate(dy, dx, role, table_for(dy, span));
}

}  // namespace longnet
