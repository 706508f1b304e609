// The task-level form of dilated attention: what a backend's kernels receive.
//
// forward()/backward() of DilatedAttentionOp cut each pattern into tasks, one per
// (batch, head, segment): some query rows attend all key rows of that segment. The
// sequence-parallel layer builds tasks itself, with keys in a buffer gathered from
// other ranks, and hands them to the same kernels. One params struct per kernel
// family: raw pointers (host or device memory, as the backend requires), strides in
// elements, the scalars.
#pragma once

#include "kernels/dilated_attention_config.hpp"
#include "runtime/dtype.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace longnet {

struct AttentionParams {
  // The element type of the inputs q, k, v and dout (float32 on the CPU; bfloat16,
  // float16 or float32 on CUDA). Outputs and accumulators are always float32: o, lse,
  // delta, dq, dk, dv are running sums over patterns, which 16-bit types would round
  // away; a backend converts them at the end.
  DType input_dtype = DType::float32;
  // Query-side tensors, [B, N, H, D] (lse, saved_lse and delta [B, N, H]). Key-side
  // rows come with each task (KeyRows), so keys may live elsewhere (a gathered buffer).
  const void* q = nullptr;
  // Forward outputs. o and lse (natural log) hold the running mixture of the patterns
  // processed so far: o = 0, lse = -inf before the first pattern.
  float* o = nullptr;
  float* lse = nullptr;
  // Backward inputs: the forward's lse, dout [B, N, H, D], delta = rowsum(dout * o).
  const float* saved_lse = nullptr;
  const void* dout = nullptr;
  const float* delta = nullptr;
  // Backward output, accumulated over patterns (zero before the first).
  float* dq = nullptr;

  int64_t head_dim = 0;  // D
  float scale = 0;       // softmax scale applied to q . k
  bool causal = false;   // key index <= query index, in dilated index of the segment
  // Attention dropout probability in [0, 1); 0 turns dropout off. The pair of query
  // token m and key token n is kept iff
  // dropout_keep(task.dropout_key, m, n, dropout_threshold(p))
  // (kernels/philox.hpp); kept weights are scaled by 1 / (1 - p) after the softmax.
  float dropout_p = 0;
};

// Some of the rows one pattern selects in one (batch, head, segment), as queries: the
// rows with dilated index first_index + t, t in [0, count). Row t of q, o, dout, dq sits
// at element base + t * query_row_stride; its lse and delta at lse_base + t * lse_row_stride.
struct QueryRows {
  int64_t base = 0;
  int64_t lse_base = 0;
  int64_t count = 0;
  int64_t first_index = 0;  // dilated index of row 0 within the segment (causal masking)
};

// All the rows one pattern selects in one (batch, head, segment), as keys: dilated
// index t in [0, count) at k + t * row_stride (likewise v; gradients into dk, dv).
struct KeyRows {
  const void* k = nullptr;  // elements of AttentionParams::input_dtype
  const void* v = nullptr;
  float* dk = nullptr;  // backward only; accumulated (+=)
  float* dv = nullptr;
  int64_t row_stride = 0;
  int64_t count = 0;
};

// One (batch, head, segment) of one pattern: these queries attend these keys.
struct SegmentTask {
  QueryRows queries;
  KeyRows keys;
  // Relative position bias by dilated distance d = i - j (query minus key dilated
  // index; real distance d * r): s_ij = scale * q_i . k_j + bias[i - j]. Points at the
  // element for d = 0 of a float32 vector valid for d in [-(L-1), L-1], L = ceil(w / r)
  // (host or device memory, as the backend requires). Null: no bias.
  const float* bias = nullptr;
  // Backward only, same indexing as bias: += sum over this task's pairs (i, j) of dS_ij,
  // the gradient of the pre-softmax score. Tasks may share one vector (adds are atomic).
  // Null: not wanted (bias may still be set).
  float* dbias = nullptr;
  // Dropout (when AttentionParams::dropout_p > 0): the Philox key of this task, and the
  // GLOBAL token position of dilated index 0 and the step between dilated indices (r):
  // query i is token m = token_origin + i * token_stride, key j is token
  // n = token_origin + j * token_stride.
  uint64_t dropout_key = 0;
  int64_t token_origin = 0;
  int64_t token_stride = 1;
};

