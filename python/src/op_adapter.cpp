#include "op_adapter.hpp"

#include "kernels/dilated_attention_factory.hpp"
#include "longnet/config.hpp"
#ifdef LONGNET_HAVE_CUDA_KERNELS
#include <cuda_runtime_api.h>
#endif

#ifdef LONGNET_HAVE_MPI
#include "comm/mpi_communicator.hpp"
#include "model/sequence_parallel_attention.hpp"
#endif
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>

#include "model/sequence_parallel_plan.hpp"

namespace longnet::python {
namespace {

DilatedAttentionConfig to_config(const AttentionCall& call) {
  return DilatedAttentionConfig::from_lists(call.segment_lengths, call.dilation_rates, call.causal,
                                            parse_head_offsets(call.head_offsets), call.scale);
}

Tensor to_tensor(const ArrayView& view) {
  return Tensor::borrow(view.data, view.shape, view.dtype, view.device);
}

// One backend per (device, index, dtype), made on first use and kept (the CPU one picks its
// ISA once). The factory refuses a dtype the backend does not take, naming it.
DilatedAttentionOp& kernels_for(const ArrayView& q) {
  static std::mutex mutex;
  static std::map<std::tuple<Device, int, DType>, std::unique_ptr<DilatedAttentionOp>> ops;
  std::lock_guard lock(mutex);
#ifndef LONGNET_HAVE_CUDA_KERNELS
  LONGNET_CHECK(q.device != Device::cuda,
                "{} is on a CUDA device, but this build of longnet has no CUDA kernels: rebuild "
                "the package with the CUDA toolkit present (LONGNET_CUDA=ON), or move the "
                "tensors to the CPU",
                q.name);
#endif
  auto& slot = ops[{q.device, q.device_id, q.dtype}];
  if (!slot) slot = make_dilated_attention(q.device, q.dtype, std::nullopt, q.device_id);
  return *slot;
}

void check_same_device(const ArrayView& first, std::initializer_list<const ArrayView*> others) {
  for (const ArrayView* other : others) {
    LONGNET_CHECK(other->device == first.device && other->device_id == first.device_id,
                  "{} is on {}:{} but {} is on {}:{}: put every tensor on one device", other->name,
                  device_name(other->device), other->device_id, first.name,
                  device_name(first.device), first.device_id);
  }
}

// The op runs on its own stream and returns when its work is done; ordering it after the
// caller's stream (whose pending work may still be writing the inputs) makes the call
// behave as if it ran on that stream.
void wait_for_caller_stream([[maybe_unused]] const AttentionCall& call, const ArrayView& q) {
  if (q.device != Device::cuda) return;
#ifdef LONGNET_HAVE_CUDA_KERNELS
  const cudaError_t status =
      cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(call.stream));  // NOLINT
  LONGNET_CHECK(status == cudaSuccess, "waiting for the caller's CUDA stream failed: {}",
                cudaGetErrorString(status));
#endif
}

}  // namespace

void attention_forward(const AttentionCall& call, const ArrayView& q, const ArrayView& k,
                       const ArrayView& v, const ArrayView& o, const ArrayView& lse) {
  check_same_device(q, {&k, &v, &o, &lse});
  const DilatedAttentionConfig config = to_config(call);
  validate_config(config);
  const Tensor tq = to_tensor(q), tk = to_tensor(k), tv = to_tensor(v);
  const AttentionShape shape = check_qkv(tq, tk, tv);
  Tensor to = to_tensor(o), tlse = to_tensor(lse);
  check_tensor(to, qkv_shape(shape), o.name);
  check_tensor(tlse, lse_shape(shape), lse.name);
  DilatedAttentionOp& kernels = kernels_for(q);
  wait_for_caller_stream(call, q);
  kernels.forward(config, tq, tk, tv, to, tlse);
  kernels.synchronize();
}

