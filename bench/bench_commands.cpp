#include "bench/bench_commands.hpp"
#include "longnet/config.hpp"

namespace longnet::bench {

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand(
      "bench", "Benchmarks: each prints a '#'-headed table and writes CSV/JSON (bench/README.md)");
  bench->require_subcommand(1);
  add_attention_bench(*bench);
#ifdef LONGNET_HAVE_MPI
  add_comm_bench(*bench);
  add_sp_attention_bench(*bench);
  add_scaling_bench(*bench);
#endif
  add_model_bench(*bench);
  add_train_bench(*bench);
}

}  // namespace longnet::bench
