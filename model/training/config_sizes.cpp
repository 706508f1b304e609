#include "model/training/config_sizes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "runtime/checked_size.hpp"
#include "runtime/error.hpp"

namespace longnet {

// The sizes a run allocates from, checked before anything is allocated: a product that
// wraps around would pass every later check and fail (or run for hours) deep inside.
void check_config_sizes(const TrainConfig& c) {
  const DataSection& d = c.data;
  const ModelSection& m = c.model;
  const auto window =
      checked_product({{"data.batch_size", d.batch_size}, {"data.seq_len + 1", d.seq_len + 1}});
  LONGNET_CHECK(window && *window <= kMaxWindowTokens,
                "data.seq_len = {} with data.batch_size = {} makes a batch window of {} tokens; "
                "the limit is {} (2^36): lower data.seq_len or data.batch_size",
                d.seq_len, d.batch_size,
                window ? fmt::format("{}", *window) : std::string("more than 2^63"),
                kMaxWindowTokens);
  // The widest activation of one rank: [batch, seq_len / sp, max(dim, ffn, vocab)] floats.
  const int64_t local = (d.seq_len + c.parallel.sp - 1) / c.parallel.sp;
  const int64_t width = std::max({m.dim, m.ffn_dim, m.vocab_size});
  std::string why;
  const auto bytes = checked_product({{"data.batch_size", d.batch_size},
                                      {"data.seq_len / parallel.sp", local},
                                      {"max(model.dim, ffn_dim, vocab_size)", width},
                                      {"bytes per float", 4}},
                                     &why);
  LONGNET_CHECK(bytes.has_value(), "{}: lower data.seq_len, data.batch_size or the model width",
                why);
}

}  // namespace longnet
