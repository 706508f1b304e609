// Relative position bias and attention dropout in the CPU kernels, against the dense
// reference (tests/reference), on every instruction-set copy this machine runs.
//
// Each case checks o, lse (covered rows; uncovered rows exactly 0 / -inf), dq, dk, dv and
// dbias. Tolerances, relative L2, as reasoned in tests/kernels/test_dilated_attention_cpu.cpp:
// 1e-5 for o and lse, and for the gradients 1e-5 or 4 ulps of max|lse|, whichever is
// larger (the backward recomputes P from the float32 lse). Dropout scales weights by
// 1 / (1 - p) <= 2 here, which adds no rounding of note. dbias sums dS along diagonals,
// up to N terms of each sign with the same per-term error as dq's inner sums, so it gets
// the gradient bound as well, measured against max(||dbias||, 1): in a short segment the
// exact dbias nearly cancels (without dropout every row of dS sums to 0, and a row of one
// or two keys makes the diagonal sums +-each other), so only its rounding remains, of the
// size of dS's absolute error; O(1) inputs make 1 the natural unit. A wrong mask bit, a missing Z
// or a bias read one slot off gives errors of 1e-2 and more.
//
// Beyond the grid: the feature-off path is bit-identical to a call without extras, the
// mask depends only on (key, token m, token n) (splitting a segment's queries into tasks
// that start at first_index > 0, as the sequence-parallel layer does, changes nothing),
// batches and seeds get different masks, and malformed extras are rejected by name.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "kernels/philox.hpp"
#include "runtime/error.hpp"
#include "tests/kernels/extras/extras_cases.hpp"
#include "tests/kernels/extras/extras_test_support.hpp"

