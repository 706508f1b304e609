// The CPU dilated-attention kernels against the dense double-precision reference.
//
// Every case of the one case list (tests/kernels/attention_cases.hpp, which the CUDA
// suite runs too) runs on every instruction-set copy this machine can execute (generic,
// avx2, avx512); the reference is computed once per case. Each case checks o everywhere, lse
// on the rows some pattern selects, the exact o = 0 / lse = -inf convention on rows no
// pattern selects, and dq, dk, dv. Outputs are poisoned with NaN before each call, so
// an element the kernel forgets to write fails the comparison.
//
// Tolerances, in relative L2 norm ||got - ref|| / ||ref||; eps = 2^-23, float32's
// machine epsilon (rounding error is at most eps / 2 ~ 6e-8):
//   o, lse: 1e-5. A sum of n terms accumulated in float carries ~sqrt(n) eps / 2
//     relative error when rounding errors are random, so n = 4096 keys give ~4e-6, and
//     exp2v adds ~2e-7 per weight. 1e-5 leaves room for that and is still far below what
//     a wrong mask (one missing or extra key) produces.
//   dq, dk, dv: 1e-5, or 4 eps max|lse| when that is larger. The backward recomputes
//     P = exp(S - lse) from the float32 lse (as every FlashAttention-style backward does):
//     its exponent is the difference of two rounded numbers of size ~|lse|, so P carries
//     a relative error of about an ulp of |lse|, which the forward (normalising by its
//     own row sum) does not. That error passes into dv = P^T do directly, and into
//     dS = P (dP - delta), whose row sum (exactly 0) no longer cancels, so dq and dk see
//     it amplified by the cancellation in sum_j dS_ij k_j. With the default scale |lse|
//     stays below ~10 and 1e-5 holds with room; a peaked softmax (scale 4, |lse| ~ 140)
//     legitimately reaches ~2e-5, which 4 eps |lse| (~7e-5) admits without hiding a wrong
//     term (missing mixture weight, wrong delta, a leaking key: errors of 1e-3 and up).
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "runtime/error.hpp"
#include "tests/kernels/attention_cases.hpp"
#include "tests/kernels/document_reference.hpp"
#include "tests/reference/dense_attention_reference.hpp"
#include "tests/support/relative_error.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace longnet {
namespace {

using reference::DenseInputs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kForwardTolerance = 1e-5;   // o, lse; reasoned at the top
constexpr double kGradientTolerance = 1e-5;  // dq, dk, dv; reasoned at the top
constexpr double kLseUlps = 4;               // ulps of max|lse| the gradients may lose
constexpr uint64_t kSeed = 1234567;
constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();

using test::AttentionCase;

AttentionCase make_case(AttentionShape shape, std::vector<int64_t> w, std::vector<int64_t> r,
                        bool causal, HeadOffsets scheme) {
  return {shape, DilatedAttentionConfig::from_lists(w, r, causal, scheme)};
}

Tensor random_tensor(const Shape& shape, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Tensor t(shape, DType::float32);
  for (float& x : t.span<float>()) x = dist(rng);
  return t;
}

Tensor poisoned(const Shape& shape) { return Tensor::filled(shape, kPoison); }

struct Comparison {
  double relative_l2 = 0;  // NaN when any compared element is not finite
  int64_t non_finite = 0;
  int64_t compared = 0;
};

// ||got - ref|| / ||ref|| over the elements `keep` accepts. When ||ref|| is exactly 0
// (e.g. dq when every row attends only itself) it is ||got|| / sqrt(n): the inputs
// are O(1), so an RMS gradient of 1 is the natural unit.
// `got`: any indexable sequence of float or double.
template <typename Got, typename Keep>
Comparison compare(const Got& got, const std::vector<double>& ref, Keep keep) {
  Comparison c;
  double diff2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!keep(i)) continue;
    ++c.compared;
    if (!std::isfinite(static_cast<double>(got[i]))) ++c.non_finite;
    const double d = static_cast<double>(got[i]) - ref[i];
    diff2 += d * d;
    ref2 += ref[i] * ref[i];
  }
  const double unit = ref2 > 0 ? ref2 : static_cast<double>(std::max<int64_t>(c.compared, 1));
  c.relative_l2 =
      c.non_finite > 0 ? std::numeric_limits<double>::quiet_NaN() : std::sqrt(diff2 / unit);
  return c;
}

