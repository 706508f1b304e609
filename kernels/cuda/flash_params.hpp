// The one params struct of the CUDA dilated-attention kernels (FlashAttention's flash.h
// in spirit): device pointers, 64-bit strides in elements, sizes, scales; passed to every
// kernel by value. Plain C++, shared by the host backend and the .cu files.
//
// A launch covers one pattern: `tasks` is a device copy of PatternTasks::tasks (see
// kernels/attention_tasks.hpp for what a task is). Inputs (q, dout and every task's k, v)
// hold elements of the dtype the launcher was instantiated for; everything written
// (o, lse, dq and the tasks' dk, dv) is float32, accumulated across patterns.
//
// Extras (relative position bias, attention dropout, the bias gradient) come with the
// tasks (SegmentTask::bias, dbias, dropout_key, token_origin, token_stride; device
// pointers) and the dropout fields below. `extras` picks the kernels' kExtras = true
// instantiation; the kExtras = false kernels are the plain ones, untouched by all this.
#pragma once

#include "kernels/attention_tasks.hpp"

#include <cstdint>
#include <type_traits>

namespace longnet::cuda_kernels {

// The kernels read SegmentTask straight from a device copy of the host vector.
static_assert(std::is_trivially_copyable_v<SegmentTask>,
              "SegmentTask is copied to the device byte for byte");

struct FlashParams {
  // ---- inputs, element type of the launch (bf16, fp16 or fp32) ----
  const void* q = nullptr;     // query rows: row t of a task at queries.base + t * query_row_stride
  const void* dout = nullptr;  // backward: dL/do, laid out like q

  // ---- forward state, float32: the running mixture of the patterns done so far ----
  float* o = nullptr;    // like q; 0 before the first pattern
  float* lse = nullptr;  // natural log, at queries.lse_base + t * lse_row_stride; -inf before

  // ---- backward, float32 ----
  const float* saved_lse = nullptr;  // the forward's final (mixture) lse, laid out like lse
  const float* delta = nullptr;      // rowsum(dout * o), laid out like lse
  float* dq = nullptr;               // like q; accumulated (+=) across patterns

  // ---- the pattern's work ----
  const SegmentTask* tasks = nullptr;  // device array of num_tasks tasks
  int64_t num_tasks = 0;
  int64_t query_row_stride = 0;  // elements between dilated query rows (r * H * D)
  int64_t lse_row_stride = 0;    // elements between their lse / delta entries (r * H)
  int64_t max_query_count = 0;   // max over tasks of queries.count (sizes the grid)
  int64_t max_key_count = 0;     // max over tasks of keys.count (sizes the backward grid)

  // ---- scalars ----
  int head_dim = 0;      // D; the launch's template argument, kept for checks
  float scale = 0;       // softmax scale applied to q . k
  float scale_log2 = 0;  // scale * log2(e): scores are kept in base 2 inside the kernels
  bool causal = false;   // key index <= query index, both dilated indices of the segment

  // ---- extras ----
  // Some task has bias or dbias, or dropout is on: run the kExtras = true kernels.
  bool extras = false;
  // Dropout: the pair (query token m, key token n) is kept iff dropout_keep(task
  // dropout_key, m, n, dropout_threshold) (kernels/philox.hpp); kept weights are scaled
  // by dropout_scale. dropout_threshold = dropout_threshold(p), 0 when dropout is off
  // (p = 0), and then dropout_scale = 1.
  uint32_t dropout_threshold = 0;
  float dropout_scale = 1;  // 1 / (1 - p)
};

}  // namespace longnet::cuda_kernels
