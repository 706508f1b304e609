// longnet._C.Decoder: a LongNet decoder loaded from a `longnet train` checkpoint, run
// forward on the CPU (logits and the summed token loss) for longnet.LongNetDecoder.
#include "decoder_binding.hpp"

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <map>
#include <memory>

#include "model/longnet_decoder.hpp"
#include "model/training/checkpoint_model.hpp"
#include "model/xpos.hpp"
#include "op_adapter.hpp"
#include "runtime/error.hpp"

namespace nb = nanobind;

namespace longnet::python {
namespace {

class Decoder {
 public:
  explicit Decoder(const std::string& path) {
    CheckpointModel loaded = load_checkpoint_model(path);
    config_toml_ = std::move(loaded.config_toml);
    step_ = loaded.step;
    model_ = std::move(loaded.model);
    config_ = model_->config();
    for (Parameter* p : model_->parameters()) {
      if (p->name == "embed") embed_ = p->value;
    }
    LONGNET_CHECK(embed_.defined(), "{}: the model has no parameter named 'embed'", path);
    ops_ = make_cpu_model_ops();
  }

  // tokens, targets [B, T] int32; logits [B, T, V] float32 (written). Returns the summed loss.
  double forward(nb::ndarray<const int32_t, nb::ndim<2>, nb::c_contig, nb::device::cpu> tokens,
                 nb::ndarray<const int32_t, nb::ndim<2>, nb::c_contig, nb::device::cpu> targets,
                 nb::ndarray<float, nb::ndim<3>, nb::c_contig, nb::device::cpu> logits) {
    const auto b = static_cast<int64_t>(tokens.shape(0)), t = static_cast<int64_t>(tokens.shape(1));
    LONGNET_CHECK(b > 0 && t > 0, "tokens must be [batch, tokens] with both positive");
    LONGNET_CHECK(targets.shape(0) == tokens.shape(0) && targets.shape(1) == tokens.shape(1),
                  "targets must have the shape of tokens [{}, {}]", b, t);
    LONGNET_CHECK(static_cast<int64_t>(logits.shape(0)) == b &&
                      static_cast<int64_t>(logits.shape(1)) == t &&
                      static_cast<int64_t>(logits.shape(2)) == config_.vocab_size,
                  "logits must be [{}, {}, {}]", b, t, config_.vocab_size);
    const auto n = static_cast<std::size_t>(b * t);
    const DilatedAttentionLayerConfig& a = config_.attention;
    const AttentionShape shape = a.attention_shape(b, t);
    std::unique_ptr<AttentionCore> core = local_cpu_attention_core(a.attention_config(), shape);
    DecoderActivations saved;
    const double loss =
        model_->forward({tokens.data(), n}, {targets.data(), n}, *core, *ops_, saved);
    Tensor out = Tensor::borrow(logits.data(), {b * t, config_.vocab_size}, DType::float32);
    ops_->linear_forward(saved.final_ln, embed_, nullptr, out);
    return loss;
  }

  const std::string& config_toml() const { return config_toml_; }
  int64_t step() const { return step_; }
  int64_t vocab_size() const { return config_.vocab_size; }

 private:
  std::string config_toml_;
  int64_t step_ = 0;
  DecoderConfig config_;
  std::unique_ptr<LongNetDecoder> model_;
  std::unique_ptr<ModelOps> ops_;
  Tensor embed_;
};

}  // namespace

void bind_decoder(nb::module_& m) {
  // xPos of model/xpos.hpp (float32 [B, T, H, D], host): forward writes out; transpose ADDS
  // J^T dy into dx. role: "query" or "key".
  using Host4 = nb::ndarray<float, nb::ndim<4>, nb::c_contig, nb::device::cpu>;
  using HostIn4 = nb::ndarray<const float, nb::ndim<4>, nb::c_contig, nb::device::cpu>;
  const auto span_of = [](int64_t first_token, int64_t segment_length, double scale_base) {
    return XposSpan{first_token, segment_length, scale_base};
  };
  const auto role_of = [](const std::string& role) {
    LONGNET_CHECK(role == "query" || role == "key", "xPos role must be query or key, got {}", role);
    return role == "query" ? XposRole::query : XposRole::key;
  };
  const auto host = [](auto& a) {
    Shape shape;
    for (size_t i = 0; i < 4; ++i) shape.push_back(static_cast<int64_t>(a.shape(i)));
    return Tensor::borrow(const_cast<float*>(a.data()), shape, DType::float32);
  };
  m.def(
      "xpos",
      [=](HostIn4 in, Host4 out, const std::string& role, int64_t first_token,
          int64_t segment_length, double scale_base) {
        const Tensor tin = host(in);
        Tensor tout = host(out);
        xpos_forward(tin, tout, role_of(role), span_of(first_token, segment_length, scale_base));
      },
      nb::arg("x").noconvert(), nb::arg("out").noconvert(), nb::arg("role"), nb::arg("first_token"),
      nb::arg("segment_length"), nb::arg("scale_base"));
  m.def(
      "xpos_transpose_add",
      [=](HostIn4 dy, Host4 dx, const std::string& role, int64_t first_token,
          int64_t segment_length, double scale_base) {
        const Tensor tdy = host(dy);
        Tensor tdx = host(dx);
        xpos_backward_accumulate(tdy, tdx, role_of(role),
                                 span_of(first_token, segment_length, scale_base));
      },
      nb::arg("dy").noconvert(), nb::arg("dx").noconvert(), nb::arg("role"), nb::arg("first_token"),
      nb::arg("segment_length"), nb::arg("scale_base"));
  m.def("relative_position_bucket", &relative_position_bucket, nb::arg("relative"),
        nb::arg("bidirectional"), nb::arg("buckets"), nb::arg("max_distance"));

  nb::class_<Decoder>(m, "Decoder", "A LongNet decoder loaded from a `longnet train` checkpoint.")
      .def(nb::init<const std::string&>(), nb::arg("path"))
      .def("forward", &Decoder::forward, nb::arg("tokens").noconvert(),
           nb::arg("targets").noconvert(), nb::arg("logits").noconvert(),
           nb::call_guard<nb::gil_scoped_release>(),
           "Writes logits [B, T, V]; returns the summed cross-entropy against targets.")
      .def_prop_ro("config_toml", &Decoder::config_toml)
      .def_prop_ro("step", &Decoder::step)
      .def_prop_ro("vocab_size", &Decoder::vocab_size);
}

}  // namespace longnet::python
