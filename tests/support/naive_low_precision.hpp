// A naive dilated attention in 16-bit arithmetic: the "naive same-precision
// implementation" of FlashAttention's accuracy bound, for tests of the CUDA kernels only.
//
// It computes what a framework's plain attention does with bfloat16 / float16 tensors:
// every matrix product accumulates in float32 and rounds its output to the dtype, and so
// does every elementwise step (softmax and its backward compute in float32 internally).
// Per query row, over the multiset of (pattern, key) pairs the configuration allows
// (one softmax over their union, as in tests/reference/):
//   forward   s = rd(q . k),  a = rd(s * scale),  P = rd(softmax(a)),  o = rd(P v)
//   backward  dP = rd(do . v),  dv = rd(P^T do),  da = rd(P (dP - sum(P dP))),
//             ds = rd(da * scale),  dq = rd(ds k),  dk = rd(ds^T q)
// where rd rounds to the dtype (nearest even). Rows no pattern selects get zeros.
// Written straight from those lines with the reference's mask predicate; O(B H N^2 P).
#pragma once

#include "kernels/dilated_attention_config.hpp"
#include "runtime/dtype.hpp"
#include "runtime/tensor.hpp"

#include <vector>

namespace longnet::test {

struct NaiveLowPrecision {
  std::vector<double> o, dq, dk, dv;  // [B, N, H, D], each value representable in the dtype
};

// q, k, v, dout: float32 host tensors [B, N, H, D] holding values of `dtype` (bfloat16 or
// float16).
NaiveLowPrecision naive_low_precision_attention(const DilatedAttentionConfig& config,
                                                const Tensor& q, const Tensor& k, const Tensor& v,
                                                const Tensor& dout, DType dtype);

}  // namespace longnet::test
