#include "model/xpos.hpp"

#include "runtime/error.hpp"

#include <cmath>
#include <vector>

namespace longnet {
namespace {

void check_xpos_args(const Tensor& in, const Tensor& out, const XposSpan& span, const char* what) {
  LONGNET_CHECK(in.rank() == 4, "xPos {}: expected [B, T, H, D], got shape {}", what,
                shape_string(in.shape()));
  LONGNET_CHECK(in.dim(3) % 2 == 0, "xPos needs an even head dim (pairs of elements), got D={}",
                in.dim(3));
  LONGNET_CHECK(out.shape() == in.shape() && out.dtype() == in.dtype(),
                "xPos {}: output is {} {}, expected {} {}", what, dtype_name(out.dtype()),
                shape_string(out.shape()), dtype_name(in.dtype()), shape_string(in.shape()));
  LONGNET_CHECK(in.dtype() == DType::float32 || in.dtype() == DType::float64,
                "xPos takes float32 or float64 tensors, got {}", dtype_name(in.dtype()));
  LONGNET_CHECK(span.segment_length > 0 && span.first_token >= 0 && span.scale_base > 0,
                "xPos: segment length {} and scale base {} must be positive, first token {} "
                "non-negative",
                span.segment_length, span.scale_base, span.first_token);
}

// What pair i's coefficients depend on apart from the token: theta_i and ln zeta_i,
// computed once per call rather than once per token.
struct PairConstants {
  std::vector<double> theta, log_zeta;
  explicit PairConstants(int64_t half) : theta(half), log_zeta(half) {
    const double d = static_cast<double>(2 * half);
    for (int64_t i = 0; i < half; ++i) {
      theta[i] = std::pow(10000.0, -2.0 * static_cast<double>(i) / d);
      log_zeta[i] = std::log((2.0 * static_cast<double>(i) + 0.4 * d) / (1.4 * d));
    }
  }
};

// The per-token coefficients of pair i: rotation (cos, sin) and decay factor.
struct PairCoefficients {
  std::vector<double> cos, sin, decay;
};

void token_coefficients(int64_t token, const PairConstants& k, XposRole role, const XposSpan& span,
                        PairCoefficients& c) {
  const int64_t anchor2 = (token / span.segment_length) * span.segment_length * 2 +
                          span.segment_length;  // 2a, exact in integers
  // (token - a) / s, from integers: exact up to the final division.
  const double relative =
      (2.0 * static_cast<double>(token) - static_cast<double>(anchor2)) / (2.0 * span.scale_base);
  const double sign = role == XposRole::query ? 1.0 : -1.0;
  for (std::size_t i = 0; i < k.theta.size(); ++i) {
    const double angle = static_cast<double>(token) * k.theta[i];
    c.cos[i] = std::cos(angle);
    c.sin[i] = std::sin(angle);
    c.decay[i] = std::exp(sign * relative * k.log_zeta[i]);
  }
}

// y_pair = decay * R x_pair (forward) or dx_pair += decay * R^T dy_pair (transpose).
template <typename T, bool kTranspose>
void apply(const Tensor& in, Tensor& out, XposRole role, const XposSpan& span) {
  const int64_t batch = in.dim(0), tokens = in.dim(1), heads = in.dim(2), dim = in.dim(3);
  const int64_t half = dim / 2;
  const T* x = in.data<T>();
  T* y = out.data<T>();
  const PairConstants constants(half);
#pragma omp parallel
  {
    PairCoefficients c{std::vector<double>(half), std::vector<double>(half),
                       std::vector<double>(half)};
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      token_coefficients(span.first_token + t, constants, role, span, c);
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t row = ((b * tokens + t) * heads + h) * dim;
          for (int64_t i = 0; i < half; ++i) {
            const double x0 = x[row + 2 * i], x1 = x[row + 2 * i + 1];
            const double s = kTranspose ? -c.sin[i] : c.sin[i];
            const double y0 = (x0 * c.cos[i] - x1 * s) * c.decay[i];
            const double y1 = (x1 * c.cos[i] + x0 * s) * c.decay[i];
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
}

}  // namespace

void xpos_forward(const Tensor& in, Tensor& out, XposRole role, const XposSpan& span) {
  check_xpos_args(in, out, span, "forward");
  LONGNET_CHECK(in.raw() != out.raw(), "xPos forward: the output may not alias the input");
  if (in.dtype() == DType::float32) {
    apply<float, false>(in, out, role, span);
  } else {
    apply<double, false>(in, out, role, span);
  }
}

void xpos_backward_accumulate(const Tensor& dy, Tensor& dx, XposRole role, const XposSpan& span) {
  check_xpos_args(dy, dx, span, "backward");
  if (dy.dtype() == DType::float32) {
    apply<float, true>(dy, dx, role, span);
  } else {
    apply<double, true>(dy, dx, role, span);
  }
}

}  // namespace longnet
