// Packed variable-length documents, by their definition: each document of a batch row is
// its own sequence. The reference cuts q, k, v, do into one [1, length, H, D] sequence per
// document, runs the dense float64 reference on each alone, and puts the results back at
// the document's rows. Shared by the CPU and CUDA suites, with the case list beside the
// plain grid's.
#pragma once

#include <string>
#include <vector>

#include "kernels/dilated_attention.hpp"
#include "tests/reference/dense_attention_reference.hpp"

namespace longnet::test {

struct DocumentCase {
  std::string name;
  AttentionShape shape;  // kv_heads as in the plain grid
  DilatedAttentionConfig config;
  DocumentLengths documents;
};

inline void PrintTo(const DocumentCase& c, std::ostream* os) { *os << c.name; }

inline std::vector<DocumentCase> document_cases() {
  using HO = HeadOffsets;
  const auto config = [](std::vector<int64_t> w, std::vector<int64_t> r, bool causal, HO scheme) {
    return DilatedAttentionConfig::from_lists(w, r, causal, scheme);
  };
  return {
      // The awkward lengths: a one-token document, segments longer than documents
      // (w = 512 and 2048 against 300 and 692), r = 4 with H = 3.
      {"N1000_docs_1_7_300_692_causal_grouped",
       {1, 1000, 3, 32},
       config({16, 512, 2048}, {1, 2, 4}, true, HO::grouped),
       {{1, 7, 300, 692}}},
      // Two rows with different document counts (the second ends in a zero), grouped-query
      // heads (6 over 2), segment boundaries that do not line up with documents.
      {"B2_N600_docs_two_rows_H6_kv2_noncausal_interleaved",
       {2, 600, 6, 32, 2},
       config({100, 333}, {3, 7}, false, HO::interleaved),
       {{250, 350, 0}, {1, 598, 1}}},
      // One document per row: the same as no documents at all.
      {"N130_one_document_causal_interleaved",
       {1, 130, 2, 32},
       config({64, 128}, {1, 2}, true, HO::interleaved),
       {{130}}},
  };
}

inline std::string document_case_name(const DocumentCase& c) { return c.name; }

struct DocumentReference {
  std::vector<double> o, lse, dq, dk, dv;  // dk, dv: [B, N, Hkv, D]
};

// q, dout [B, N, H, D]; k, v [B, N, Hkv, D] (float32 tensors).
inline DocumentReference document_reference(const DocumentCase& c, const Tensor& q, const Tensor& k,
                                            const Tensor& v, const Tensor& dout) {
  const AttentionShape& s = c.shape;
  const int64_t kv_heads = s.key_heads(), d = s.head_dim;
  DocumentReference out;
  out.o.assign(static_cast<std::size_t>(s.elements()), 0.0);
  out.dq.assign(out.o.size(), 0.0);
  out.lse.assign(static_cast<std::size_t>(s.rows()), 0.0);
  out.dk.assign(static_cast<std::size_t>(s.key_elements()), 0.0);
  out.dv.assign(out.dk.size(), 0.0);
  const auto slice = [&](const Tensor& t, int64_t b, int64_t first, int64_t length) {
    const int64_t heads = t.dim(2);
    Tensor part({1, length, heads, d}, DType::float32);
    const float* src = t.data<float>() + (b * s.tokens + first) * heads * d;
    std::copy(src, src + length * heads * d, part.data<float>());
    return part;
  };
  for (int64_t b = 0; b < s.batch; ++b) {
    int64_t first = 0;
    for (const int64_t length : c.documents[static_cast<std::size_t>(b)]) {
      if (length == 0) continue;
      const Tensor kd = slice(k, b, first, length), vd = slice(v, b, first, length);
      const Tensor qd = slice(q, b, first, length), dod = slice(dout, b, first, length);
      const auto in = kv_heads != s.heads ? reference::DenseInputs::from_grouped_tensors(qd, kd, vd)
                                          : reference::DenseInputs::from_tensors(qd, kd, vd);
      const auto fwd = reference::dense_forward(c.config, in);
      auto grads = reference::dense_backward(c.config, in, reference::to_doubles(dod));
      if (kv_heads != s.heads) {
        grads.dk = reference::sum_over_query_heads(grads.dk, in.shape, kv_heads);
        grads.dv = reference::sum_over_query_heads(grads.dv, in.shape, kv_heads);
      }
      const auto q_at = static_cast<std::size_t>((b * s.tokens + first) * s.heads * d);
      const auto k_at = static_cast<std::size_t>((b * s.tokens + first) * kv_heads * d);
      const auto row_at = static_cast<std::size_t>((b * s.tokens + first) * s.heads);
      std::ranges::copy(fwd.o, out.o.begin() + static_cast<std::ptrdiff_t>(q_at));
      std::ranges::copy(grads.dq, out.dq.begin() + static_cast<std::ptrdiff_t>(q_at));
      std::ranges::copy(fwd.lse, out.lse.begin() + static_cast<std::ptrdiff_t>(row_at));
      std::ranges::copy(grads.dk, out.dk.begin() + static_cast<std::ptrdiff_t>(k_at));
      std::ranges::copy(grads.dv, out.dv.begin() + static_cast<std::ptrdiff_t>(k_at));
      first += length;
    }
  }
  return out;
}

}  // namespace longnet::test
