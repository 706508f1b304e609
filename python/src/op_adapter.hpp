// The one place where the Python extension meets the C++ attention op. Everything the
// bindings (module.cpp) need from kernels/ goes through these functions, so a change of
// the op's interface is absorbed here alone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/attention_core.hpp"
#include "runtime/tensor.hpp"

namespace longnet::python {

// Memory owned by the caller's framework (a NumPy array or a torch tensor), already checked
// to be dense and row-major; `name` is the Python argument's name, for errors.
struct ArrayView {
  const char* name = "";
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::float32;
  Device device = Device::cpu;
  int device_id = 0;
};

struct AttentionCall {
  std::vector<int64_t> segment_lengths;
  std::vector<int64_t> dilation_rates;
  bool causal = false;
  std::string head_offsets = "interleaved";
  std::optional<double> scale;
  // The caller's CUDA stream (cudaStream_t as an integer; 0: the legacy default stream).
  uintptr_t stream = 0;
};

// o [B, N, H, D] and lse [B, N, H] are overwritten; q, k, v [B, N, H, D].
void attention_forward(const AttentionCall& call, const ArrayView& q, const ArrayView& k,
                       const ArrayView& v, const ArrayView& o, const ArrayView& lse);
// The exact gradient; dq, dk, dv overwritten.
void attention_backward(const AttentionCall& call, const ArrayView& q, const ArrayView& k,
                        const ArrayView& v, const ArrayView& o, const ArrayView& lse,
                        const ArrayView& dout, const ArrayView& dq, const ArrayView& dk,
                        const ArrayView& dv);

// Whether this build holds the CUDA kernels.
bool cuda_kernels_built();

// The balanced split of `tokens` over `world` ranks: [begin, end) of `rank`.
std::pair<int64_t, int64_t> sequence_shard(int64_t tokens, int world, int rank);

// Dilated attention with the sequence split across the ranks of an MPI communicator
// (model/sequence_parallel_attention.hpp), CPU tensors. Built only with MPI.
class SequenceParallelOp {
 public:
  // Collective over the communicator whose Fortran handle (mpi4py's comm.py2f()) is given;
  // global_shape is [B, all tokens, H, D], the same on every rank.
  SequenceParallelOp(int64_t fortran_comm, AttentionCall call, Shape global_shape);
  ~SequenceParallelOp();
  int rank() const;
  int world_size() const;
  std::pair<int64_t, int64_t> shard() const;  // this rank's [begin, end)
  // This rank's q, k, v, o [B, shard, H, D] and lse [B, shard, H]. Collective.
  void forward(const ArrayView& q, const ArrayView& k, const ArrayView& v, const ArrayView& o,
               const ArrayView& lse);
  void backward(const ArrayView& q, const ArrayView& k, const ArrayView& v, const ArrayView& o,
                const ArrayView& lse, const ArrayView& dout, const ArrayView& dq,
                const ArrayView& dk, const ArrayView& dv);

 private:
  struct State;
  std::unique_ptr<State> state_;
};
bool mpi_built();

// Dilated attention where every pattern has its own q and k (xPos) and optionally a
// relative position bias [H, 2L - 1] (model/pattern_operands.hpp), through the local
// attention core. qs, ks (and biases, when not empty): one per pattern of call.
void pattern_attention_forward(const AttentionCall& call, const std::vector<ArrayView>& qs,
                               const std::vector<ArrayView>& ks, const ArrayView& v,
                               const std::vector<ArrayView>& biases, const ArrayView& o,
                               const ArrayView& lse);
// dqs, dks, dbiases are ADDED to (zero them first); dv is overwritten.
void pattern_attention_backward(const AttentionCall& call, const std::vector<ArrayView>& qs,
                                const std::vector<ArrayView>& ks, const ArrayView& v,
                                const std::vector<ArrayView>& biases, const ArrayView& o,
                                const ArrayView& lse, const ArrayView& dout,
                                const std::vector<ArrayView>& dqs,
                                const std::vector<ArrayView>& dks, const ArrayView& dv,
                                const std::vector<ArrayView>& dbiases);
// L of a pattern's bias rows [H, 2L - 1] (kernels/attention_tasks.hpp).
int64_t bias_rows(int64_t segment_length, int64_t dilation_rate);

// The attention step of the model layers on this process's CPU kernels (the local core of
// model/attention_core.hpp), for the decoder binding.
std::unique_ptr<AttentionCore> local_cpu_attention_core(const DilatedAttentionConfig& config,
                                                        const AttentionShape& shape);

}  // namespace longnet::python