Comparison compare_all(const Tensor& got, const std::vector<double>& ref) {
  return compare(got.span<float>(), ref, [](std::size_t) { return true; });
}

// The largest error seen per quantity over the cases this process ran, printed at the
// end of the suite (run the binary directly to see it for the whole grid).
struct MaxErrors {
  double o = 0, lse = 0, dq = 0, dk = 0, dv = 0;
};
MaxErrors& max_errors() {
  static MaxErrors errors;
  return errors;
}

// Checks one quantity and returns its error for the per-ISA summary line.
double expect_within(const char* what, const Comparison& c, double tolerance, double& running_max) {
  EXPECT_EQ(c.non_finite, 0) << what << ": " << c.non_finite << " of " << c.compared
                             << " elements are not finite (unwritten, or overflow)";
  EXPECT_LE(c.relative_l2, tolerance) << what << ": relative L2 error";
  if (std::isfinite(c.relative_l2)) running_max = std::max(running_max, c.relative_l2);
  return c.relative_l2;
}

// The gradient bound for a case whose reference lse is `lse` (see the top of the file).
double gradient_tolerance(const std::vector<double>& lse) {
  double largest = 0;
  for (double x : lse) {
    if (std::isfinite(x)) largest = std::max(largest, std::abs(x));
  }
  return std::max(kGradientTolerance, kLseUlps * std::numeric_limits<float>::epsilon() * largest);
}

class CpuKernelsMatchReference : public testing::TestWithParam<AttentionCase> {
 public:
  static void TearDownTestSuite() {
    const MaxErrors& e = max_errors();
    fmt::print(
        "# max relative L2 error over the cases run: o {:.2e}  lse {:.2e}  dq {:.2e}  "
        "dk {:.2e}  dv {:.2e}\n",
        e.o, e.lse, e.dq, e.dk, e.dv);
  }
};