void attention_backward(const AttentionCall& call, const ArrayView& q, const ArrayView& k,
                        const ArrayView& v, const ArrayView& o, const ArrayView& lse,
                        const ArrayView& dout, const ArrayView& dq, const ArrayView& dk,
                        const ArrayView& dv) {
  check_same_device(q, {&k, &v, &o, &lse, &dout, &dq, &dk, &dv});
  const DilatedAttentionConfig config = to_config(call);
  validate_config(config);
  const Tensor tq = to_tensor(q), tk = to_tensor(k), tv = to_tensor(v);
  const AttentionShape shape = check_qkv(tq, tk, tv);
  const Tensor to = to_tensor(o), tlse = to_tensor(lse), tdout = to_tensor(dout);
  Tensor tdq = to_tensor(dq), tdk = to_tensor(dk), tdv = to_tensor(dv);
  check_tensor(to, qkv_shape(shape), o.name);
  check_tensor(tlse, lse_shape(shape), lse.name);
  check_tensor(tdout, qkv_shape(shape), dout.name);
  check_tensor(tdq, qkv_shape(shape), dq.name);
  check_tensor(tdk, qkv_shape(shape), dk.name);
  check_tensor(tdv, qkv_shape(shape), dv.name);
  DilatedAttentionOp& kernels = kernels_for(q);
  wait_for_caller_stream(call, q);
  kernels.backward(config, tq, tk, tv, to, tlse, tdout, tdq, tdk, tdv);
  kernels.synchronize();
}

std::pair<int64_t, int64_t> sequence_shard(int64_t tokens, int world, int rank) {
  LONGNET_CHECK(world > 0 && rank >= 0 && rank < world,
                "sequence_shard: rank {} is outside a world of {} ranks", rank, world);
  const Shard shard = shard_of(tokens, world, rank);
  return {shard.begin, shard.end};
}

#ifdef LONGNET_HAVE_MPI
struct SequenceParallelOp::State {
  std::unique_ptr<MpiCommunicator> world;
  std::unique_ptr<SequenceParallelAttention> attention;
};

SequenceParallelOp::SequenceParallelOp(int64_t fortran_comm, AttentionCall call, Shape global_shape)
    : state_(std::make_unique<State>()) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  LONGNET_CHECK(initialized && !finalized,
                "distributed: MPI is not running; import mpi4py.MPI (which starts it) and pass "
                "a communicator such as MPI.COMM_WORLD");
  LONGNET_CHECK(global_shape.size() == 4, "distributed: the global shape must be [B, N, H, D]");
  const MPI_Comm comm = MPI_Comm_f2c(static_cast<MPI_Fint>(fortran_comm));
  LONGNET_CHECK(comm != MPI_COMM_NULL, "distributed: the communicator is MPI_COMM_NULL");
  const DilatedAttentionConfig config = to_config(call);
  validate_config(config);
  const AttentionShape shape{global_shape[0], global_shape[1], global_shape[2], global_shape[3]};
  validate_shape(shape);
  ArrayView cpu;
  cpu.name = "q";
  state_->world = MpiCommunicator::duplicate(comm, "python");
  state_->attention =
      std::make_unique<SequenceParallelAttention>(*state_->world, config, shape, kernels_for(cpu));
}

SequenceParallelOp::~SequenceParallelOp() = default;
int SequenceParallelOp::rank() const { return state_->world->rank(); }
int SequenceParallelOp::world_size() const { return state_->world->size(); }
std::pair<int64_t, int64_t> SequenceParallelOp::shard() const {
  return {state_->attention->shard().begin, state_->attention->shard().end};
}

void SequenceParallelOp::forward(const ArrayView& q, const ArrayView& k, const ArrayView& v,
                                 const ArrayView& o, const ArrayView& lse) {
  check_same_device(q, {&k, &v, &o, &lse});
  LONGNET_CHECK(q.device == Device::cpu,
                "distributed: q must be on the CPU (the MPI "
                "communicator moves host memory)");
  const AttentionShape& local = state_->attention->local_shape();
  const Tensor tq = to_tensor(q), tk = to_tensor(k), tv = to_tensor(v);
  Tensor to = to_tensor(o), tlse = to_tensor(lse);
  check_tensor(tq, qkv_shape(local), "q (this rank's shard)");
  check_tensor(tk, qkv_shape(local), "k (this rank's shard)");
  check_tensor(tv, qkv_shape(local), "v (this rank's shard)");
  check_tensor(to, qkv_shape(local), o.name);
  check_tensor(tlse, lse_shape(local), lse.name);
  state_->attention->forward(tq, tk, tv, to, tlse);
}

