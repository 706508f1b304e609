// The cost model of sequence-parallel dilated attention (`longnet bench model`).
//
// Two halves. The work of one attention call on each rank is exact and machine-free: the
// (query, key) pairs its kernels compute, and the bytes and collective calls the
// communicator counters record for it, from the same plan the runtime executes
// (model/sequence_parallel_plan.hpp). The time is a model: per rank,
//   compute = FLOPs / kernel rate,
//   comm    = sum over its collectives of  alpha * steps(g) + bytes / beta,
// a collective over a group of g ranks: steps(g) = g - 1 for a ring (NCCL's all-gather
// and reduce-scatter), ceil(log2 g) for a tree; `bytes` the largest receive of any group
// member, which a bandwidth-optimal algorithm puts on that member's incoming link (the
// nccl-tests bus-bandwidth convention). alpha, beta are those of NVLink when the group
// lies inside one node, of the inter-node network otherwise. Compute and communication
// are assumed not to overlap (the runtime does not overlap them), and the layer takes
// max over ranks of (compute + comm): the slowest rank sets the pace, the others wait.
//
// Which rank computes what (model/sequence_parallel_attention.hpp): queries never move.
// A rank computes every allowed pair whose query token it holds: segments inside its
// shard locally, and for each spanning segment its own selected rows against all of the
// segment's gathered rows. Each pair is computed by exactly one rank, so the per-rank
// pairs sum to allowed_pairs() of the global shape.
//
// Calibrating the model against this machine's measurements lives beside it, in
// bench/cost_model_validation.hpp.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/dilated_attention_config.hpp"

namespace longnet::bench {

// ---- the work of one call, per rank (exact) -----------------------------------------

// One layer's problem as the runtime sees it.
struct LayerProblem {
  DilatedAttentionConfig config;
  AttentionShape shape;        // global: batch, all tokens, heads, head dim
  int world = 1;               // ranks P, each holding a balanced contiguous shard
  int64_t element_bytes = 4;   // of k, v on the wire: 4 float32 (the CPU runtime), 2 bf16
  int64_t ranks_per_node = 8;  // ranks [k*n, (k+1)*n) share node k (links: intra or inter)
};

// Collectives on one kind of link, summed over calls; time = steps * alpha + bytes / beta.
struct LinkLoad {
  int64_t calls = 0;
  int64_t ring_steps = 0;  // sum over calls of g - 1: a ring's latency steps
  int64_t tree_steps = 0;  // sum over calls of ceil(log2 g): a tree's (or NCCL's PAT's)
  double bytes = 0;        // sum over calls of the largest receive of any member of the group
};

// One rank's work in one pass over all patterns.
struct RankWork {
  double pairs = 0;                   // allowed (query, key) pairs its kernels compute
  int64_t gather_sent_bytes = 0;      // one pass of k, v all-gathers: the counters' sent,
  int64_t gather_received_bytes = 0;  // and received (comm/comm_counters.hpp)
  int64_t gathers = 0;                // all-gather calls in one pass (one per spanning segment)
  LinkLoad intra_node, inter_node;    // those calls by link, for the time
};

// Every rank's work; per-segment loops (no per-token loop), fast at N = 10^9, P = 10^5+.
std::vector<RankWork> rank_work(const LayerProblem& problem);

enum class Direction { forward, backward };
std::string_view direction_name(Direction direction);  // "fwd", "bwd"

// What one call costs a rank, in the counters' terms. The forward all-gathers k, v per
// spanning segment; the backward gathers them again and reduce-scatters dk, dv (the
// transpose: sent and received swap), so its bytes are the gather's sent + received in
// each direction and its calls twice the forward's. FLOPs: 4 D per pair forward,
// 2.5 times that backward (forward_flops / backward_flops).
struct CallWork {
  double flops = 0;
  int64_t sent_bytes = 0, received_bytes = 0, collectives = 0;
};
CallWork call_work(const RankWork& work, Direction direction, int64_t head_dim);

// ---- machine parameters and the predicted time ------------------------------------

struct LinkCost {
  double latency_us = 0;      // alpha, per ring step
  double bandwidth_GBps = 0;  // beta, 10^9 bytes per second per rank, one direction
};
struct NetworkCost {
  LinkCost all_gather, reduce_scatter;
};

// How many latency steps a collective over g ranks takes. Its bandwidth term is the same
// for both (a bandwidth-optimal algorithm puts the largest receive on one link).
enum class LatencySteps { ring, tree };  // g - 1, or ceil(log2 g)
int64_t latency_step_count(LatencySteps steps, int64_t group_size);
std::string_view latency_steps_name(LatencySteps steps);
LatencySteps parse_latency_steps(std::string_view text);

struct MachineModel {
  double forward_tflops = 0, backward_tflops = 0;  // effective FLOP rate of the kernels
  NetworkCost intra_node, inter_node;
  LatencySteps latency_steps = LatencySteps::ring;
};

// An H100 node of 8 GPUs (bench/README.md's cost model section gives the source of each
// figure): kernel rates measured on this project's H100 run, NVLink 4 and InfiniBand NDR
// nominal bandwidths, assumed latencies.
MachineModel h100_machine();

struct RankTime {
  double compute_s = 0, comm_s = 0;
};
RankTime rank_time(const RankWork& work, Direction direction, const MachineModel& machine,
                   int64_t head_dim);

// One direction of one layer over all ranks. Each max is taken on its own.
struct LayerPrediction {
  double time_s = 0;     // max over ranks of compute + comm: the layer's latency
  double compute_s = 0;  // max over ranks of compute
  double comm_s = 0;     // max over ranks of comm
  int slowest_rank = 0;  // the rank that sets time_s
  double max_flops = 0, total_flops = 0;
  int64_t max_sent_bytes = 0, max_received_bytes = 0, max_collectives = 0;
};
LayerPrediction predict(const std::vector<RankWork>& work, Direction direction,
                        const MachineModel& machine, int64_t head_dim);

// The sweep's patterns: w_i = base * ratio^i and r_i = ratio^i for every w_i <= tokens
// (the first always), so every segment holds w_i / r_i = base dilated rows per head: the
// paper's geometric progression, whose work per token grows only with the pattern count.
std::vector<DilationPattern> geometric_patterns(int64_t tokens, int64_t base_segment,
                                                int64_t ratio);
// Dense attention as dilated attention: one segment of the whole sequence, r = 1.
DilatedAttentionConfig dense_config(int64_t tokens, bool causal);

}  // namespace longnet::bench
