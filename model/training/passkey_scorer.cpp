#include "model/training/passkey_scorer.hpp"

#include <algorithm>
#include <vector>

#include "runtime/error.hpp"

namespace longnet {

PasskeyScorer make_decoder_passkey_scorer(LongNetDecoder& model, AttentionCore& core, ModelOps& ops,
                                          Communicator& group) {
  return
      [&model, &core, &ops, &group](std::span<const int32_t> windows, int64_t rows, int64_t answer,
                                    std::span<double> loss, std::span<int32_t> predicted) {
        const AttentionShape& local = core.local_shape();
        const int64_t batch = local.batch, first = core.first_token(), count = local.tokens;
        const auto n = static_cast<int64_t>(windows.size()) / std::max<int64_t>(rows, 1) - 1;
        LONGNET_CHECK(rows >= 1 && rows <= batch && answer >= 1 && answer <= n,
                      "passkey scorer: {} rows of {} tokens (answer {}) for a model batch of {}",
                      rows, n, answer, batch);
        std::vector<int32_t> tokens(static_cast<std::size_t>(batch * count));
        std::vector<int32_t> targets(tokens.size());
        for (int64_t b = 0; b < batch; ++b) {
          const int64_t row = std::min(b, rows - 1);  // padding repeats the last row
          for (int64_t t = 0; t < count; ++t) {
            const auto at = static_cast<std::size_t>(row * (n + 1) + first + t);
            tokens[static_cast<std::size_t>(b * count + t)] = windows[at];
            targets[static_cast<std::size_t>(b * count + t)] = windows[at + 1];
          }
        }
        std::vector<double> per_token(tokens.size());
        std::vector<int32_t> argmax(tokens.size());
        DecoderActivations saved;
        model.forward(tokens, targets, core, ops, saved, per_token, {}, argmax);

        // Losses and predictions of the answer's targets (global n - answer .. n - 1) that
        // this rank holds, summed over the group: exactly one rank holds each.
        std::vector<double> scores(static_cast<std::size_t>(2 * rows * answer), 0.0);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t i = 0; i < answer; ++i) {
            const int64_t t = n - answer + i - first;
            if (t < 0 || t >= count) continue;
            const auto at = static_cast<std::size_t>(r * count + t);
            scores[static_cast<std::size_t>(r * answer + i)] = per_token[at];
            scores[static_cast<std::size_t>((rows + r) * answer + i)] = argmax[at];
          }
        }
        group.all_reduce_in_place<double>(scores, ReduceOp::sum, "passkey scores");
        for (int64_t j = 0; j < rows * answer; ++j) {
          loss[static_cast<std::size_t>(j)] = scores[static_cast<std::size_t>(j)];
          predicted[static_cast<std::size_t>(j)] =
              static_cast<int32_t>(scores[static_cast<std::size_t>(rows * answer + j)]);
        }
      };
}

}  // namespace longnet
