// The CUDA backend of ModelOps (cuda_model_ops.hpp): validates each call with the shared
// checks (model_ops_checks.hpp), runs linear layers on cuBLAS and the rest through the
// launchers of ops_launch.hpp, all on one stream.
//
// cuBLAS is column-major and our tensors are row-major. A row-major [R, C] buffer read
// column-major is the [C, R] transpose, so each product is computed transposed:
//   y = x w^T     <->  y^T  = w x^T:   gemm(T, N), m = N, n = M, k = K, A = w, B = x;
//   dx = dy w     <->  dx^T = w^T dy^T: gemm(N, N), m = K, n = M, k = N, A = w, B = dy;
//   dw += dy^T x  <->  dw^T += x^T dy:  gemm(N, T), m = K, n = N, k = M, A = x, B = dy, beta 1.
//
// Scratch: one device buffer, grown when a call needs more (cudaFree synchronises, so the
// old buffer is no longer in use) and reused by later calls, which run after the earlier
// ones on the same stream.
#include "model/ops/cuda/cuda_model_ops.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <memory>
#include <vector>

#include "model/ops/cuda/ops_launch.hpp"
#include "model/ops/model_ops_checks.hpp"
#include "model/ops/token_groups.hpp"
#include "runtime/cublas_check.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/device_memory.hpp"

namespace longnet {
namespace {

using namespace model_ops_checks;

template <typename F>
decltype(auto) with_type(DType dtype, F&& f) {
  if (dtype == DType::float64) return f(double{});
  return f(float{});
}

template <typename T>
T* data_or_null(Tensor* t) {
  return t != nullptr ? t->data<T>() : nullptr;
}
template <typename T>
const T* data_or_null(const Tensor* t) {
  return t != nullptr ? t->data<T>() : nullptr;
}

int blas_int(int64_t extent, const char* what) {
  LONGNET_CHECK(extent <= INT_MAX,
                "linear: {} = {} exceeds cuBLAS's 32-bit dimensions; split the rows into several "
                "calls",
                what, extent);
  return static_cast<int>(extent);
}

// C = alpha op(A) op(B) + beta C, column-major, by T.
void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  const float one = 1.0f;
  LONGNET_CUBLAS_CHECK(cublasSgemm(h, ta, tb, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc));
}
void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  const double one = 1.0;
  LONGNET_CUBLAS_CHECK(cublasDgemm(h, ta, tb, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc));
}

class CudaModelOps final : public ModelOps {
 public:
  explicit CudaModelOps(int device) : device_(device) {
    LONGNET_CHECK(device >= 0,
                  "make_cuda_model_ops: device {} is negative; pass a CUDA device "
                  "index (0 for the first GPU)",
                  device);
  }

