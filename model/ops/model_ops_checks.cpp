#include "model/ops/model_ops_checks.hpp"

#include <cmath>

namespace longnet::model_ops_checks {
namespace {

Shape leading(const Shape& shape) { return Shape(shape.begin(), shape.end() - 1); }

Shape with_last(const Shape& shape, int64_t last) {
  Shape out = shape;
  out.back() = last;
  return out;
}

// The dtype every other tensor of the call must share: the first tensor's, which must be a
// floating type the ops compute in.
DType call_dtype(const char* op, const Tensor& first, const char* name) {
  LONGNET_CHECK(first.defined(), "{}: {} is missing (an empty tensor); allocate it first", op,
                name);
  LONGNET_CHECK(first.dtype() == DType::float32 || first.dtype() == DType::float64,
                "{}: {} is {}, but the model ops take float32 or float64; cast it first", op, name,
                dtype_name(first.dtype()));
  return first.dtype();
}

void check_operand(const char* op, const Tensor& t, const char* name, DType dtype, Device device) {
  LONGNET_CHECK(t.defined(), "{}: {} is missing (an empty tensor); allocate it first", op, name);
  LONGNET_CHECK(t.dtype() == dtype,
                "{}: {} is {} but the call's first tensor is {}; all tensors of one call share "
                "one dtype",
                op, name, dtype_name(t.dtype()), dtype_name(dtype));
  LONGNET_CHECK(t.device() == device,
                "{}: {} is in {} memory but this backend works on {} tensors; move it with "
                "Tensor::to",
                op, name, device_name(t.device()), device_name(device));
}

void check_shape(const char* op, const Tensor& t, const char* name, const Shape& expected,
                 const char* layout) {
  LONGNET_CHECK(t.shape() == expected, "{}: {} has shape {}, expected {} ({})", op, name,
                shape_string(t.shape()), shape_string(expected), layout);
}

// A tensor of rank >= 2 read as [rows, cols].
RowDims rows_of(const char* op, const Tensor& t, const char* name, const char* layout) {
  LONGNET_CHECK(t.rank() >= 2, "{}: {} must have rank >= 2 ({}), got shape {}", op, name, layout,
                shape_string(t.shape()));
  const int64_t cols = t.shape().back();
  LONGNET_CHECK(cols > 0, "{}: {} has shape {}; its last dim ({}) must be positive", op, name,
                shape_string(t.shape()), layout);
  return {t.numel() / cols, cols, t.dtype()};
}

void check_token_ids(const char* op, std::span<const int32_t> ids, int64_t vocab,
                     const char* what) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    LONGNET_CHECK(ids[i] >= 0 && ids[i] < vocab,
                  "{}: {} id {} at position {} is out of range [0, {}); the data and the "
                  "vocabulary size disagree",
                  op, what, ids[i], i, vocab);
  }
}

}  // namespace

LinearDims check_linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Tensor& y,
                                Device device) {
  constexpr const char* op = "linear_forward";
  const DType dtype = call_dtype(op, x, "x");
  check_operand(op, x, "x", dtype, device);
  check_operand(op, w, "w", dtype, device);
  check_operand(op, y, "y", dtype, device);
  const RowDims xr = rows_of(op, x, "x", "[..., K]");
  LONGNET_CHECK(w.rank() == 2 && w.dim(0) > 0, "{}: w must be [N, K] with N > 0, got shape {}", op,
                shape_string(w.shape()));
  const int64_t n = w.dim(0);
  check_shape(op, w, "w", {n, xr.cols}, "[N, K]: K is x's last dim");
  if (b != nullptr) {
    check_operand(op, *b, "b", dtype, device);
    check_shape(op, *b, "b", {n}, "[N]: N is w's first dim");
  }
  check_shape(op, y, "y", with_last(x.shape(), n), "x's leading dims, then N = w's first dim");
  return {xr.rows, xr.cols, n, dtype};
}

LinearDims check_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                 const Tensor* dx, const Tensor& dw, const Tensor* db,
                                 Device device) {
  constexpr const char* op = "linear_backward";
  const DType dtype = call_dtype(op, x, "x");
  for (const auto& [t, name] : {std::pair{&x, "x"}, {&w, "w"}, {&dy, "dy"}, {&dw, "dw"}}) {
    check_operand(op, *t, name, dtype, device);
  }
  const RowDims xr = rows_of(op, x, "x", "[..., K]");
  LONGNET_CHECK(w.rank() == 2 && w.dim(0) > 0, "{}: w must be [N, K] with N > 0, got shape {}", op,
                shape_string(w.shape()));
  const int64_t n = w.dim(0);
  check_shape(op, w, "w", {n, xr.cols}, "[N, K]: K is x's last dim");
  check_shape(op, dy, "dy", with_last(x.shape(), n), "the shape of y: x's leading dims, then N");
  check_shape(op, dw, "dw", w.shape(), "the shape of w");
  if (dx != nullptr) {
    check_operand(op, *dx, "dx", dtype, device);
    check_shape(op, *dx, "dx", x.shape(), "the shape of x");
  }
  if (db != nullptr) {
    check_operand(op, *db, "db", dtype, device);
    check_shape(op, *db, "db", {n}, "[N]: the shape of b");
  }
  return {xr.rows, xr.cols, n, dtype};
}