namespace longnet {
namespace {

using reference::DenseInputs;
using test::bitwise_equal;
using test::poisoned;
using test::random_tensor;
using test::relative_l2;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kForwardTolerance = 1e-5;
constexpr double kGradientTolerance = 1e-5;
constexpr double kLseUlps = 4;
constexpr uint64_t kSeed = 99173;
constexpr uint64_t kDropoutSeed = 0xC0FFEE;

using test::ExtrasCase;

double gradient_tolerance(const std::vector<double>& lse) {
  double largest = 0;
  for (double x : lse) {
    if (std::isfinite(x)) largest = std::max(largest, std::abs(x));
  }
  return std::max(kGradientTolerance, kLseUlps * std::numeric_limits<float>::epsilon() * largest);
}

// The kernel extras and their reference twin, with the same values.
struct Extras {
  AttentionExtras kernel;
  reference::DenseExtras dense;
};

Extras make_extras(const ExtrasCase& c, std::mt19937_64& rng) {
  Extras e;
  if (c.bias) {
    e.kernel.bias = test::random_bias(c.config, c.shape.heads, rng);
    e.dense.bias = test::bias_table(e.kernel.bias);
  }
  e.kernel.dropout_p = e.dense.dropout_p = c.dropout_p;
  e.kernel.dropout_seed = e.dense.dropout_seed = kDropoutSeed;
  e.kernel.dropout_step = e.dense.dropout_step = 17;
  e.kernel.dropout_layer = e.dense.dropout_layer = 2;
  return e;
}

class CpuExtrasMatchReference : public testing::TestWithParam<ExtrasCase> {};

TEST_P(CpuExtrasMatchReference, OnEveryAvailableIsa) {
  const ExtrasCase& c = GetParam();
  if (const auto why = make_cpu_dilated_attention()->supports(c.config, c.shape, DType::float32)) {
    GTEST_SKIP() << *why;
  }
  const Shape shape = qkv_shape(c.shape);
  std::mt19937_64 rng(kSeed);
  const Tensor q = random_tensor(shape, rng), k = random_tensor(shape, rng),
               v = random_tensor(shape, rng), dout = random_tensor(shape, rng);
  const Extras extras = make_extras(c, rng);

  const DenseInputs in = DenseInputs::from_tensors(q, k, v);
  const auto ref = reference::dense_forward(c.config, in, extras.dense);
  const auto ref_grads =
      reference::dense_backward(c.config, in, reference::to_doubles(dout), extras.dense);
  const std::vector<double> ref_dbias = test::flatten(ref_grads.dbias);
  auto covered = [&](std::size_t row) { return std::isfinite(ref.lse[row]); };
  const double grad_tolerance = gradient_tolerance(ref.lse);

  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto kernels = make_cpu_dilated_attention(isa);
    Tensor o = poisoned(shape), lse = poisoned(lse_shape(c.shape));
    kernels->forward(c.config, q, k, v, o, lse, extras.kernel);
    EXPECT_LE(relative_l2(o, ref.o), kForwardTolerance) << "o";
    EXPECT_LE(relative_l2(lse.span<float>(), ref.lse, covered), kForwardTolerance) << "lse";
    int64_t bad_uncovered = 0;
    for (std::size_t row = 0; row < ref.lse.size(); ++row) {
      bad_uncovered += !covered(row) && lse.span<float>()[row] != -INFINITY;
    }
    EXPECT_EQ(bad_uncovered, 0) << "rows no pattern selects must keep lse = -inf";

    Tensor dq = poisoned(shape), dk = poisoned(shape), dv = poisoned(shape);
    std::vector<Tensor> dbias;
    for (const Tensor& b : extras.kernel.bias) dbias.push_back(poisoned(b.shape()));
    kernels->backward(c.config, q, k, v, o, lse, dout, dq, dk, dv, extras.kernel, dbias);
    EXPECT_LE(relative_l2(dq, ref_grads.dq), grad_tolerance) << "dq";
    EXPECT_LE(relative_l2(dk, ref_grads.dk), grad_tolerance) << "dk";
    EXPECT_LE(relative_l2(dv, ref_grads.dv), grad_tolerance) << "dv";
    double e_dbias = 0;
    if (c.bias) {
      e_dbias = test::error_over_floor(test::flatten(dbias), ref_dbias, 1.0);
      EXPECT_LE(e_dbias, grad_tolerance) << "dbias";
    } else {
      EXPECT_TRUE(dbias.empty()) << "no bias, so no bias gradient";
    }
    fmt::print("# {:<7} o {:.2e} dq {:.2e} dk {:.2e} dv {:.2e} dbias {:.2e}\n", cpu_isa_name(isa),
               relative_l2(o, ref.o), relative_l2(dq, ref_grads.dq), relative_l2(dk, ref_grads.dk),
               relative_l2(dv, ref_grads.dv), e_dbias);
  }
}

// The one case list of every backend (tests/kernels/extras/extras_cases.hpp).
INSTANTIATE_TEST_SUITE_P(Grid, CpuExtrasMatchReference, testing::ValuesIn(test::extras_cases()),
                         [](const testing::TestParamInfo<ExtrasCase>& case_info) {
                           return test::case_name(case_info.param);
                         });

// ---- the feature-off path -------------------------------------------------------------

class CpuExtrasProperties : public testing::Test {
 protected:
  AttentionShape s_{2, 600, 3, 32};
  Shape shape_ = qkv_shape(s_);
  DilatedAttentionConfig config_ =
      DilatedAttentionConfig::from_lists({128, 600}, {2, 4}, true, HeadOffsets::interleaved);
  std::mt19937_64 rng_{kSeed + 1};
  Tensor q_ = random_tensor(shape_, rng_), k_ = random_tensor(shape_, rng_),
         v_ = random_tensor(shape_, rng_), dout_ = random_tensor(shape_, rng_);
};

TEST_F(CpuExtrasProperties, NoBiasAndZeroDropoutAreBitIdenticalToNoExtras) {
  AttentionExtras off;
  off.dropout_p = 0.0f;
  off.dropout_seed = 123;  // a seed alone must not change anything
  off.dropout_step = 9;
  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto kernels = make_cpu_dilated_attention(isa);
    const auto plain = run_forward(*kernels, config_, q_, k_, v_);
    const auto with = run_forward(*kernels, config_, q_, k_, v_, off);
    EXPECT_TRUE(bitwise_equal(plain.o, with.o));
    EXPECT_TRUE(bitwise_equal(plain.lse, with.lse));
    const auto g_plain = run_backward(*kernels, config_, q_, k_, v_, plain, dout_);
    const auto g_with = run_backward(*kernels, config_, q_, k_, v_, plain, dout_, off);
    EXPECT_TRUE(bitwise_equal(g_plain.dq, g_with.dq));
    EXPECT_TRUE(bitwise_equal(g_plain.dk, g_with.dk));
    EXPECT_TRUE(bitwise_equal(g_plain.dv, g_with.dv));
    EXPECT_TRUE(g_with.dbias.empty());
  }
}

