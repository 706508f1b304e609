// The passkey probe's scorer for a LongNet decoder, on one rank or with each prompt split
// across the ranks of a sequence-parallel group (model/training/passkey.hpp).
#pragma once

#include "comm/communicator.hpp"
#include "model/attention_core.hpp"
#include "model/longnet_decoder.hpp"
#include "model/ops/model_ops.hpp"
#include "model/training/passkey.hpp"

namespace longnet {

// The core's global shape fixes the batch: score calls with fewer rows are padded. Every
// rank of `group` (the core's ranks) must call the scorer with the same windows; the
// scores of the answer, held by the last ranks, are summed over `group` so that every
// rank returns them. The references must outlive the scorer.
PasskeyScorer make_decoder_passkey_scorer(LongNetDecoder& model, AttentionCore& core, ModelOps& ops,
                                          Communicator& group);

}  // namespace longnet