  ~CudaModelOps() override {
    // No throwing from a destructor: a failure here has nothing left to report to.
    if (handle_ != nullptr) cublasDestroy(handle_);
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  std::string name() const override { return fmt::format("cuda:{}", device_); }

  void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) override {
    const LinearDims d = check_linear_forward(x, w, b, y, Device::cuda);
    if (d.m == 0) return;
    const int m = blas_int(d.m, "M (rows of x)"), k = blas_int(d.k, "K"), n = blas_int(d.n, "N");
    begin();
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      if (b != nullptr) cuda_ops::broadcast_rows(b->data<T>(), y.data<T>(), d.m, d.n, stream_);
      gemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, w.data<T>(), k, x.data<T>(), k,
           b != nullptr ? T(1) : T(0), y.data<T>(), n);
    });
  }

  void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                       Tensor* db) override {
    const LinearDims d = check_linear_backward(x, w, dy, dx, dw, db, Device::cuda);
    if (d.m == 0) return;
    const int m = blas_int(d.m, "M (rows of x)"), k = blas_int(d.k, "K"), n = blas_int(d.n, "N");
    begin();
    double* scratch =
        db != nullptr ? scratch_doubles(cuda_ops::column_partial_doubles(d.m, d.n)) : nullptr;
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      if (dx != nullptr) {
        gemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, k, m, n, w.data<T>(), k, dy.data<T>(), n, T(0),
             dx->data<T>(), k);
      }
      gemm(handle_, CUBLAS_OP_N, CUBLAS_OP_T, k, n, m, x.data<T>(), k, dy.data<T>(), n, T(1),
           dw.data<T>(), k);
      if (db != nullptr) {
        cuda_ops::add_column_sums(dy.data<T>(), d.m, d.n, db->data<T>(), scratch, stream_);
      }
    });
  }

  void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                          Tensor& y, Tensor& mean, Tensor& rstd) override {
    const RowDims d = check_layer_norm_forward(x, gamma, beta, eps, y, mean, rstd, Device::cuda);
    begin();
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::layer_norm_forward(x.data<T>(), gamma.data<T>(), beta.data<T>(), eps, y.data<T>(),
                                   mean.data<T>(), rstd.data<T>(), d.rows, d.cols, stream_);
    });
  }

  void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                           Tensor& dbeta) override {
    const RowDims d =
        check_layer_norm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, Device::cuda);
    begin();
    double* scratch = scratch_doubles(2 * cuda_ops::column_partial_doubles(d.rows, d.cols));
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::layer_norm_backward(x.data<T>(), gamma.data<T>(), mean.data<T>(), rstd.data<T>(),
                                    dy.data<T>(), dx.data<T>(), dgamma.data<T>(), dbeta.data<T>(),
                                    d.rows, d.cols, scratch, stream_);
    });
  }

  void gelu_forward(const Tensor& x, Tensor& y) override {
    const Tensor* tensors[] = {&x, &y};
    const char* names[] = {"x", "y"};
    const ElementDims d = check_same_shape("gelu_forward", tensors, names, Device::cuda);
    begin();
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::gelu_forward(x.data<T>(), y.data<T>(), d.n, stream_);
    });
  }

  void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) override {
    const Tensor* tensors[] = {&x, &dy, &dx};
    const char* names[] = {"x", "dy", "dx"};
    const ElementDims d = check_same_shape("gelu_backward", tensors, names, Device::cuda);
    begin();
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::gelu_backward(x.data<T>(), dy.data<T>(), dx.data<T>(), d.n, stream_);
    });
  }

  void embedding_forward(std::span<const int32_t> tokens, const Tensor& table,
                         Tensor& out) override {
    const EmbeddingDims d = check_embedding_forward(tokens, table, out, Device::cuda);
    if (d.tokens == 0) return;
    begin();
    int32_t* ids = static_cast<int32_t*>(scratch_bytes(tokens.size_bytes()));
    upload(ids, tokens.data(), tokens.size_bytes());
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::embedding_forward(ids, d.tokens, table.data<T>(), out.data<T>(), d.channels,
                                  stream_);
    });
  }

  void embedding_backward(std::span<const int32_t> tokens, const Tensor& dout,
                          Tensor& dtable) override {
    const EmbeddingDims d = check_embedding_backward(tokens, dout, dtable, Device::cuda);
    if (d.tokens == 0) return;
    begin();
    const TokenGroups groups = group_by_token(tokens, d.vocab);
    // One scratch allocation: the int64 arrays first (8-byte aligned), then the int32 ids.
    const std::size_t offsets_bytes = groups.offsets.size() * sizeof(int64_t);
    const std::size_t positions_bytes = groups.positions.size() * sizeof(int64_t);
    const std::size_t ids_bytes = groups.ids.size() * sizeof(int32_t);
    auto* base = static_cast<char*>(scratch_bytes(offsets_bytes + positions_bytes + ids_bytes));
    auto* offsets = reinterpret_cast<int64_t*>(base);
    auto* positions = reinterpret_cast<int64_t*>(base + offsets_bytes);
    auto* ids = reinterpret_cast<int32_t*>(base + offsets_bytes + positions_bytes);
    upload(offsets, groups.offsets.data(), offsets_bytes);
    upload(positions, groups.positions.data(), positions_bytes);
    upload(ids, groups.ids.data(), ids_bytes);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::embedding_backward(ids, offsets, positions, static_cast<int64_t>(groups.ids.size()),
                                   dout.data<T>(), dtable.data<T>(), d.channels, stream_);
    });
  }

  double cross_entropy(const Tensor& logits, std::span<const int32_t> targets, double grad_scale,
                       Tensor* dlogits, std::span<double> per_token_loss) override {
    const RowDims d = check_cross_entropy(logits, targets, dlogits, per_token_loss, Device::cuda);
    if (d.rows == 0) return 0.0;
    begin();
    auto* base =
        static_cast<char*>(scratch_bytes(targets.size() * (sizeof(double) + sizeof(int32_t))));
    auto* losses = reinterpret_cast<double*>(base);
    auto* target_ids = reinterpret_cast<int32_t*>(base + targets.size() * sizeof(double));
    upload(target_ids, targets.data(), targets.size_bytes());
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::cross_entropy(logits.data<T>(), target_ids, d.rows, d.cols, grad_scale,
                              data_or_null<T>(dlogits), losses, stream_);
    });
    std::vector<double> host(targets.size());
    download(host.data(), losses, host.size() * sizeof(double));
    double total = 0;
    for (double loss : host) total += loss;  // in row order, as on the CPU
    if (!per_token_loss.empty()) std::copy(host.begin(), host.end(), per_token_loss.begin());
    return total;
  }

  void argmax_rows(const Tensor& logits, std::span<int32_t> out) override {
    const RowDims d = check_argmax_rows(logits, out, Device::cuda);
    if (d.rows == 0) return;
    begin();
    auto* indices = static_cast<int32_t*>(scratch_bytes(out.size_bytes()));
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::argmax_rows(logits.data<T>(), d.rows, d.cols, indices, stream_);
    });
    download(out.data(), indices, out.size_bytes());
  }

  void add(const Tensor& a, const Tensor& b, Tensor& out) override {
    const Tensor* tensors[] = {&a, &b, &out};
    const char* names[] = {"a", "b", "out"};
    const ElementDims d = check_same_shape("add", tensors, names, Device::cuda);
    begin();
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::add(a.data<T>(), b.data<T>(), out.data<T>(), d.n, stream_);
    });
  }

  void add_in_place(Tensor& a, const Tensor& b) override {
    const Tensor* tensors[] = {&a, &b};
    const char* names[] = {"a", "b"};
    const ElementDims d = check_same_shape("add_in_place", tensors, names, Device::cuda);
    begin();
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::add(a.data<T>(), b.data<T>(), a.data<T>(), d.n, stream_);
    });
  }

  double sum_of_squares(const Tensor& t) override {
    const ElementDims d = check_single("sum_of_squares", t, "t", Device::cuda);
    begin();
    double* partials = scratch_doubles(cuda_ops::kSumOfSquaresPartials);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::sum_of_squares_partials(t.data<T>(), d.n, partials, stream_);
    });
    std::vector<double> host(cuda_ops::kSumOfSquaresPartials);
    download(host.data(), partials, host.size() * sizeof(double));
    double total = 0;
    for (double s : host) total += s;
    return total;
  }

  void scale(Tensor& t, double factor) override {
    const ElementDims d = check_single("scale", t, "t", Device::cuda);
    begin();
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::scale(t.data<T>(), factor, d.n, stream_);
    });
  }

  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, int64_t step,
                  const AdamWSettings& s, bool decay) override {
    const ElementDims d = check_adamw(param, grad, m, v, step, s, Device::cuda);
    begin();
    const double t = static_cast<double>(step);
    const cuda_ops::AdamWScalars scalars{
        s.beta1, s.beta2, 1.0 / (1.0 - std::pow(s.beta1, t)), 1.0 / (1.0 - std::pow(s.beta2, t)),
        s.lr,    s.eps,   decay ? s.weight_decay : 0.0};
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cuda_ops::adamw_step(param.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(), d.n, scalars,
                           stream_);
    });
  }

  void synchronize() override {
    if (stream_ == nullptr) return;  // nothing was ever queued
    LONGNET_CUDA_CHECK(cudaSetDevice(device_));
    LONGNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  // Every op's first CUDA work: select the device and, on the first call, create the stream
  // and the cuBLAS handle (lazily, so a backend can be made and argument errors seen without
  // a GPU).
  void begin() {
    if (stream_ == nullptr) {
      std::string reason;
      LONGNET_CHECK(cuda_device_available(&reason), "cuda model ops: no usable GPU: {}", reason);
      LONGNET_CUDA_CHECK(cudaSetDevice(device_));
      LONGNET_CUDA_CHECK(cudaStreamCreate(&stream_));
      LONGNET_CUBLAS_CHECK(cublasCreate(&handle_));
      LONGNET_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
      // The default math mode: no TF32 for float32 GEMMs, whose 10-bit mantissa would break
      // the agreement with the CPU (and with float32 semantics) at the 1e-3 level.
      LONGNET_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
    }
    LONGNET_CUDA_CHECK(cudaSetDevice(device_));
  }

  void* scratch_bytes(std::size_t bytes) {
    if (bytes > scratch_size_) {
      scratch_.reset();  // cudaFree synchronises: no queued kernel still uses the old buffer
      const std::size_t grown = std::max(bytes, scratch_size_ + scratch_size_ / 2);
      scratch_ = allocate_device(grown);
      scratch_size_ = grown;
    }
    return scratch_.get();
  }
  double* scratch_doubles(int64_t count) {
    return static_cast<double*>(scratch_bytes(static_cast<std::size_t>(count) * sizeof(double)));
  }

  // Host to device on the stream. From pageable memory the call returns once the data is
  // staged, so the caller's span may change afterwards.
  void upload(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    LONGNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  // Device to host after the queued work; waits, so kernel faults surface here.
  void download(void* dst, const void* src, std::size_t bytes) {
    LONGNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    LONGNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  std::shared_ptr<void> scratch_;
  std::size_t scratch_size_ = 0;
};

}  // namespace

std::unique_ptr<ModelOps> make_cuda_model_ops(int device) {
  return std::make_unique<CudaModelOps>(device);
}

}  // namespace longnet
