// Tensors: the 16-bit storage types' conversions, casts, poisoning, and device tensors
// refusing clearly where no device exists.
#include "runtime/checked_size.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/tensor.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace longnet {
namespace {

TEST(Float16, EveryBitPatternRoundTripsThroughFloat) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const float16 h{static_cast<uint16_t>(bits)};
    const float f = to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(to_float(to_float16(f)))) << bits;
    } else {
      ASSERT_EQ(to_float16(f).bits, h.bits) << "pattern " << bits << " value " << f;
    }
  }
}

TEST(Float16, RoundsToNearestEvenAndOverflowsToInfinity) {
  EXPECT_EQ(to_float(to_float16(1.0f + 1.0f / 2048)), 1.0f);                // tie, to even
  EXPECT_EQ(to_float(to_float16(1.0f + 3.0f / 2048)), 1.0f + 2.0f / 1024);  // tie, to even
  EXPECT_EQ(to_float(to_float16(65504.0f)), 65504.0f);
  EXPECT_EQ(to_float(to_float16(65519.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(to_float(to_float16(65520.0f))));
  EXPECT_EQ(to_float(to_float16(5.9604644775390625e-8f)), 5.9604644775390625e-8f);  // 2^-24
  EXPECT_EQ(to_float(to_float16(2.0e-8f)), 0.0f);
}

TEST(BFloat16, EveryBitPatternRoundTripsAndTiesGoToEven) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const bfloat16 b{static_cast<uint16_t>(bits)};
    const float f = to_float(b);
    if (!std::isnan(f)) {
      ASSERT_EQ(to_bfloat16(f).bits, b.bits) << bits;
    }
  }
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 1.0f / 256)), 1.0f);              // tie, to even
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);  // tie, to even
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Tensor, CastNarrowsAndWidens) {
  Tensor t({3}, DType::float32);
  t.data<float>()[0] = 1.0f;
  t.data<float>()[1] = 1.0f / 3.0f;
  t.data<float>()[2] = -2.5f;
  const Tensor h = t.cast(DType::bfloat16);
  EXPECT_EQ(h.dtype(), DType::bfloat16);
  EXPECT_EQ(h.nbytes(), 6u);
  const Tensor back = h.cast(DType::float32);
  EXPECT_EQ(back.data<float>()[0], 1.0f);
  EXPECT_NEAR(back.data<float>()[1], 1.0f / 3.0f, 1.0f / 256);
  EXPECT_EQ(back.data<float>()[2], -2.5f);
  EXPECT_THAT([&] { (void)h.data<float>(); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("holds bfloat16")));
}

TEST(Tensor, PoisonMakesEveryElementNaN) {
  for (DType dtype : {DType::float32, DType::float64, DType::bfloat16, DType::float16}) {
    Tensor t({5}, dtype);
    t.poison();
    const Tensor f = t.cast(DType::float64);
    for (double x : f.span<double>()) EXPECT_TRUE(std::isnan(x)) << dtype_name(dtype);
  }
}

TEST(Tensor, DeviceTensorWithoutADeviceIsAClearError) {
  std::string reason;
  if (cuda_device_available(&reason)) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(reason.empty());
  try {
    Tensor t({4}, DType::float32, Device::cuda);
    FAIL() << "allocated device memory without a device";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::AnyOf(::testing::HasSubstr("cudaMalloc"),
                                           ::testing::HasSubstr("no CUDA")));
  }
}

// ---- sizes that cannot wrap ----------------------------------------------------------

TEST(CheckedSize, ProductsThatOverflowAreErrorsNamingTheDimensions) {
  EXPECT_EQ(checked_element_count(Shape{2, 3, 4}, "x"), 24);
  EXPECT_EQ(checked_element_count(Shape{}, "x"), 1);
  EXPECT_EQ(checked_element_count(Shape{0, int64_t{1} << 62, 8}, "x"), 0);
  // 2^62 * 4 is 2^64: it wrapped to 0 before, and every later check passed.
  EXPECT_THAT(
      [] {
        checked_element_count(Shape{1, int64_t{1} << 62, 4, 1}, "dataset 'q'");
      },
      ::testing::ThrowsMessage<Error>(
          ::testing::AllOf(::testing::HasSubstr("dataset 'q'"),
                           ::testing::HasSubstr("[1, 4611686018427387904, 4, 1]"),
                           ::testing::HasSubstr("overflows"))));
  EXPECT_THROW(checked_element_count(Shape{2, -1}, "x"), Error);
  EXPECT_EQ(checked_mul(int64_t{1} << 31, int64_t{1} << 31, "x"), int64_t{1} << 62);
  EXPECT_THROW(checked_mul(int64_t{1} << 32, int64_t{1} << 31, "x"), Error);
  EXPECT_THROW(checked_byte_count(int64_t{1} << 62, 4, "x"), Error);
}

TEST(CheckedSize, NamedProductsReturnNothingOnOverflowAndNameEveryFactor) {
  EXPECT_EQ(checked_product({{"a", 3}, {"b", 5}}), 15);
  EXPECT_EQ(checked_product({}), 1);
  std::string why;
  EXPECT_FALSE(checked_product({{"data.batch_size", 4}, {"data.seq_len", int64_t{1} << 62}}, &why)
                   .has_value());
  EXPECT_EQ(why,
            "data.batch_size (4) x data.seq_len (4611686018427387904) overflows a 64-bit size");
  why.clear();
  EXPECT_FALSE(checked_product({{"x", -1}, {"y", 2}}, &why).has_value());
  EXPECT_THAT(why, ::testing::HasSubstr("x (-1) x y (2)"));
}

TEST(CheckedSize, TensorsWhoseSizeWrapsOrExceedsMemoryAreRefusedBeforeAllocating) {
  EXPECT_THAT(
      [] {
        Tensor(Shape{1, int64_t{1} << 62, 4, 1}, DType::float32);
      },
      ::testing::ThrowsMessage<Error>(::testing::HasSubstr("overflows")));
  // 2^61 floats: no wrap in the count, but 2^63 bytes do wrap.
  EXPECT_THROW(Tensor(Shape{int64_t{1} << 61}, DType::float32), Error);
  // 2^50 floats (4 PiB): representable, but no machine has the memory.
  EXPECT_THAT([] { Tensor(Shape{int64_t{1} << 50}, DType::float32); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("GiB of memory")));
  EXPECT_THROW(Tensor::zeros(Shape{1, 2, 3}).view(Shape{int64_t{1} << 62, 4}), Error);
}

}  // namespace
}  // namespace longnet
