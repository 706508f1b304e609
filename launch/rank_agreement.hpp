// Ranks that must agree, checked before they act on it.
//
// Under mpirun every rank reads its own copy of the inputs (a file on a shared file
// system, the options on its command line). If one rank reads a different N or other
// patterns, the ranks enter mismatched collectives and spin forever; a different H or
// --out fails late and confusingly. So before the first collective that depends on
// them, the ranks gather a hash of each fact and, where any differ, gather the values
// themselves and fail alike with a message naming the fact, the ranks and the values.
#pragma once

#include <string>
#include <vector>

#include "comm/communicator.hpp"

namespace longnet {

// One thing every rank must see alike, as text ("N" -> "200").
struct RankFact {
  std::string name;
  std::string value;
};

// Returns when every rank of `comm` passed the same values (the same number of facts,
// in the same order); otherwise every rank throws AgreedError (comm/collective_step.hpp)
// with one message, e.g. "ranks disagree on N: rank 0 has 200, rank 1 has 100; every
// rank must read the same <what>". A collective: every rank must call it.
void require_ranks_agree(Communicator& comm, const std::vector<RankFact>& facts,
                         const std::string& what);

}  // namespace longnet