TEST_F(CpuExtrasProperties, ZeroBiasMatchesNoBiasAndItsGradientIsTheDiagonalSumOfDs) {
  // A zero bias runs the extras code path; its results must agree with the plain path,
  // and dbias (the gradient at bias = 0) must match the reference's.
  AttentionExtras zero;
  for (const DilationPattern& p : config_.patterns) {
    zero.bias.push_back(Tensor::zeros({s_.heads, 2 * relative_bias_rows(p) - 1}));
  }
  reference::DenseExtras dense;
  dense.bias = test::bias_table(zero.bias);
  const DenseInputs in = DenseInputs::from_tensors(q_, k_, v_);
  const auto ref = reference::dense_backward(config_, in, reference::to_doubles(dout_), dense);
  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto kernels = make_cpu_dilated_attention(isa);
    const auto plain = run_forward(*kernels, config_, q_, k_, v_);
    const auto with = run_forward(*kernels, config_, q_, k_, v_, zero);
    std::vector<double> plain_o(plain.o.span<float>().begin(), plain.o.span<float>().end());
    EXPECT_LE(relative_l2(with.o, plain_o), 1e-6);
    const auto grads = run_backward(*kernels, config_, q_, k_, v_, with, dout_, zero);
    EXPECT_LE(relative_l2(grads.dq, ref.dq), kGradientTolerance);
    EXPECT_LE(relative_l2(test::flatten(grads.dbias), test::flatten(ref.dbias)),
              kGradientTolerance);
  }
}

// ---- the mask depends only on (key, m, n) ----------------------------------------------

// Splits every task of `pattern` into two: query rows [0, cut) and [cut, count), the
// second starting at dilated index first_index = cut, as the sequence-parallel layer
// builds tasks whose queries start mid-segment. Keys stay whole.
std::vector<PatternTasks> split_queries(const PatternTasks& pattern, int64_t cut) {
  std::vector<PatternTasks> halves(
      2, PatternTasks{pattern.query_row_stride, pattern.lse_row_stride, {}});
  for (const SegmentTask& task : pattern.tasks) {
    if (task.queries.count <= cut) {
      halves[0].tasks.push_back(task);
      continue;
    }
    SegmentTask head = task, tail = task;
    head.queries.count = cut;
    tail.queries.count = task.queries.count - cut;
    tail.queries.first_index = cut;
    tail.queries.base += cut * pattern.query_row_stride;
    tail.queries.lse_base += cut * pattern.lse_row_stride;
    halves[0].tasks.push_back(head);
    halves[1].tasks.push_back(tail);
  }
  return halves;
}