// One pattern's work. Tasks never share query rows, nor key-gradient rows, so they run
// in parallel without races; patterns run one after another.
struct PatternTasks {
  int64_t query_row_stride = 0;  // r * H * D
  int64_t lse_row_stride = 0;    // r * H
  std::vector<SegmentTask> tasks;
};

// Throws unless 0 <= p < 1 (the message says 0 turns dropout off).
void check_dropout_probability(float p);

// L = ceil(w / r): the most rows one segment of `pattern` selects for a head, so dilated
// distances i - j lie in [-(L-1), L-1] and a bias vector has 2L - 1 elements.
int64_t relative_bias_rows(const DilationPattern& pattern);

// What segment_tasks attaches to each task of one pattern besides its rows. Each vector
// is empty (feature off) or holds one entry per head h of the local shape.
struct TaskExtras {
  std::vector<const float*> bias;  // head h's bias vector, pointing at distance d = 0
  std::vector<float*> dbias;       // head h's bias gradient, same indexing
  // Head h's dropout_stream_key(seed, step, layer, h, pattern) (kernels/philox.hpp); a
  // task of batch b gets dropout_task_key(dropout_keys[h], b).
  std::vector<uint64_t> dropout_keys;
};

// The tasks of the segments of `pattern` that lie wholly inside the tokens
// [first_token, first_token + local.tokens) of a sequence of `total_tokens`, for tensors
// that hold exactly those tokens ([B, local.tokens, H, D]): each segment's selected rows
// attend all of them. One rank holding the whole sequence passes first_token = 0 and
// total_tokens = local.tokens. k and v point at elements of `element_bytes` bytes,
// [B, local.tokens, Hkv, D] (Hkv = local.key_heads(); query head h reads kv head
// local.kv_head(h)); dk and dv (float32 accumulators) may be null for a forward. With
// grouped heads the query heads of one kv head would add into the same key rows, so dk
// and dv then hold local.group_size() accumulators of [B, local.tokens, Hkv, D] one after
// another, query head h adding into accumulator h mod group_size(); the caller sums
// them (tasks never share gradient rows, whatever the grouping). Every task gets token_origin
// (the global token of its dilated index 0: segment start + head offset) and
// token_stride = r; bias, dbias and dropout_key come from `extras` when given.
PatternTasks segment_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                           const AttentionShape& local, int64_t first_token, int64_t total_tokens,
                           const void* k, const void* v, std::size_t element_bytes, float* dk,
                           float* dv, const TaskExtras& extras = {});

// Packed variable-length documents: per batch row, the lengths of its documents in order,
// summing to the row's N; a row with fewer documents than another ends in zeros. Each
// document behaves as its own sequence: segments start at its first token (the last one
// ends with it), and no query attends across a document boundary. (Dropout keys still see
// the row's token positions, so two documents of a row draw independent masks.)
using DocumentLengths = std::vector<std::vector<int64_t>>;

// Throws an Error naming the row: a count of rows other than B, a negative length, a
// non-zero length after a zero, a row not summing to N.
void check_document_lengths(const DocumentLengths& documents, const AttentionShape& shape);

// out[i] (+)= the sum over j < group of accumulators[j n + i], in member order: the key
// gradients of grouped-query heads, from the group_size() accumulators segment_tasks and
// document_tasks fill. accumulate: add onto out; else overwrite it. Host memory.
void sum_group_accumulators(const float* accumulators, int64_t group, float* out, int64_t n,
                            bool accumulate);

// segment_tasks for a whole sequence of packed documents (one rank holding every token).
PatternTasks document_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                            const AttentionShape& shape, const DocumentLengths& documents,
                            const void* k, const void* v, std::size_t element_bytes, float* dk,
                            float* dv, const TaskExtras& extras = {});

}  // namespace longnet