TEST_P(CpuKernelsMatchReference, OnEveryAvailableIsa) {
  const AttentionCase& c = GetParam();
  const Shape shape = qkv_shape(c.shape), key_shape = kv_shape(c.shape);
  std::mt19937_64 rng(kSeed);
  const Tensor q = random_tensor(shape, rng), k = random_tensor(key_shape, rng),
               v = random_tensor(key_shape, rng), dout = random_tensor(shape, rng);

  // Grouped-query cases: the reference runs on per-query-head copies of k and v and sums
  // their gradients over each kv head's query heads.
  const int64_t kv_heads = c.shape.key_heads(), group = c.shape.group_size();
  const DenseInputs in =
      group > 1 ? DenseInputs::from_grouped_tensors(q, k, v) : DenseInputs::from_tensors(q, k, v);
  const auto ref = reference::dense_forward(c.config, in);
  auto ref_grads = reference::dense_backward(c.config, in, reference::to_doubles(dout));
  if (group > 1) {
    ref_grads.dk = reference::sum_over_query_heads(ref_grads.dk, in.shape, kv_heads);
    ref_grads.dv = reference::sum_over_query_heads(ref_grads.dv, in.shape, kv_heads);
  }

  const int64_t d = c.shape.head_dim;
  auto covered = [&](std::size_t row) { return std::isfinite(ref.lse[row]); };
  // A kv row is covered when a query head of its group is.
  auto key_covered = [&](std::size_t kv_row) {
    const auto token = static_cast<int64_t>(kv_row) / kv_heads,
               g = static_cast<int64_t>(kv_row) % kv_heads;
    for (int64_t h = g * group; h < (g + 1) * group; ++h)
      if (covered(static_cast<std::size_t>(token * c.shape.heads + h))) return true;
    return false;
  };
  const auto key_rows = static_cast<std::size_t>(c.shape.batch * c.shape.tokens * kv_heads);
  const auto uncovered = std::ranges::count_if(ref.lse, [](double x) { return std::isinf(x); });
  ASSERT_LT(uncovered, std::ssize(ref.lse))
      << "every row of this case is uncovered: it checks nothing";
  const double grad_tolerance = gradient_tolerance(ref.lse);
  fmt::print("# {} of {} rows selected by no pattern; gradient bound {:.1e}\n", uncovered,
             ref.lse.size(), grad_tolerance);

  if (const auto why = make_cpu_dilated_attention()->supports(c.config, c.shape, DType::float32)) {
    GTEST_SKIP() << *why;
  }
  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto kernels = make_cpu_dilated_attention(isa);
    Tensor o = poisoned(shape), lse = poisoned(lse_shape(c.shape));
    kernels->forward(c.config, q, k, v, o, lse);

    MaxErrors& worst = max_errors();
    const double e_o = expect_within("o", compare_all(o, ref.o), kForwardTolerance, worst.o);
    const double e_lse =
        expect_within("lse (covered rows)", compare(lse.span<float>(), ref.lse, covered),
                      kForwardTolerance, worst.lse);
    // Uncovered rows: exactly the documented convention, not merely close to it.
    const std::size_t rows = ref.lse.size();
    int64_t bad_lse = 0;
    for (std::size_t row = 0; row < rows; ++row) {
      bad_lse += !covered(row) && lse.span<float>()[row] != -std::numeric_limits<float>::infinity();
    }
    EXPECT_EQ(bad_lse, 0) << "rows no pattern selects must have lse = -inf exactly";
    EXPECT_EQ(test::nonzero_uncovered_rows(o, d, rows, covered), 0)
        << "rows no pattern selects must have o = 0 exactly";

    Tensor dq = poisoned(shape), dk = poisoned(key_shape), dv = poisoned(key_shape);
    kernels->backward(c.config, q, k, v, o, lse, dout, dq, dk, dv);
    const double e_dq =
        expect_within("dq", compare_all(dq, ref_grads.dq), grad_tolerance, worst.dq);
    const double e_dk =
        expect_within("dk", compare_all(dk, ref_grads.dk), grad_tolerance, worst.dk);
    const double e_dv =
        expect_within("dv", compare_all(dv, ref_grads.dv), grad_tolerance, worst.dv);
    // An uncovered row is neither a query nor a key of any pattern: no gradient at all.
    EXPECT_EQ(test::nonzero_uncovered_rows(dq, d, rows, covered), 0)
        << "uncovered rows must have exactly zero dq";
    for (const Tensor* g : {&dk, &dv}) {
      EXPECT_EQ(test::nonzero_uncovered_rows(*g, d, key_rows, key_covered), 0)
          << "uncovered rows must have exactly zero dk and dv";
    }
    fmt::print("# {:<7} o {:.2e}  lse {:.2e}  dq {:.2e}  dk {:.2e}  dv {:.2e}\n", cpu_isa_name(isa),
               e_o, e_lse, e_dq, e_dk, e_dv);
  }
}

using HO = HeadOffsets;
constexpr bool kCausal = true, kNonCausal = false;

// The one case list of every backend (tests/kernels/attention_cases.hpp).
INSTANTIATE_TEST_SUITE_P(Grid, CpuKernelsMatchReference, testing::ValuesIn(test::attention_cases()),
                         [](const testing::TestParamInfo<AttentionCase>& case_info) {
                           return test::case_name(case_info.param);
                         });

// ---- packed variable-length documents -------------------------------------------------

// Each case's op output with AttentionExtras::document_lengths against the reference that
// runs every document alone (tests/kernels/document_reference.hpp), on every ISA.
class CpuDocumentsMatchReference : public testing::TestWithParam<test::DocumentCase> {};

TEST_P(CpuDocumentsMatchReference, OnEveryAvailableIsa) {
  const test::DocumentCase& c = GetParam();
  const Shape shape = qkv_shape(c.shape), key_shape = kv_shape(c.shape);
  std::mt19937_64 rng(kSeed + 7);
  const Tensor q = random_tensor(shape, rng), k = random_tensor(key_shape, rng),
               v = random_tensor(key_shape, rng), dout = random_tensor(shape, rng);
  const test::DocumentReference ref = test::document_reference(c, q, k, v, dout);
  auto covered = [&](std::size_t row) { return std::isfinite(ref.lse[row]); };
  const double grad_tolerance = gradient_tolerance(ref.lse);
  AttentionExtras extras;
  extras.document_lengths = c.documents;
  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto kernels = make_cpu_dilated_attention(isa);
    Tensor o = poisoned(shape), lse = poisoned(lse_shape(c.shape));
    kernels->forward(c.config, q, k, v, o, lse, extras);
    MaxErrors& worst = max_errors();
    expect_within("o", compare_all(o, ref.o), kForwardTolerance, worst.o);
    expect_within("lse (covered rows)", compare(lse.span<float>(), ref.lse, covered),
                  kForwardTolerance, worst.lse);
    Tensor dq = poisoned(shape), dk = poisoned(key_shape), dv = poisoned(key_shape);
    kernels->backward(c.config, q, k, v, o, lse, dout, dq, dk, dv, extras);
    expect_within("dq", compare_all(dq, ref.dq), grad_tolerance, worst.dq);
    expect_within("dk", compare_all(dk, ref.dk), grad_tolerance, worst.dk);
    expect_within("dv", compare_all(dv, ref.dv), grad_tolerance, worst.dv);
  }
}

