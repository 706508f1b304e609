// `--stats`: what each rank moved, per pattern, and where its time went.
#pragma once

#include "comm/communicator.hpp"
#include "model/sequence_parallel_attention.hpp"

#include <iosfwd>

namespace longnet {

// Collective: gathers every rank's counters to rank 0, which prints a '#'-headed
// fixed-width table (one row per rank and pattern, bytes under the convention of
// comm/comm_counters.hpp) and each rank's compute and communication seconds.
void print_traffic(Communicator& world, const SequenceParallelAttention& sp, std::ostream& out);

}  // namespace longnet
