// The factories: make_dilated_attention gives the backend for a device and dtype, or an
// Error naming what is missing; make_communicator("self") is a size-1 communicator whose
// collectives are the copies they amount to with one rank, through the same front end.
#include "comm/communicator_factory.hpp"
#include "comm/self_communicator.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "longnet/config.hpp"
#include "runtime/error.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace longnet {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(MakeDilatedAttention, GivesTheCpuBackendOfTheAskedInstructionSet) {
  const auto op = make_dilated_attention(Device::cpu, DType::float32, CpuIsa::generic);
  EXPECT_EQ(op->name(), "cpu-generic");
  EXPECT_EQ(op->device(), Device::cpu);
  EXPECT_EQ(make_dilated_attention(Device::cpu, DType::float32)->name(),
            "cpu-" + std::string(cpu_isa_name(default_cpu_isa())));
}

TEST(MakeDilatedAttention, RefusesHalfPrecisionOnTheCpuWithTheReason) {
  EXPECT_THAT([] { make_dilated_attention(Device::cpu, DType::bfloat16); },
              ThrowsMessage<Error>(AllOf(HasSubstr("cannot take bfloat16 inputs"),
                                         HasSubstr("take float32 inputs"))));
}

TEST(MakeDilatedAttention, GivesTheCudaBackendOnlyWhereTheBuildHasIt) {
#ifdef LONGNET_HAVE_CUDA_KERNELS
  // No CUDA call happens before the first forward: this runs without a GPU.
  const auto op = make_dilated_attention(Device::cuda, DType::bfloat16);
  EXPECT_EQ(op->device(), Device::cuda);
  EXPECT_THAT(op->name(), HasSubstr("cuda"));
  const DilatedAttentionConfig config =
      DilatedAttentionConfig::from_lists({16}, {1}, false, HeadOffsets::interleaved);
  EXPECT_EQ(op->supports(config, {1, 16, 2, 64}, DType::float16), std::nullopt);
  const auto reason = op->supports(config, {1, 16, 2, 48}, DType::float16);
  ASSERT_TRUE(reason.has_value());
  EXPECT_THAT(*reason, AllOf(HasSubstr("head dim 48"), HasSubstr("32, 64, 128")));
  EXPECT_THAT([] { make_dilated_attention(Device::cuda, DType::float64); },
              ThrowsMessage<Error>(HasSubstr("bfloat16, float16 or float32")));
#else
  EXPECT_THAT([] { make_dilated_attention(Device::cuda, DType::bfloat16); },
              ThrowsMessage<Error>(HasSubstr("this build has no CUDA kernels")));
#endif
}

TEST(MakeCommunicator, RefusesAnUnknownBackendListingTheKnownOnes) {
  EXPECT_THAT([] { make_communicator("gloo"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("'gloo'"), HasSubstr("mpi, nccl or self"))));
}

TEST(SelfCommunicator, IsOneRankInHostMemory) {
  const auto self = make_communicator("self", "alone");
  EXPECT_EQ(self->rank(), 0);
  EXPECT_EQ(self->size(), 1);
  EXPECT_EQ(self->name(), "alone");
  EXPECT_EQ(self->backend(), "self");
  EXPECT_EQ(self->memory_space(), MemorySpace::host);
}

TEST(SelfCommunicator, CollectivesAreCopiesOfTheOneRanksData) {
  SelfCommunicator self;
  const std::vector<float> mine{1.5f, -2.25f, 3.0f};
  std::vector<float> out(3, 0.0f);
  self.all_gather<float>(mine, out);
  EXPECT_EQ(out, mine);
  std::fill(out.begin(), out.end(), 0.0f);
  self.all_reduce<float>(mine, out, ReduceOp::sum);
  EXPECT_EQ(out, mine);
  std::fill(out.begin(), out.end(), 0.0f);
  self.reduce_scatter<float>(mine, out, ReduceOp::max);
  EXPECT_EQ(out, mine);
  const std::vector<std::int64_t> counts{3};
  std::fill(out.begin(), out.end(), 0.0f);
  self.all_gatherv<float>(mine, out, counts);
  EXPECT_EQ(out, mine);
  std::fill(out.begin(), out.end(), 0.0f);
  self.reduce_scatterv<float>(mine, out, counts, ReduceOp::sum);
  EXPECT_EQ(out, mine);
  std::vector<double> in_place{4.0, 5.0};
  self.all_reduce_in_place<double>(in_place, ReduceOp::min);
  self.broadcast<double>(in_place, 0);
  EXPECT_EQ(in_place, (std::vector<double>{4.0, 5.0}));
  self.barrier();
  // The front end's checks and counters hold as for any communicator.
  EXPECT_THAT([&] { self.broadcast<double>(in_place, 1); },
              ThrowsMessage<Error>(HasSubstr("root 1 is not a rank")));
  EXPECT_EQ(self.counters().total(CollectiveKind::all_gather).calls, 2);
  EXPECT_NE(self.split(0, 0, "half"), nullptr);
  EXPECT_EQ(self.split(SelfCommunicator::kNoColor, 0, "none"), nullptr);
}

}  // namespace
}  // namespace longnet