void SequenceParallelOp::backward(const ArrayView& q, const ArrayView& k, const ArrayView& v,
                                  const ArrayView& o, const ArrayView& lse, const ArrayView& dout,
                                  const ArrayView& dq, const ArrayView& dk, const ArrayView& dv) {
  check_same_device(q, {&k, &v, &o, &lse, &dout, &dq, &dk, &dv});
  LONGNET_CHECK(q.device == Device::cpu, "distributed: q must be on the CPU");
  const Shape heads = qkv_shape(state_->attention->local_shape());
  const Tensor tq = to_tensor(q), tk = to_tensor(k), tv = to_tensor(v), to = to_tensor(o),
               tlse = to_tensor(lse), tdout = to_tensor(dout);
  Tensor tdq = to_tensor(dq), tdk = to_tensor(dk), tdv = to_tensor(dv);
  for (const auto* t : {&tq, &tk, &tv, &to, &tdout}) check_tensor(*t, heads, "a shard");
  check_tensor(tdq, heads, dq.name);
  check_tensor(tdk, heads, dk.name);
  check_tensor(tdv, heads, dv.name);
  state_->attention->backward(tq, tk, tv, to, tlse, tdout, tdq, tdk, tdv);
}

bool mpi_built() { return true; }
#else
struct SequenceParallelOp::State {};
SequenceParallelOp::SequenceParallelOp(int64_t, AttentionCall, Shape) {
  fail("distributed: this build of longnet has no MPI; rebuild with LONGNET_MPI=ON");
}
SequenceParallelOp::~SequenceParallelOp() = default;
int SequenceParallelOp::rank() const { return 0; }
int SequenceParallelOp::world_size() const { return 1; }
std::pair<int64_t, int64_t> SequenceParallelOp::shard() const { return {0, 0}; }
void SequenceParallelOp::forward(const ArrayView&, const ArrayView&, const ArrayView&,
                                 const ArrayView&, const ArrayView&) {}
void SequenceParallelOp::backward(const ArrayView&, const ArrayView&, const ArrayView&,
                                  const ArrayView&, const ArrayView&, const ArrayView&,
                                  const ArrayView&, const ArrayView&, const ArrayView&) {}
bool mpi_built() { return false; }
#endif

namespace {

struct PatternCall {
  DilatedAttentionConfig config;
  std::vector<Tensor> qs, ks, biases, dqs, dks, dbiases;
  std::vector<PatternOperands> operands;
};

PatternCall pattern_call(const AttentionCall& call, const std::vector<ArrayView>& qs,
                         const std::vector<ArrayView>& ks, const std::vector<ArrayView>& biases) {
  PatternCall c;
  c.config = to_config(call);
  validate_config(c.config);
  const std::size_t patterns = c.config.patterns.size();
  LONGNET_CHECK(qs.size() == patterns && ks.size() == patterns,
                "one q and one k per pattern ({}), got {} and {}", patterns, qs.size(), ks.size());
  LONGNET_CHECK(biases.empty() || biases.size() == patterns,
                "biases: none or one per pattern ({}), got {}", patterns, biases.size());
  for (std::size_t p = 0; p < patterns; ++p) {
    c.qs.push_back(to_tensor(qs[p]));
    c.ks.push_back(to_tensor(ks[p]));
    if (!biases.empty()) c.biases.push_back(to_tensor(biases[p]));
  }
  return c;
}

void link_operands(PatternCall& c) {
  c.operands.resize(c.qs.size());
  for (std::size_t p = 0; p < c.qs.size(); ++p) {
    c.operands[p].q = &c.qs[p];
    c.operands[p].k = &c.ks[p];
    if (!c.biases.empty()) c.operands[p].bias = &c.biases[p];
    if (!c.dqs.empty()) c.operands[p].dq = &c.dqs[p];
    if (!c.dks.empty()) c.operands[p].dk = &c.dks[p];
    if (!c.dbiases.empty()) c.operands[p].dbias = &c.dbiases[p];
  }
}

AttentionShape pattern_shape(const PatternCall& c, const Tensor& v) {
  for (std::size_t p = 0; p < c.qs.size(); ++p) check_qkv(c.qs[p], c.ks[p], v);
  LONGNET_CHECK(v.rank() == 4, "v must have rank 4");
  return {v.dim(0), v.dim(1), v.dim(2), v.dim(3)};
}

}  // namespace

