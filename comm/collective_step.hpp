// Steps every rank takes together, failing together.
//
// A step that can fail on some ranks only (reading a file, writing one's slice) must
// not leave the others waiting in the next collective. run_collectively runs the step
// on every rank, then all ranks agree whether it failed anywhere: if so, every rank
// throws AgreedError carrying the message of the lowest failing rank, so the job ends
// at once with the real cause, printed once (by rank 0), and no MPI_Abort is needed.
#pragma once

#include "comm/communicator.hpp"
#include "runtime/error.hpp"

#include <functional>

namespace longnet {

// An error every rank of a communicator throws alike: print it once.
class AgreedError : public Error {
 public:
  using Error::Error;
};

void run_collectively(Communicator& comm, const std::function<void()>& step);

}  // namespace longnet
