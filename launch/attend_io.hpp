// The files of `longnet attend` (the contract is in attend_command.hpp): reading and
// checking the input, and writing the output whole or not at all. Shared by the
// single-process path and the MPI path (attend_distributed.cpp).
#pragma once

#include "kernels/attention_tasks.hpp"
#include "kernels/dilated_attention_config.hpp"
#include "launch/rank_agreement.hpp"
#include "runtime/atomic_output_file.hpp"
#include "runtime/hdf5_file.hpp"

#include <filesystem>
#include <string>

namespace longnet {

// The configuration from the root attributes; every Error names the file.
DilatedAttentionConfig read_attend_config(const H5File& file);

// Checks that dataset `name` has rank 4 and, when `like` is given, that shape (q's, for
// k, v and do), before anything is read; returns its shape.
Shape check_attend_dataset(const H5File& file, const std::string& name, const Shape* like);
// Checks q, k, v (and do, when present: *has_dout says) and returns the shape.
AttentionShape read_attend_shape(const H5File& file, bool* has_dout);

// The optional int64 dataset `document_lengths` [B, M] (packed variable-length documents:
// row b lists the lengths of batch element b's documents in order, ending in zeros when it
// has fewer than M); empty when the file has none. Checked against `shape`: errors name
// the file and the row.
DocumentLengths read_document_lengths(const H5File& file, const AttentionShape& shape);

// Refuses, before any work is done, an output that cannot be written or must not be:
// an empty path, a missing directory, a directory, the input itself (the same file
// under another name or through a link too: same device and inode), or a directory
// this process cannot create files in (found by creating and removing a temporary).
void check_output_path(const std::filesystem::path& output, const std::filesystem::path& input);

// Refuses a run whose tensors (q, k, v, o, lse and, with do, do and the three
// gradients, for this rank's `local` shard) cannot fit in this machine's memory, before
// any of them is allocated.
void check_attend_memory(const AttentionShape& local, bool has_dout);

// Refuses a tensor holding NaN or Inf, naming it and the first such element as
// [b, n, h, d] in the whole sequence (`first_token` is the shard's first token).
void check_finite(const Tensor& tensor, const std::string& name, int64_t first_token);

// check_finite on q, k, v and, when defined, dout ("do").
void check_inputs_finite(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                         int64_t first_token);

// What every rank of an MPI run must see alike (launch/rank_agreement.hpp): the shape,
// the configuration, whether do was given, and the output path.
std::vector<RankFact> attend_facts(const std::filesystem::path& output,
                                   const DilatedAttentionConfig& config,
                                   const AttentionShape& shape, bool has_dout);

// The configuration and the backend's name as root attributes of an output file.
void write_config_attributes(H5File& file, const DilatedAttentionConfig& config,
                             const std::string& backend);

// The output under construction: see runtime/atomic_output_file.hpp.
using TemporaryOutput = AtomicOutputFile;

}  // namespace longnet