TEST_F(CpuExtrasProperties, SplittingQueriesIntoTasksFromMidSegmentChangesNothing) {
  // One pattern, tasks built by segment_tasks with bias and dropout, run whole and split
  // at dilated index 77 (mid query block): outputs and gradients agree with the reference.
  const auto config = DilatedAttentionConfig::from_lists({600}, {2}, true, HeadOffsets::grouped);
  AttentionExtras extras;
  extras.bias = test::random_bias(config, s_.heads, rng_);
  extras.dropout_p = 0.3f;
  extras.dropout_seed = 31;
  reference::DenseExtras dense;
  dense.bias = test::bias_table(extras.bias);
  dense.dropout_p = extras.dropout_p;
  dense.dropout_seed = extras.dropout_seed;
  const DenseInputs in = DenseInputs::from_tensors(q_, k_, v_);
  const auto ref = reference::dense_forward(config, in, dense);
  const auto ref_grads = reference::dense_backward(config, in, reference::to_doubles(dout_), dense);

  for (CpuIsa isa : available_cpu_isas()) {
    SCOPED_TRACE(testing::Message() << "isa " << cpu_isa_name(isa));
    auto kernels = make_cpu_dilated_attention(isa);
    Tensor o = Tensor::zeros(shape_), lse = Tensor::filled(lse_shape(s_), -INFINITY);
    Tensor dq = Tensor::zeros(shape_), dk = Tensor::zeros(shape_), dv = Tensor::zeros(shape_);
    std::vector<Tensor> dbias{Tensor::zeros(extras.bias[0].shape())};
    const TaskExtras task_extras = pattern_task_extras(config, s_, extras, dbias, 0);
    const PatternTasks whole = segment_tasks(
        config.patterns[0], config.head_offsets, s_, 0, s_.tokens, k_.data<float>(),
        v_.data<float>(), sizeof(float), dk.data<float>(), dv.data<float>(), task_extras);
    const std::vector<PatternTasks> halves = split_queries(whole, 77);
    ASSERT_FALSE(halves[1].tasks.empty());

    AttentionParams params;
    params.head_dim = s_.head_dim;
    params.scale = static_cast<float>(softmax_scale(config, s_.head_dim));
    params.causal = config.causal;
    params.dropout_p = extras.dropout_p;
    params.q = q_.data<float>();
    params.o = o.data<float>();
    params.lse = lse.data<float>();
    // The halves hold disjoint query rows: one forward call takes both.
    PatternTasks both = halves[0];
    both.tasks.insert(both.tasks.end(), halves[1].tasks.begin(), halves[1].tasks.end());
    kernels->forward_tasks(params, both);
    EXPECT_LE(relative_l2(o, ref.o), kForwardTolerance);

    Tensor delta(lse_shape(s_), DType::float32);
    kernels->output_gradient_dot(o, dout_, delta);
    params.saved_lse = lse.data<float>();
    params.dout = dout_.data<float>();
    params.delta = delta.data<float>();
    params.dq = dq.data<float>();
    // The halves share key-gradient rows: one call each, one after the other.
    kernels->backward_tasks(params, halves[0]);
    kernels->backward_tasks(params, halves[1]);
    const double tol = gradient_tolerance(ref.lse);
    EXPECT_LE(relative_l2(dq, ref_grads.dq), tol) << "dq";
    EXPECT_LE(relative_l2(dk, ref_grads.dk), tol) << "dk";
    EXPECT_LE(relative_l2(dv, ref_grads.dv), tol) << "dv";
    EXPECT_LE(relative_l2(dbias[0].span<float>(), test::flatten(ref_grads.dbias)), tol) << "dbias";
  }
}

TEST(SegmentTasks, CarryGlobalTokenOriginAndStrideAndPerHeadExtras) {
  // A rank holding tokens [100, 300) of 400, pattern (w = 50, r = 3), grouped offsets.
  const AttentionShape local{2, 200, 4, 8};
  const DilationPattern pattern{50, 3};
  float bias[4] = {}, dbias[4] = {};
  TaskExtras extras;
  for (int h = 0; h < 4; ++h) {
    extras.bias.push_back(&bias[h]);
    extras.dbias.push_back(&dbias[h]);
    extras.dropout_keys.push_back(1000 + static_cast<uint64_t>(h));
  }
  const PatternTasks work = segment_tasks(pattern, HeadOffsets::grouped, local, 100, 400, nullptr,
                                          nullptr, sizeof(float), nullptr, nullptr, extras);
  ASSERT_EQ(work.tasks.size(), 2u * 4u * 4u);  // B * H * segments [100, 300)
  std::size_t t = 0;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t h = 0; h < 4; ++h) {
      const int64_t off = h / 2;  // grouped: ceil(4 / 3) = 2 heads per offset
      for (int64_t start = 100; start < 300; start += 50, ++t) {
        const SegmentTask& task = work.tasks[t];
        EXPECT_EQ(task.token_origin, start + off) << "task " << t;
        EXPECT_EQ(task.token_stride, 3);
        EXPECT_EQ(task.bias, &bias[h]);
        EXPECT_EQ(task.dbias, &dbias[h]);
        EXPECT_EQ(task.dropout_key, dropout_task_key(1000 + static_cast<uint64_t>(h), b));
      }
    }
  }
}