RowDims check_layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 double eps, const Tensor& y, const Tensor& mean,
                                 const Tensor& rstd, Device device) {
  constexpr const char* op = "layer_norm_forward";
  const DType dtype = call_dtype(op, x, "x");
  for (const auto& [t, name] : {std::pair{&x, "x"},
                                {&gamma, "gamma"},
                                {&beta, "beta"},
                                {&y, "y"},
                                {&mean, "mean"},
                                {&rstd, "rstd"}}) {
    check_operand(op, *t, name, dtype, device);
  }
  const RowDims xr = rows_of(op, x, "x", "[..., C]");
  LONGNET_CHECK(std::isfinite(eps) && eps > 0,
                "{}: eps must be a positive number (it keeps rstd finite on constant rows), got {}",
                op, eps);
  check_shape(op, gamma, "gamma", {xr.cols}, "[C]: C is x's last dim");
  check_shape(op, beta, "beta", {xr.cols}, "[C]: C is x's last dim");
  check_shape(op, y, "y", x.shape(), "the shape of x");
  check_shape(op, mean, "mean", leading(x.shape()), "x's leading dims: one value per row");
  check_shape(op, rstd, "rstd", leading(x.shape()), "x's leading dims: one value per row");
  return xr;
}

RowDims check_layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                  const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                                  const Tensor& dgamma, const Tensor& dbeta, Device device) {
  constexpr const char* op = "layer_norm_backward";
  const DType dtype = call_dtype(op, x, "x");
  for (const auto& [t, name] : {std::pair{&x, "x"},
                                {&gamma, "gamma"},
                                {&mean, "mean"},
                                {&rstd, "rstd"},
                                {&dy, "dy"},
                                {&dx, "dx"},
                                {&dgamma, "dgamma"},
                                {&dbeta, "dbeta"}}) {
    check_operand(op, *t, name, dtype, device);
  }
  const RowDims xr = rows_of(op, x, "x", "[..., C]");
  check_shape(op, gamma, "gamma", {xr.cols}, "[C]: C is x's last dim");
  check_shape(op, mean, "mean", leading(x.shape()),
              "x's leading dims, as layer_norm_forward saved");
  check_shape(op, rstd, "rstd", leading(x.shape()),
              "x's leading dims, as layer_norm_forward saved");
  check_shape(op, dy, "dy", x.shape(), "the shape of x");
  check_shape(op, dx, "dx", x.shape(), "the shape of x");
  check_shape(op, dgamma, "dgamma", {xr.cols}, "[C]: the shape of gamma");
  check_shape(op, dbeta, "dbeta", {xr.cols}, "[C]: the shape of beta");
  return xr;
}

ElementDims check_same_shape(const char* op, std::span<const Tensor* const> tensors,
                             std::span<const char* const> names, Device device) {
  const DType dtype = call_dtype(op, *tensors[0], names[0]);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    check_operand(op, *tensors[i], names[i], dtype, device);
    LONGNET_CHECK(tensors[i]->shape() == tensors[0]->shape(),
                  "{}: {} has shape {} but {} has shape {}; the op is elementwise and needs one "
                  "shape",
                  op, names[i], shape_string(tensors[i]->shape()), names[0],
                  shape_string(tensors[0]->shape()));
  }
  return {tensors[0]->numel(), dtype};
}

ElementDims check_single(const char* op, const Tensor& t, const char* name, Device device) {
  const DType dtype = call_dtype(op, t, name);
  check_operand(op, t, name, dtype, device);
  return {t.numel(), dtype};
}

