// Training checkpoints: one self-describing HDF5 file per saved step, written atomically.
//
// Layout of DIR/ckpt_<step, 8 digits>.h5 (readable with h5py and h5dump):
//   root attributes  format = "longnet-checkpoint", version = 1, step, data_parallel,
//                    sequence_parallel, data_position, config (the TOML text)
//   /params/<name>   one float32 dataset per parameter, e.g. /params/layers.0.attn.wq
//   /adam_m/<name>   AdamW first moments, same names and shapes as /params
//   /adam_v/<name>   AdamW second moments
//   /rng             uint64 [n]: the random generator state
// Parameter names contain '.', which HDF5 allows in link names; they are kept as they
// are. The groups record creation order, so tensors read back in the order written.
//
// Before HDF5's superblock, in the file's 512-byte HDF5 user block (which HDF5, h5py and
// h5dump skip), a header: "longnet-ckpt-v1\n", the file size and a 64-bit checksum of
// the whole file. read_checkpoint checks it with plain reads before HDF5 parses
// anything. Why: HDF5 checks neither the bytes of a dataset (a flipped bit in a weight
// would load silently) nor, robustly, its own metadata: a damaged file can crash or hang
// the library. With the header, a truncated or damaged file is an error naming the file.
// A checkpoint edited on purpose (with h5py) must be resealed (reseal_checkpoint).
//
// Atomicity: the file is written under a temporary name in DIR (".tmp_ckpt_<step>.<six
// random characters>", created by mkstemp: never an existing file or a planted link),
// flushed, closed and fsync'ed, then renamed to its final name and the directory
// fsync'ed. A job killed at any moment leaves either the previous checkpoints and a
// stray temporary, or the new checkpoint complete; latest_checkpoint() never returns a
// temporary. The trap: a rename without the fsync before it can, after a power loss,
// leave a complete-looking name over an empty file. A temporary left by a killed writer
// is never read; the next successful write of that step or a later one deletes it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace longnet {

// The names inside a checkpoint file (the layout above), spelled once for the writer,
// the reader and the trainer's resume. They are part of the file format: checkpoints
// already written are found by these exact strings, so they never change.
namespace checkpoint_layout {
// Groups of float32 datasets, one per parameter, named as the parameter.
inline constexpr char kParams[] = "params";
inline constexpr char kAdamM[] = "adam_m";
inline constexpr char kAdamV[] = "adam_v";
// The uint64 dataset of the random generator state.
inline constexpr char kRng[] = "rng";
// Root attributes.
inline constexpr char kFormat[] = "format";
inline constexpr char kVersion[] = "version";
inline constexpr char kStep[] = "step";
inline constexpr char kDataParallel[] = "data_parallel";
inline constexpr char kSequenceParallel[] = "sequence_parallel";
inline constexpr char kDataPosition[] = "data_position";
inline constexpr char kConfig[] = "config";
}  // namespace checkpoint_layout

struct NamedTensor {
  std::string name;  // e.g. "layers.0.attn.wq"
  Tensor tensor;     // float32, host
};

struct CheckpointState {
  std::string config_toml;  // the TrainConfig, as to_toml() wrote it
  int64_t step = 0;         // optimizer steps completed
  int64_t data_parallel = 1, sequence_parallel = 1;
  std::vector<NamedTensor> params, adam_m, adam_v;
  std::vector<uint64_t> rng_state;
  uint64_t data_position = 0;  // where the data stream resumes (the step, for TokenDataset)
};

// "ckpt_00000300.h5": the file name of the checkpoint of `step`.
std::string checkpoint_file_name(int64_t step);

// Writes DIR/ckpt_<step, 8 digits>.h5 atomically: a temporary name in DIR, everything
// written, H5Fflush + close, fsync, rename, fsync(DIR); then deletes the oldest complete
// checkpoints beyond keep_last (keep_last >= 1). Creates DIR if needed. Returns the path.
std::filesystem::path write_checkpoint(const std::filesystem::path& dir,
                                       const CheckpointState& state, int keep_last);

// Throws longnet::Error naming the first NaN or infinity in the parameters or moments.
// The trainer calls it before write_checkpoint: a checkpoint of a diverged run would be
// resumed from and would push the last good one out of keep_last, so none is written,
// and pruning never deletes the newest finite checkpoint. (write_checkpoint itself stores
// any values bit for bit.)
void check_checkpoint_finite(const CheckpointState& state);

// The newest complete checkpoint in dir (by step; temporaries ignored), or nullopt when
// there is none or dir does not exist.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir);

// Reads and validates a checkpoint: format name and version, every group and dataset
// present, moments shaped like their parameters. Errors name the file and what is wrong
// (not a readable HDF5 file, a dataset missing, a shape wrong); never a crash.
CheckpointState read_checkpoint(const std::filesystem::path& file);

// Rewrites the header of a checkpoint edited with other tools (h5py r+), so that it
// loads again: the deliberate way to accept an edited file. It must open as HDF5.
void reseal_checkpoint(const std::filesystem::path& file);

// Checks that a loaded state matches the model: the same parameter names, in the same
// order, with the same shapes. The message names the first mismatch.
void check_checkpoint_matches(const CheckpointState& state,
                              const std::vector<NamedTensor>& model_params);

}  // namespace longnet
