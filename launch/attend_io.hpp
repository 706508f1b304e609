// The files of `longnet attend` (the contract is in attend_command.hpp): reading and
// checking the input, and writing the output whole or not at all. Shared by the
// single-process path and the MPI path (attend_distributed.cpp).
#pragma once

#include "kernels/dilated_attention_config.hpp"
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

// Refuses an output path whose directory is missing before any work is done; whether
// the directory is writable is learnt when the temporary file is created.
void check_output_path(const std::filesystem::path& output);

// The configuration and the backend's name as root attributes of an output file.
void write_config_attributes(H5File& file, const DilatedAttentionConfig& config,
                             const std::string& backend);

// A file under construction, "<target>.tmp.<tag>" in the target's directory: removed on
// destruction unless commit() renamed it into place, so that a failed run leaves
// neither a partial output nor a stray temporary.
class TemporaryOutput {
 public:
  TemporaryOutput(std::filesystem::path target, long tag);
  TemporaryOutput(const TemporaryOutput&) = delete;
  TemporaryOutput& operator=(const TemporaryOutput&) = delete;
  ~TemporaryOutput();

  const std::filesystem::path& path() const { return path_; }
  // rename(2) within one directory is atomic: readers see the old file or the new one.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path path_;
  bool committed_ = false;
};

}  // namespace longnet