namespace {

// The embedding's two directions check the same things: a [V, C] table-shaped tensor and
// one row of C per token, every id in [0, V).
EmbeddingDims check_embedding(const char* op, std::span<const int32_t> tokens, const Tensor& table,
                              const char* table_name, const Tensor& rows, const char* rows_name,
                              Device device) {
  const DType dtype = call_dtype(op, table, table_name);
  check_operand(op, table, table_name, dtype, device);
  check_operand(op, rows, rows_name, dtype, device);
  const RowDims tr = rows_of(op, table, table_name, "[V, C]");
  LONGNET_CHECK(table.rank() == 2, "{}: {} must be [V, C], got shape {}", op, table_name,
                shape_string(table.shape()));
  const RowDims outr = rows_of(op, rows, rows_name, "[..., C]");
  LONGNET_CHECK(outr.cols == tr.cols && outr.rows == static_cast<int64_t>(tokens.size()),
                "{}: {} has shape {}, expected {} rows (one per token) of C = {} ({}'s last "
                "dim)",
                op, rows_name, shape_string(rows.shape()), tokens.size(), tr.cols, table_name);
  check_token_ids(op, tokens, tr.rows, "token");
  return {outr.rows, tr.rows, tr.cols, dtype};
}

}  // namespace

EmbeddingDims check_embedding_forward(std::span<const int32_t> tokens, const Tensor& table,
                                      const Tensor& out, Device device) {
  return check_embedding("embedding_forward", tokens, table, "table", out, "out", device);
}

EmbeddingDims check_embedding_backward(std::span<const int32_t> tokens, const Tensor& dout,
                                       const Tensor& dtable, Device device) {
  return check_embedding("embedding_backward", tokens, dtable, "dtable", dout, "dout", device);
}

RowDims check_cross_entropy(const Tensor& logits, std::span<const int32_t> targets,
                            const Tensor* dlogits, std::span<const double> per_token_loss,
                            Device device) {
  constexpr const char* op = "cross_entropy";
  const DType dtype = call_dtype(op, logits, "logits");
  check_operand(op, logits, "logits", dtype, device);
  const RowDims lr = rows_of(op, logits, "logits", "[..., V]");
  LONGNET_CHECK(lr.rows == static_cast<int64_t>(targets.size()),
                "{}: logits {} hold {} rows but there are {} targets; pass one target per row", op,
                shape_string(logits.shape()), lr.rows, targets.size());
  if (dlogits != nullptr) {
    check_operand(op, *dlogits, "dlogits", dtype, device);
    check_shape(op, *dlogits, "dlogits", logits.shape(), "the shape of logits");
  }
  LONGNET_CHECK(per_token_loss.empty() || per_token_loss.size() == targets.size(),
                "{}: per_token_loss has {} elements but there are {} targets; pass an empty span "
                "or one element per target",
                op, per_token_loss.size(), targets.size());
  check_token_ids(op, targets, lr.cols, "target");
  return lr;
}

RowDims check_argmax_rows(const Tensor& logits, std::span<const int32_t> out, Device device) {
  constexpr const char* op = "argmax_rows";
  const DType dtype = call_dtype(op, logits, "logits");
  check_operand(op, logits, "logits", dtype, device);
  const RowDims lr = rows_of(op, logits, "logits", "[..., V]");
  LONGNET_CHECK(lr.rows == static_cast<int64_t>(out.size()),
                "{}: logits {} hold {} rows but out has {} elements; pass one element per row", op,
                shape_string(logits.shape()), lr.rows, out.size());
  return lr;
}

ElementDims check_adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                        int64_t step, const AdamWSettings& s, Device device) {
  constexpr const char* op = "adamw_step";
  const Tensor* tensors[] = {&param, &grad, &m, &v};
  const char* names[] = {"param", "grad", "m", "v"};
  const ElementDims dims = check_same_shape(op, tensors, names, device);
  LONGNET_CHECK(step >= 1,
                "{}: step is {}, but steps count from 1 (the bias corrections divide "
                "by 1 - beta^step)",
                op, step);
  LONGNET_CHECK(std::isfinite(s.lr) && s.lr >= 0, "{}: lr must be finite and >= 0, got {}", op,
                s.lr);
  LONGNET_CHECK(s.beta1 >= 0 && s.beta1 < 1, "{}: beta1 must be in [0, 1), got {}", op, s.beta1);
  LONGNET_CHECK(s.beta2 >= 0 && s.beta2 < 1, "{}: beta2 must be in [0, 1), got {}", op, s.beta2);
  LONGNET_CHECK(std::isfinite(s.eps) && s.eps > 0,
                "{}: eps must be positive (it bounds the step where v is 0), got {}", op, s.eps);
  LONGNET_CHECK(std::isfinite(s.weight_decay) && s.weight_decay >= 0,
                "{}: weight_decay must be finite and >= 0, got {}", op, s.weight_decay);
  return dims;
}

}  // namespace longnet::model_ops_checks