INSTANTIATE_TEST_SUITE_P(Documents, CpuDocumentsMatchReference,
                         testing::ValuesIn(test::document_cases()),
                         [](const testing::TestParamInfo<test::DocumentCase>& document) {
                           return document.param.name;
                         });

// One document per row is exactly the plain op (the same tasks), forward and backward,
// bit for bit.
TEST(CpuDocuments, OneDocumentPerRowIsThePlainOpBitForBit) {
  const AttentionShape s{2, 200, 2, 16};
  const auto config = DilatedAttentionConfig::from_lists({64, 200}, {1, 4}, true, HO::grouped);
  std::mt19937_64 rng(kSeed + 8);
  const Tensor q = random_tensor(qkv_shape(s), rng), k = random_tensor(qkv_shape(s), rng),
               v = random_tensor(qkv_shape(s), rng);
  auto kernels = make_cpu_dilated_attention();
  AttentionExtras whole;
  whole.document_lengths = {{200}, {200, 0}};
  const Tensor dout = random_tensor(qkv_shape(s), rng);
  const AttentionOutputs plain = run_forward(*kernels, config, q, k, v);
  const AttentionOutputs documents = run_forward(*kernels, config, q, k, v, whole);
  EXPECT_TRUE(std::ranges::equal(plain.o.span<float>(), documents.o.span<float>()));
  EXPECT_TRUE(std::ranges::equal(plain.lse.span<float>(), documents.lse.span<float>()));
  const AttentionGradients plain_grads = run_backward(*kernels, config, q, k, v, plain, dout);
  const AttentionGradients document_grads =
      run_backward(*kernels, config, q, k, v, documents, dout, whole);
  EXPECT_TRUE(std::ranges::equal(plain_grads.dq.span<float>(), document_grads.dq.span<float>()));
  EXPECT_TRUE(std::ranges::equal(plain_grads.dk.span<float>(), document_grads.dk.span<float>()));
  EXPECT_TRUE(std::ranges::equal(plain_grads.dv.span<float>(), document_grads.dv.span<float>()));
}

// Bad lengths are refused before any work, naming the row and the rule.
TEST(CpuDocuments, BadLengthsNameTheRow) {
  const AttentionShape s{2, 10, 1, 8};
  const auto config = DilatedAttentionConfig::from_lists({4}, {1}, false, HO::interleaved);
  const Tensor t = Tensor::zeros(qkv_shape(s));
  Tensor o = Tensor::zeros(qkv_shape(s)), lse = Tensor::zeros(lse_shape(s));
  auto kernels = make_cpu_dilated_attention();
  const auto refusal = [&](DocumentLengths lengths) {
    AttentionExtras extras;
    extras.document_lengths = std::move(lengths);
    try {
      kernels->forward(config, t, t, t, o, lse, extras);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_THAT(refusal({{10}, {4, 5}}), HasSubstr("document_lengths row 1 sums to 9"));
  EXPECT_THAT(refusal({{10}, {-2, 12}}), HasSubstr("row 1: length -2 at position 0 is negative"));
  EXPECT_THAT(refusal({{5, 0, 5}, {10}}),
              HasSubstr("row 0: length 5 at position 2 follows a zero"));
  EXPECT_THAT(refusal({{10}}), HasSubstr("document_lengths has 1 rows, expected one per batch"));
  // Lengths whose sum would wrap around to N are refused at the first that runs past it.
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  EXPECT_THAT(refusal({{10}, {kHuge, kHuge, 12}}),
              HasSubstr("row 1: length 9223372036854775807 at position 0 runs past the "
                        "sequence's N = 10 tokens"));
  EXPECT_EQ(refusal({{3, 7}, {10, 0, 0}}), "(accepted)");
}

// ---- properties with an independent oracle -------------------------------------------

// Plain softmax attention, written here without any notion of segments or dilation.
reference::DenseOutputs plain_attention(const DenseInputs& in, bool causal, double scale) {
  const AttentionShape& s = in.shape;
  reference::DenseOutputs out;
  out.o.assign(static_cast<std::size_t>(s.elements()), 0.0);
  out.lse.assign(static_cast<std::size_t>(s.rows()), 0.0);
  std::vector<double> scores(static_cast<std::size_t>(s.tokens));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.tokens; ++i) {
        const int64_t keys = causal ? i + 1 : s.tokens;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < keys; ++j) {
          double dot = 0;
          for (int64_t x = 0; x < s.head_dim; ++x) {
            dot += in.q[in.index(b, i, h, x)] * in.k[in.index(b, j, h, x)];
          }
          scores[j] = scale * dot;
          m = std::max(m, scores[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < keys; ++j) sum += std::exp(scores[j] - m);
        for (int64_t j = 0; j < keys; ++j) {
          const double p = std::exp(scores[j] - m) / sum;
          for (int64_t x = 0; x < s.head_dim; ++x) {
            out.o[in.index(b, i, h, x)] += p * in.v[in.index(b, j, h, x)];
          }
        }
        out.lse[(b * s.tokens + i) * s.heads + h] = m + std::log(sum);
      }
    }
  }
  return out;
}

