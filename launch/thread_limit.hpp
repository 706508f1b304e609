// How many OpenMP threads a --threads option may ask for.
//
// OpenMP crashes (a segfault inside the runtime) rather than failing when it cannot
// create the threads it was told to use, so the request is bounded up front by what
// the machine allows: OpenMP's own thread limit (OMP_THREAD_LIMIT) and a generous
// oversubscription of the CPUs online.
#pragma once

#include <CLI/CLI.hpp>

namespace longnet {

constexpr int kThreadsPerCpu = 8;  // oversubscription allowed; beyond it is a mistake

// min(omp_get_thread_limit(), kThreadsPerCpu x the CPUs online), at least 1.
int openmp_thread_limit();

// A CLI11 check for --threads: an integer from 1 to openmp_thread_limit(); the message
// names the limit and where it comes from.
CLI::Validator openmp_threads_validator();

}  // namespace longnet
