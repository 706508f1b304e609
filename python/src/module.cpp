// longnet._C: the compiled half of the Python package. Arrays arrive by DLPack (nanobind's
// ndarray) with no conversion: a NumPy array or a torch tensor of the wrong dtype, layout
// or device is an error naming the argument, never a silent copy. The C++ op is reached
// only through op_adapter.hpp.
#include <fmt/format.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>

#include "decoder_binding.hpp"
#include "op_adapter.hpp"
#include "runtime/error.hpp"

namespace nb = nanobind;
using longnet::python::ArrayView;
using longnet::python::AttentionCall;

namespace {

using AnyArray = nb::ndarray<nb::ro>;  // an input: read-only arrays are fine
using OutArray = nb::ndarray<>;        // an output: must be writable

template <typename Array>
std::string shape_text(const Array& a) {
  std::string text = "[";
  for (size_t i = 0; i < a.ndim(); ++i) text += fmt::format("{}{}", i ? ", " : "", a.shape(i));
  return text + "]";
}

template <typename Array>
longnet::DType to_dtype(const char* name, const Array& a) {
  const nb::dlpack::dtype t = a.dtype();
  if (t == nb::dtype<float>()) return longnet::DType::float32;
  if (t == nb::dtype<double>()) return longnet::DType::float64;
  if (t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat) && t.bits == 16)
    return longnet::DType::bfloat16;
  if (t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float) && t.bits == 16)
    return longnet::DType::float16;
  longnet::fail("{} has an unsupported dtype (DLPack code {}, {} bits): use float32", name, t.code,
                t.bits);
}

// Checks what the C++ side cannot see (rank, row-major density, device kind) and wraps
// the array's memory.
template <typename Array>
ArrayView view(const char* name, const Array& a, size_t rank) {
  LONGNET_CHECK(a.ndim() == rank, "{} must have rank {} ({}), got shape {}", name, rank,
                rank == 4   ? "[batch, tokens, heads, head_dim]"
                : rank == 3 ? "[batch, tokens, heads]"
                            : "[heads, 2L - 1]",
                shape_text(a));
  int64_t expected_stride = 1;
  for (size_t i = rank; i-- > 0;) {
    LONGNET_CHECK(a.shape(i) == 1 || a.stride(i) == expected_stride,
                  "{} is not contiguous (row-major) with shape {}: pass .contiguous() "
                  "(torch) or np.ascontiguousarray (NumPy)",
                  name, shape_text(a));
    expected_stride *= static_cast<int64_t>(a.shape(i));
  }
  ArrayView v;
  v.name = name;
  v.data = const_cast<void*>(static_cast<const void*>(a.data()));
  for (size_t i = 0; i < rank; ++i) v.shape.push_back(static_cast<int64_t>(a.shape(i)));
  v.dtype = to_dtype(name, a);
  if (a.device_type() == nb::device::cpu::value) {
    v.device = longnet::Device::cpu;
  } else if (a.device_type() == nb::device::cuda::value) {
    v.device = longnet::Device::cuda;
  } else {
    longnet::fail("{} is on an unsupported device (DLPack device type {}): use the CPU or CUDA",
                  name, a.device_type());
  }
  v.device_id = a.device_id();
  return v;
}

AttentionCall make_call(std::vector<int64_t> segment_lengths, std::vector<int64_t> dilation_rates,
                        bool causal, std::string head_offsets, std::optional<double> scale,
                        uintptr_t stream) {
  return {std::move(segment_lengths),
          std::move(dilation_rates),
          causal,
          std::move(head_offsets),
          scale,
          stream};
}

}  // namespace