class RateOneSegmentCoveringN : public testing::TestWithParam<AttentionCase> {};

TEST_P(RateOneSegmentCoveringN, IsPlainSoftmaxAttention) {
  const AttentionCase& c = GetParam();
  std::mt19937_64 rng(kSeed + 1);
  const Shape shape = qkv_shape(c.shape);
  const Tensor q = random_tensor(shape, rng), k = random_tensor(shape, rng),
               v = random_tensor(shape, rng);
  const DenseInputs in = DenseInputs::from_tensors(q, k, v);
  const auto plain =
      plain_attention(in, c.config.causal, 1.0 / std::sqrt(static_cast<double>(c.shape.head_dim)));

  // The reference agrees to double rounding: same arithmetic, different bookkeeping.
  const auto ref = reference::dense_forward(c.config, in);
  auto all = [](std::size_t) { return true; };
  EXPECT_LE(compare(ref.o, plain.o, all).relative_l2, 1e-12);
  EXPECT_LE(compare(ref.lse, plain.lse, all).relative_l2, 1e-12);

  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto out = run_forward(*make_cpu_dilated_attention(isa), c.config, q, k, v);
    EXPECT_LE(compare_all(out.o, plain.o).relative_l2, kForwardTolerance);
    EXPECT_LE(compare_all(out.lse, plain.lse).relative_l2, kForwardTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Dense, RateOneSegmentCoveringN,
    testing::Values(make_case({1, 300, 2, 64}, {300}, {1}, kNonCausal, HO::interleaved),
                    make_case({2, 129, 1, 32}, {4096}, {1}, kCausal, HO::grouped),
                    make_case({1, 65, 3, 24}, {65}, {1}, kCausal, HO::interleaved)),
    [](const testing::TestParamInfo<AttentionCase>& case_info) {
      return reference::case_name(case_info.param.shape, case_info.param.config);
    });

TEST(CpuKernelProperties, DuplicatedPatternKeepsOutputAndAddsLog2ToLse) {
  // Counting every key twice doubles every softmax denominator and leaves the
  // normalised weights unchanged.
  const AttentionShape s{1, 500, 3, 32};
  std::mt19937_64 rng(kSeed + 2);
  const Tensor q = random_tensor(qkv_shape(s), rng), k = random_tensor(qkv_shape(s), rng),
               v = random_tensor(qkv_shape(s), rng);
  const auto once = DilatedAttentionConfig::from_lists({96}, {3}, true, HeadOffsets::grouped);
  const auto twice =
      DilatedAttentionConfig::from_lists({96, 96}, {3, 3}, true, HeadOffsets::grouped);
  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto kernels = make_cpu_dilated_attention(isa);
    const auto a = run_forward(*kernels, once, q, k, v);
    const auto b = run_forward(*kernels, twice, q, k, v);
    std::vector<double> a_o(a.o.span<float>().begin(), a.o.span<float>().end());
    std::vector<double> a_lse(a.lse.span<float>().begin(), a.lse.span<float>().end());
    for (double& x : a_lse) x += std::log(2.0);  // -inf stays -inf
    EXPECT_LE(compare_all(b.o, a_o).relative_l2, kForwardTolerance);
    auto finite = [&](std::size_t i) { return std::isfinite(a_lse[i]); };
    EXPECT_LE(compare(b.lse.span<float>(), a_lse, finite).relative_l2, kForwardTolerance);
  }
}