void pattern_attention_forward(const AttentionCall& call, const std::vector<ArrayView>& qs,
                               const std::vector<ArrayView>& ks, const ArrayView& v,
                               const std::vector<ArrayView>& biases, const ArrayView& o,
                               const ArrayView& lse) {
  LONGNET_CHECK(v.device == Device::cpu, "per-pattern attention (xPos, bias) runs on the CPU");
  PatternCall c = pattern_call(call, qs, ks, biases);
  link_operands(c);
  const Tensor tv = to_tensor(v);
  const AttentionShape shape = pattern_shape(c, tv);
  Tensor to = to_tensor(o), tlse = to_tensor(lse);
  check_tensor(to, qkv_shape(shape), o.name);
  check_tensor(tlse, lse_shape(shape), lse.name);
  auto core = make_local_attention_core(c.config, shape, kernels_for(v));
  core->forward(c.operands, tv, to, tlse);
}

void pattern_attention_backward(const AttentionCall& call, const std::vector<ArrayView>& qs,
                                const std::vector<ArrayView>& ks, const ArrayView& v,
                                const std::vector<ArrayView>& biases, const ArrayView& o,
                                const ArrayView& lse, const ArrayView& dout,
                                const std::vector<ArrayView>& dqs,
                                const std::vector<ArrayView>& dks, const ArrayView& dv,
                                const std::vector<ArrayView>& dbiases) {
  LONGNET_CHECK(v.device == Device::cpu, "per-pattern attention (xPos, bias) runs on the CPU");
  PatternCall c = pattern_call(call, qs, ks, biases);
  LONGNET_CHECK(
      dqs.size() == qs.size() && dks.size() == ks.size() && dbiases.size() == biases.size(),
      "one dq, dk (and dbias with a bias) per pattern");
  for (std::size_t p = 0; p < dqs.size(); ++p) {
    c.dqs.push_back(to_tensor(dqs[p]));
    c.dks.push_back(to_tensor(dks[p]));
    check_tensor(c.dqs[p], c.qs[p].shape(), "dq");
    check_tensor(c.dks[p], c.ks[p].shape(), "dk");
  }
  for (std::size_t p = 0; p < dbiases.size(); ++p) {
    c.dbiases.push_back(to_tensor(dbiases[p]));
    check_tensor(c.dbiases[p], c.biases[p].shape(), "dbias");
  }
  link_operands(c);
  const Tensor tv = to_tensor(v), to = to_tensor(o), tlse = to_tensor(lse), tdout = to_tensor(dout);
  const AttentionShape shape = pattern_shape(c, tv);
  Tensor tdv = to_tensor(dv);
  check_tensor(to, qkv_shape(shape), o.name);
  check_tensor(tlse, lse_shape(shape), lse.name);
  check_tensor(tdout, qkv_shape(shape), dout.name);
  check_tensor(tdv, qkv_shape(shape), dv.name);
  auto core = make_local_attention_core(c.config, shape, kernels_for(v));
  core->backward(c.operands, tv, to, tlse, tdout, tdv);
}

int64_t bias_rows(int64_t segment_length, int64_t dilation_rate) {
  return relative_bias_rows(DilationPattern{segment_length, dilation_rate});
}

std::unique_ptr<AttentionCore> local_cpu_attention_core(const DilatedAttentionConfig& config,
                                                        const AttentionShape& shape) {
  ArrayView cpu;
  cpu.name = "tokens";
  return make_local_attention_core(config, shape, kernels_for(cpu));
}

bool cuda_kernels_built() {
#ifdef LONGNET_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

}  // namespace longnet::python