NB_MODULE(_C, m) {
  m.doc() = "The compiled core of longnet (use the functions of the longnet package).";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const longnet::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def(
      "forward",
      [](AnyArray q, AnyArray k, AnyArray v, OutArray o, OutArray lse,
         std::vector<int64_t> segment_lengths, std::vector<int64_t> dilation_rates, bool causal,
         std::string head_offsets, std::optional<double> scale, uintptr_t stream) {
        const AttentionCall call = make_call(std::move(segment_lengths), std::move(dilation_rates),
                                             causal, std::move(head_offsets), scale, stream);
        const ArrayView vq = view("q", q, 4), vk = view("k", k, 4), vv = view("v", v, 4),
                        vo = view("out", o, 4), vlse = view("lse", lse, 3);
        nb::gil_scoped_release release;
        longnet::python::attention_forward(call, vq, vk, vv, vo, vlse);
      },
      nb::arg("q").noconvert(), nb::arg("k").noconvert(), nb::arg("v").noconvert(),
      nb::arg("out").noconvert(), nb::arg("lse").noconvert(), nb::arg("segment_lengths"),
      nb::arg("dilation_rates"), nb::arg("causal"), nb::arg("head_offsets"),
      nb::arg("scale").none(), nb::arg("stream") = 0,
      "Writes out [B, N, H, D] and lse [B, N, H] (preallocated by the caller).");

  m.def(
      "backward",
      [](AnyArray q, AnyArray k, AnyArray v, AnyArray o, AnyArray lse, AnyArray dout, OutArray dq,
         OutArray dk, OutArray dv, std::vector<int64_t> segment_lengths,
         std::vector<int64_t> dilation_rates, bool causal, std::string head_offsets,
         std::optional<double> scale, uintptr_t stream) {
        const AttentionCall call = make_call(std::move(segment_lengths), std::move(dilation_rates),
                                             causal, std::move(head_offsets), scale, stream);
        const ArrayView vq = view("q", q, 4), vk = view("k", k, 4), vv = view("v", v, 4),
                        vo = view("out", o, 4), vlse = view("lse", lse, 3),
                        vdout = view("grad_out", dout, 4), vdq = view("dq", dq, 4),
                        vdk = view("dk", dk, 4), vdv = view("dv", dv, 4);
        nb::gil_scoped_release release;
        longnet::python::attention_backward(call, vq, vk, vv, vo, vlse, vdout, vdq, vdk, vdv);
      },
      nb::arg("q").noconvert(), nb::arg("k").noconvert(), nb::arg("v").noconvert(),
      nb::arg("out").noconvert(), nb::arg("lse").noconvert(), nb::arg("grad_out").noconvert(),
      nb::arg("dq").noconvert(), nb::arg("dk").noconvert(), nb::arg("dv").noconvert(),
      nb::arg("segment_lengths"), nb::arg("dilation_rates"), nb::arg("causal"),
      nb::arg("head_offsets"), nb::arg("scale").none(), nb::arg("stream") = 0,
      "Writes dq, dk, dv [B, N, H, D] (preallocated by the caller): the exact gradient.");

  const auto views = [](const char* name, const std::vector<AnyArray>& arrays, size_t rank) {
    std::vector<ArrayView> out;
    for (const AnyArray& a : arrays) out.push_back(view(name, a, rank));
    return out;
  };
  const auto out_views = [](const char* name, const std::vector<OutArray>& arrays, size_t rank) {
    std::vector<ArrayView> out;
    for (const OutArray& a : arrays) out.push_back(view(name, a, rank));
    return out;
  };
  m.def(
      "pattern_forward",
      [views](std::vector<AnyArray> qs, std::vector<AnyArray> ks, AnyArray v,
              std::vector<AnyArray> biases, OutArray o, OutArray lse,
              std::vector<int64_t> segment_lengths, std::vector<int64_t> dilation_rates,
              bool causal, std::string head_offsets, std::optional<double> scale) {
        const AttentionCall call = make_call(std::move(segment_lengths), std::move(dilation_rates),
                                             causal, std::move(head_offsets), scale, 0);
        const auto vqs = views("q", qs, 4), vks = views("k", ks, 4), vbs = views("bias", biases, 2);
        const ArrayView vv = view("v", v, 4), vo = view("out", o, 4), vlse = view("lse", lse, 3);
        nb::gil_scoped_release release;
        longnet::python::pattern_attention_forward(call, vqs, vks, vv, vbs, vo, vlse);
      },
      nb::arg("qs"), nb::arg("ks"), nb::arg("v").noconvert(), nb::arg("biases"),
      nb::arg("out").noconvert(), nb::arg("lse").noconvert(), nb::arg("segment_lengths"),
      nb::arg("dilation_rates"), nb::arg("causal"), nb::arg("head_offsets"),
      nb::arg("scale").none(),
      "Attention with one q, k (and bias [H, 2L-1], or none) per pattern; writes out, lse.");
  m.def(
      "pattern_backward",
      [views, out_views](std::vector<AnyArray> qs, std::vector<AnyArray> ks, AnyArray v,
                         std::vector<AnyArray> biases, AnyArray o, AnyArray lse, AnyArray dout,
                         std::vector<OutArray> dqs, std::vector<OutArray> dks, OutArray dv,
                         std::vector<OutArray> dbiases, std::vector<int64_t> segment_lengths,
                         std::vector<int64_t> dilation_rates, bool causal, std::string head_offsets,
                         std::optional<double> scale) {
        const AttentionCall call = make_call(std::move(segment_lengths), std::move(dilation_rates),
                                             causal, std::move(head_offsets), scale, 0);
        const auto vqs = views("q", qs, 4), vks = views("k", ks, 4), vbs = views("bias", biases, 2);
        const auto vdqs = out_views("dq", dqs, 4), vdks = out_views("dk", dks, 4),
                   vdbs = out_views("dbias", dbiases, 2);
        const ArrayView vv = view("v", v, 4), vo = view("out", o, 4), vlse = view("lse", lse, 3),
                        vdout = view("grad_out", dout, 4), vdv = view("dv", dv, 4);
        nb::gil_scoped_release release;
        longnet::python::pattern_attention_backward(call, vqs, vks, vv, vbs, vo, vlse, vdout, vdqs,
                                                    vdks, vdv, vdbs);
      },
      nb::arg("qs"), nb::arg("ks"), nb::arg("v").noconvert(), nb::arg("biases"),
      nb::arg("out").noconvert(), nb::arg("lse").noconvert(), nb::arg("grad_out").noconvert(),
      nb::arg("dqs"), nb::arg("dks"), nb::arg("dv").noconvert(), nb::arg("dbiases"),
      nb::arg("segment_lengths"), nb::arg("dilation_rates"), nb::arg("causal"),
      nb::arg("head_offsets"), nb::arg("scale").none(),
      "The exact gradient: ADDS into dqs, dks, dbiases (zeroed by the caller), writes dv.");
  m.def("bias_rows", &longnet::python::bias_rows, nb::arg("segment_length"),
        nb::arg("dilation_rate"), "L of a pattern's relative-bias rows [H, 2L - 1].");

  using longnet::python::SequenceParallelOp;
  nb::class_<SequenceParallelOp>(m, "SequenceParallel",
                                 "Dilated attention with the sequence split across the ranks "
                                 "of an MPI communicator (collective calls).")
      .def(
          "__init__",
          [](SequenceParallelOp* self, int64_t fortran_comm, std::vector<int64_t> segment_lengths,
             std::vector<int64_t> dilation_rates, bool causal, std::string head_offsets,
             std::optional<double> scale, std::vector<int64_t> global_shape) {
            AttentionCall call = make_call(std::move(segment_lengths), std::move(dilation_rates),
                                           causal, std::move(head_offsets), scale, 0);
            new (self) SequenceParallelOp(fortran_comm, std::move(call), std::move(global_shape));
          },
          nb::arg("fortran_comm"), nb::arg("segment_lengths"), nb::arg("dilation_rates"),
          nb::arg("causal"), nb::arg("head_offsets"), nb::arg("scale").none(),
          nb::arg("global_shape"))
      .def_prop_ro("rank", &SequenceParallelOp::rank)
      .def_prop_ro("world_size", &SequenceParallelOp::world_size)
      .def_prop_ro("shard", &SequenceParallelOp::shard, "This rank's tokens [begin, end).")
      .def(
          "forward",
          [](SequenceParallelOp& op, AnyArray q, AnyArray k, AnyArray v, OutArray o, OutArray lse) {
            const ArrayView vq = view("q", q, 4), vk = view("k", k, 4), vv = view("v", v, 4),
                            vo = view("out", o, 4), vlse = view("lse", lse, 3);
            nb::gil_scoped_release release;
            op.forward(vq, vk, vv, vo, vlse);
          },
          nb::arg("q").noconvert(), nb::arg("k").noconvert(), nb::arg("v").noconvert(),
          nb::arg("out").noconvert(), nb::arg("lse").noconvert())
      .def(
          "backward",
          [](SequenceParallelOp& op, AnyArray q, AnyArray k, AnyArray v, AnyArray o, AnyArray lse,
             AnyArray dout, OutArray dq, OutArray dk, OutArray dv) {
            const ArrayView vq = view("q", q, 4), vk = view("k", k, 4), vv = view("v", v, 4),
                            vo = view("out", o, 4), vlse = view("lse", lse, 3),
                            vdout = view("grad_out", dout, 4), vdq = view("dq", dq, 4),
                            vdk = view("dk", dk, 4), vdv = view("dv", dv, 4);
            nb::gil_scoped_release release;
            op.backward(vq, vk, vv, vo, vlse, vdout, vdq, vdk, vdv);
          },
          nb::arg("q").noconvert(), nb::arg("k").noconvert(), nb::arg("v").noconvert(),
          nb::arg("out").noconvert(), nb::arg("lse").noconvert(), nb::arg("grad_out").noconvert(),
          nb::arg("dq").noconvert(), nb::arg("dk").noconvert(), nb::arg("dv").noconvert());
  m.def("sequence_shard", &longnet::python::sequence_shard, nb::arg("tokens"), nb::arg("world"),
        nb::arg("rank"), "The balanced split of tokens over world ranks: rank's (begin, end).");
  longnet::python::bind_decoder(m);
  m.def("mpi_built", &longnet::python::mpi_built, "Whether this build holds the MPI op.");
  m.def("cuda_kernels_built", &longnet::python::cuda_kernels_built,
        "Whether this build holds the CUDA kernels.");
  m.attr("__version__") = LONGNET_VERSION;
}