TEST(CpuKernelCoverage, EveryIsaCopyIsExercisedOrReportedAsSkipped) {
  // A missing ISA means the grid above silently tested fewer copies: say so, as a skip.
  std::string missing;
  for (CpuIsa isa : {CpuIsa::generic, CpuIsa::avx2, CpuIsa::avx512}) {
    if (!cpu_isa_available(isa)) missing += std::string(" ") + std::string(cpu_isa_name(isa));
  }
  ASSERT_TRUE(cpu_isa_available(CpuIsa::generic)) << "the generic copy must always run";
  if (!missing.empty()) GTEST_SKIP() << "not tested on this machine:" << missing;
}

// ---- errors go through longnet::Error, naming the problem ------------------------------

class CpuKernelErrors : public testing::Test {
 protected:
  AttentionShape s_{1, 8, 2, 16};
  Shape shape_ = qkv_shape(s_);
  Tensor q_ = Tensor::zeros(shape_), k_ = Tensor::zeros(shape_), v_ = Tensor::zeros(shape_);
  Tensor o_ = Tensor::zeros(shape_), lse_ = Tensor::zeros(lse_shape(s_));
  DilatedAttentionConfig config_ =
      DilatedAttentionConfig::from_lists({4}, {2}, false, HeadOffsets::interleaved);
  std::unique_ptr<DilatedAttentionOp> kernels_ = make_cpu_dilated_attention(CpuIsa::generic);
};

TEST_F(CpuKernelErrors, KeyShapeDifferentFromQueryNamesBothShapes) {
  const Tensor k = Tensor::zeros({1, 9, 2, 16});
  EXPECT_THAT(
      [&] { kernels_->forward(config_, q_, k, v_, o_, lse_); },
      ThrowsMessage<Error>(AllOf(HasSubstr("k has shape [1, 9, 2, 16] but q has [1, 8, 2, 16]"),
                                 HasSubstr("[B, N, Hkv, D]"))));
}

TEST_F(CpuKernelErrors, KeyValueHeadsMustDivideTheQueryHeads) {
  // q has 2 heads: k with 3 cannot be grouped; v with 1 head does not match k's 2.
  EXPECT_THAT(
      [&] {
        kernels_->forward(config_, q_, Tensor::zeros({1, 8, 3, 16}), v_, o_, lse_);
      },
      ThrowsMessage<Error>(HasSubstr("k and v have 3 heads, which must divide q's 2 heads")));
  EXPECT_THAT(
      [&] {
        kernels_->forward(config_, q_, k_, Tensor::zeros({1, 8, 1, 16}), o_, lse_);
      },
      ThrowsMessage<Error>(AllOf(HasSubstr("v (must match k) has shape [1, 8, 1, 16]"),
                                 HasSubstr("expected [1, 8, 2, 16]"))));
  // A backward's dk must have k's heads, not q's.
  const Tensor k1 = Tensor::zeros({1, 8, 1, 16});
  Tensor dq = Tensor::zeros(shape_), dk = Tensor::zeros(shape_), dv = Tensor::zeros({1, 8, 1, 16});
  EXPECT_THAT([&] { kernels_->backward(config_, q_, k1, k1, o_, lse_, q_, dq, dk, dv); },
              ThrowsMessage<Error>(AllOf(HasSubstr("dk (shaped like k) has shape [1, 8, 2, 16]"),
                                         HasSubstr("expected [1, 8, 1, 16]"))));
}