TEST_F(CpuExtrasProperties, BatchesAndSeedsGetDifferentMasksAndRunsRepeat) {
  // Both batches hold the same q, k, v: without dropout their outputs are equal; with it
  // they differ (independent masks), a rerun repeats bit for bit, a new step differs.
  const AttentionShape s{2, 300, 1, 16};
  const auto config = DilatedAttentionConfig::from_lists({300}, {1}, false, HeadOffsets::grouped);
  std::mt19937_64 rng(kSeed + 3);
  const auto twice = [&rng] {  // one random sequence, copied into both batches
    const Tensor one = random_tensor({1, 300, 1, 16}, rng);
    Tensor t({2, 300, 1, 16}, DType::float32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = one.data<float>()[i % one.numel()];
    return t;
  };
  const Tensor q = twice(), k = twice(), v = twice();
  AttentionExtras drop;
  drop.dropout_p = 0.5f;
  drop.dropout_seed = 4;
  auto kernels = make_cpu_dilated_attention();
  const auto half = [&](const Tensor& o, int64_t b) {
    const auto x = o.span<float>();
    const auto n = static_cast<std::size_t>(s.elements() / 2);
    return std::vector<float>(x.begin() + static_cast<std::ptrdiff_t>(b * n),
                              x.begin() + static_cast<std::ptrdiff_t>((b + 1) * n));
  };
  const auto plain = run_forward(*kernels, config, q, k, v);
  EXPECT_EQ(half(plain.o, 0), half(plain.o, 1));
  const auto a = run_forward(*kernels, config, q, k, v, drop);
  EXPECT_NE(half(a.o, 0), half(a.o, 1)) << "both batches got the same dropout mask";
  EXPECT_TRUE(bitwise_equal(a.lse, plain.lse)) << "lse is that of the undropped scores";
  const auto again = run_forward(*kernels, config, q, k, v, drop);
  EXPECT_TRUE(bitwise_equal(a.o, again.o)) << "the mask must be a pure function of its key";
  drop.dropout_step = 1;
  const auto next = run_forward(*kernels, config, q, k, v, drop);
  EXPECT_NE(half(a.o, 0), half(next.o, 0)) << "a new step must draw a new mask";
}

// ---- malformed extras are rejected by name ---------------------------------------------

TEST_F(CpuExtrasProperties, MalformedExtrasNameTheProblem) {
  auto kernels = make_cpu_dilated_attention(CpuIsa::generic);
  Tensor o = Tensor::zeros(shape_), lse = Tensor::zeros(lse_shape(s_));
  AttentionExtras extras;
  extras.bias = {Tensor::zeros({3, 127})};  // one tensor for two patterns
  EXPECT_THAT([&] { kernels->forward(config_, q_, k_, v_, o, lse, extras); },
              ThrowsMessage<Error>(HasSubstr("one tensor per pattern (2), got 1")));
  // Pattern 1 (w = 600, r = 4) has L = 150, so 2L - 1 = 299 distances, not 149.
  extras.bias = {Tensor::zeros({3, 127}), Tensor::zeros({3, 149})};
  EXPECT_THAT([&] { kernels->forward(config_, q_, k_, v_, o, lse, extras); },
              ThrowsMessage<Error>(AllOf(HasSubstr("bias of pattern 1 (w=600, r=4"),
                                         HasSubstr("[3, 149]"), HasSubstr("[3, 299]"))));
  extras.bias.clear();
  extras.dropout_p = 1.0f;
  EXPECT_THAT([&] { kernels->forward(config_, q_, k_, v_, o, lse, extras); },
              ThrowsMessage<Error>(HasSubstr("dropout_p must be in [0, 1), got 1")));
  extras.dropout_p = 0.0f;
  Tensor dq = Tensor::zeros(shape_), dk = Tensor::zeros(shape_), dv = Tensor::zeros(shape_);
  std::vector<Tensor> dbias{Tensor::zeros({3, 127}), Tensor::zeros({3, 299})};
  EXPECT_THAT(
      [&] { kernels->backward(config_, q_, k_, v_, o, lse, dout_, dq, dk, dv, extras, dbias); },
      ThrowsMessage<Error>(HasSubstr("dbias was requested but extras.bias is empty")));
}

}  // namespace
}  // namespace longnet
