// e^a, the standard normal CDF and its density in float, written so that the compiler
// vectorises loops over them (the float GELU, the cross-entropy's exps): no libm calls
// (glibc's erff and expf are scalar calls that a loop cannot vectorise without
// -ffast-math; erff alone took 12 % of a training step), only
// arithmetic, selects and bit casts. A file using them needs -fno-trapping-math (no
// effect on results: it only lets GCC assume that nobody reads the floating-point
// exception flags); without it GCC keeps a clamp followed by a float-to-int conversion
// as a branch, and the loop stays scalar.
//
//   exp_nonpositive(a) = e^a for a <= 0: a = n ln 2 + r with n = round(a log2 e) and
//     |r| <= ln 2 / 2, e^r by its Taylor series to r^7 (truncation < 5e-9 relative), 2^n
//     by building the exponent bits; a is clamped at -87 (e^-87 = 1.6e-38, the last
//     normal floats), which only matters where the result is below 2e-38 anyway.
//   erfc(u), u >= 0: t e^(-u^2 + P(t)) with t = 1 / (1 + u/2) and P the degree-9
//     Chebyshev fit of Numerical Recipes (erfcc; fractional error < 1.2e-7 for every u),
//     so Phi(x) keeps its relative accuracy in the negative tail, where
//     1 + erf(x / sqrt 2) would cancel.
//   normal_cdf(x) = Phi(x) = erfc(|x| / sqrt 2) / 2 for x < 0, 1 - that for x >= 0.
//   normal_pdf(x) = phi(x) = e^(-x^2 / 2) / sqrt(2 pi).
// Against float64 (tests/model/ops/test_linear_norm_gelu): GELU and its slope within 2.5e-7
// of max(1, |value|) (about 4 float ulps; glibc's erff is within 1 to 2); Phi within 2e-6
// relative above x = -4 and 2e-5 in the far tail, where x^2 / 2 in float loses bits.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

// A hot loop's function compiled for AVX-512, AVX2 and the baseline, picked at load time
// (model/ops targets the baseline x86-64 otherwise).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LONGNET_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LONGNET_VECTOR_CLONES
#endif

namespace longnet::cpu_ops {

inline float exp_nonpositive(float a) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 = hi + lo, hi with 12 low zero bits
  constexpr float kLn2Lo = 1.42860682030941723e-6f;
  const bool nan = a != a;
  // A NaN is computed as 0 (converting it to an integer would be undefined) and returned
  // as itself at the end.
  a = nan ? 0.0f : std::max(a, -87.0f);
  // a log2 e - 1/2 <= -1/2 truncated toward zero is round(a log2 e) (ties down).
  const int32_t n_int = static_cast<int32_t>(a * kLog2e - 0.5f);
  const float n = static_cast<float>(n_int);
  const float r = (a - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = std::bit_cast<float>((n_int + 127) << 23);
  return nan ? std::numeric_limits<float>::quiet_NaN() : p * scale;
}

inline float erfc_nonnegative(float u) {
  const float t = 1.0f / (1.0f + 0.5f * u);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * exp_nonpositive(p - u * u);
}

inline float normal_cdf(float x) {
  constexpr float kInvSqrt2 = 0.707106781186547524f;
  const float half_tail = 0.5f * erfc_nonnegative(std::fabs(x) * kInvSqrt2);
  return x < 0.0f ? half_tail : 1.0f - half_tail;
}

inline float normal_pdf(float x) {
  constexpr float kInvSqrt2Pi = 0.398942280401432678f;
  return kInvSqrt2Pi * exp_nonpositive(-0.5f * x * x);
}

}  // namespace longnet::cpu_ops