TEST_F(CpuKernelErrors, WrongDtypeIsNamed) {
  const Tensor q = Tensor::zeros(shape_, DType::float64);
  EXPECT_THAT(
      [&] { kernels_->forward(config_, q, k_, v_, o_, lse_); },
      ThrowsMessage<Error>(AllOf(HasSubstr("cannot run this attention"),
                                 HasSubstr("q is float64, but the CPU kernels take float32"))));
  // The same reason, asked for instead of caught.
  const std::optional<std::string> reason = kernels_->supports(config_, s_, DType::float64);
  ASSERT_TRUE(reason.has_value());
  EXPECT_THAT(*reason, HasSubstr("take float32 inputs"));
  EXPECT_EQ(kernels_->supports(config_, s_, DType::float32), std::nullopt);
}

TEST_F(CpuKernelErrors, WrongRankIsNamed) {
  const Tensor q = Tensor::zeros({8, 2, 16});
  EXPECT_THAT([&] { kernels_->forward(config_, q, k_, v_, o_, lse_); },
              ThrowsMessage<Error>(AllOf(HasSubstr("rank 4"), HasSubstr("[8, 2, 16]"))));
}

TEST_F(CpuKernelErrors, BadConfigIsRejectedByForwardAndBackward) {
  // Built field by field, so from_lists' validation never ran: the kernels must validate.
  DilatedAttentionConfig bad = config_;
  bad.patterns = {{8, 9}};
  EXPECT_THAT([&] { kernels_->forward(bad, q_, k_, v_, o_, lse_); },
              ThrowsMessage<Error>(HasSubstr("dilation rate 9 exceeds segment length 8")));
  Tensor dq = Tensor::zeros(shape_), dk = Tensor::zeros(shape_), dv = Tensor::zeros(shape_);
  bad.patterns.clear();
  EXPECT_THAT([&] { kernels_->backward(bad, q_, k_, v_, o_, lse_, o_, dq, dk, dv); },
              ThrowsMessage<Error>(HasSubstr("no patterns")));
}

TEST_F(CpuKernelErrors, WrongOutputShapesAreNamed) {
  Tensor lse = Tensor::zeros({1, 8, 3});
  EXPECT_THAT([&] { kernels_->forward(config_, q_, k_, v_, o_, lse); },
              ThrowsMessage<Error>(
                  AllOf(HasSubstr("lse has shape [1, 8, 3]"), HasSubstr("expected [1, 8, 2]"))));
  const Tensor dout = Tensor::zeros({1, 8, 2, 15});
  Tensor dq = Tensor::zeros(shape_), dk = Tensor::zeros(shape_), dv = Tensor::zeros(shape_);
  EXPECT_THAT([&] { kernels_->backward(config_, q_, k_, v_, o_, lse_, dout, dq, dk, dv); },
              ThrowsMessage<Error>(HasSubstr("do (the output gradient) has shape")));
}

// The task entry points go through the same front end: a dtype the CPU kernels do not
// take, or a missing output, is an Error before any kernel runs (it used to reach the
// kernels, which read through the pointers).
TEST_F(CpuKernelErrors, TaskEntryPointsAreChecked) {
  AttentionParams params;
  params.q = q_.data<float>();
  params.o = o_.data<float>();
  params.lse = lse_.data<float>();
  params.head_dim = s_.head_dim;
  params.scale = 0.25f;
  const PatternTasks tasks =
      segment_tasks(config_.patterns[0], config_.head_offsets, s_, 0, s_.tokens, k_.data<float>(),
                    v_.data<float>(), sizeof(float), nullptr, nullptr);
  params.input_dtype = DType::bfloat16;
  EXPECT_THAT([&] { kernels_->forward_tasks(params, tasks); },
              ThrowsMessage<Error>(AllOf(HasSubstr("AttentionParams::input_dtype is bfloat16"),
                                         HasSubstr("take float32 inputs"))));
  params.input_dtype = DType::float32;
  params.lse = nullptr;
  EXPECT_THAT([&] { kernels_->forward_tasks(params, tasks); },
              ThrowsMessage<Error>(HasSubstr("forward_tasks needs o and lse")));
  params.lse = lse_.data<float>();
  EXPECT_THAT([&] { kernels_->backward_tasks(params, tasks); },
              ThrowsMessage<Error>(HasSubstr("needs dout, saved_lse, delta and dq")));
  params.scale = 0.0f;
  EXPECT_THAT([&] { kernels_->forward_tasks(params, tasks); },
              ThrowsMessage<Error>(HasSubstr("AttentionParams::scale must be positive")));
}

}  // namespace
}  // namespace longnet
