// Spot checks: the exact output of a few rows, evaluated in double precision.
//
// The demo and the benchmarks run problems far too large for a dense reference, so
// they check a sample of rows instead: for a query row, walk every key each pattern
// allows (straight from the definition in dilated_attention_config.hpp) and evaluate
// o, lse and, given do, dq in double. Cost per row: O(allowed keys x D).
// (The test suite has its own, separate dense reference; see tests/reference/.)
#pragma once

#include "kernels/dilated_attention_config.hpp"
#include "runtime/tensor.hpp"

#include <cstdint>
#include <vector>

namespace longnet {

struct RowIndex {
  int64_t batch = 0, token = 0, head = 0;
};

struct SpotCheckError {
  double o = 0;                     // relative L2 error of o over the sampled rows
  double lse = 0;                   // max |lse - lse_ref| over covered sampled rows
  double dq = 0;                    // relative L2 error of dq (when checked)
  int64_t rows = 0;                 // rows checked
  int64_t coverage_mismatches = 0;  // rows covered in one and not the other
};

// `count` rows spread over the whole tensor (first and last token included), seeded.
std::vector<RowIndex> sample_rows(const AttentionShape& shape, int64_t count, uint64_t seed);

SpotCheckError spot_check_forward(const DilatedAttentionConfig& config, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& o,
                                  const Tensor& lse, const std::vector<RowIndex>& rows);

// Also checks dq for the sampled rows (o, lse given by the reference evaluation).
SpotCheckError spot_check_backward(const DilatedAttentionConfig& config, const Tensor& q,
                                   const Tensor& k, const Tensor& v, const Tensor& dout,
                                   const Tensor& dq, const std::vector<RowIndex>& rows);

}  // namespace longnet
