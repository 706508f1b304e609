// HDF5 files: tensors as datasets, configuration as attributes.
//
// A thin RAII layer over the HDF5 C API. Every identifier the library opens is closed
// by a destructor, and every failed call becomes a longnet::Error that names the file,
// the dataset or attribute, and HDF5's own description of the failure (HDF5's habit of
// printing its error stack to stderr is switched off: one failure path, one message).
//
// What is read is checked, not converted: read_tensor_f32 refuses a float64 dataset
// rather than rounding it, because a silently narrowed input is a wrong answer that
// looks right. Integer attributes of any width are accepted (h5py writes int64, other
// tools int32; a Python bool arrives as an enum); strings may be variable-length (what
// h5py writes) or fixed-length.
//
// Dataset names may be paths ("expected/o"); attributes live on the root group.
// This header does not include hdf5.h, so users of the class need not see the C API.
#pragma once

#include "runtime/tensor.hpp"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace longnet {

// A row-major matrix of int64 values.
struct Int64Matrix {
  int64_t rows = 0, columns = 0;
  std::vector<int64_t> values;  // rows * columns
};

class H5File {
 public:
  // Opens an existing file read-only. Errors say whether the file is missing, a
  // directory, unreadable, or not an HDF5 file.
  static H5File open_read(const std::filesystem::path& path);
  // Creates `path`, truncating any file already there.
  static H5File create(const std::filesystem::path& path);
  // Opens an existing HDF5 file for writing (e.g. one rank's slice of a dataset).
  static H5File open_read_write(const std::filesystem::path& path);
  // Creates `path` (truncating) with a user block of `user_block_bytes` (a power of two,
  // at least 512) before HDF5's superblock: bytes HDF5 leaves to the application, for a
  // header that can be checked without parsing HDF5. HDF5, h5py and h5dump skip it.
  static H5File create_with_user_block(const std::filesystem::path& path,
                                       std::size_t user_block_bytes);
  // The size of the file's user block (0 when it has none).
  std::size_t user_block_bytes() const;

  H5File(H5File&& other) noexcept;
  H5File& operator=(H5File&& other) noexcept;
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  // Closes without reporting errors (a destructor cannot throw); call close() after
  // writing so that a failed final flush is seen.
  ~H5File();

  // Flushes and closes, throwing on failure. The object is empty afterwards.
  void close();
  const std::filesystem::path& path() const { return path_; }

  // ---- datasets ----
  bool has_dataset(const std::string& name) const;
  Shape dataset_shape(const std::string& name) const;
  // The whole dataset, which must hold 32-bit floats.
  Tensor read_tensor_f32(const std::string& name) const;
  // Elements [begin, end) along `axis` and everything along the other axes, read with
  // an HDF5 hyperslab (only the slice is read from disk): the shard of one rank.
  Tensor read_tensor_f32_slice(const std::string& name, std::size_t axis, int64_t begin,
                               int64_t end) const;
  // Writes a float32 or float64 tensor as a contiguous dataset, replacing any dataset
  // of that name and creating missing groups on the path.
  void write_tensor(const std::string& name, const Tensor& tensor);
  // Creates (or replaces) an uninitialised float32 dataset of `shape`, for writing in
  // slices.
  void create_dataset_f32(const std::string& name, const Shape& shape);
  // Writes `tensor` as elements [begin, begin + tensor.dim(axis)) along `axis` of an
  // existing float32 dataset whose other extents match: the shard of one rank.
  void write_tensor_f32_slice(const std::string& name, std::size_t axis, int64_t begin,
                              const Tensor& tensor);

  // ---- root attributes ----
  bool has_attribute(const std::string& name) const;
  // Any integer type (or enum, which is how h5py stores a bool), scalar or 1-D.
  std::vector<int64_t> read_attr_int64_array(const std::string& name) const;
  // Any integer type (or enum), one element.
  int64_t read_attr_int64(const std::string& name) const;
  // Any floating-point or integer type, one element.
  double read_attr_double(const std::string& name) const;
  // A variable- or fixed-length string, one element.
  std::string read_attr_string(const std::string& name) const;

  // Writers replace an attribute of the same name. Integers are stored as int64, reals
  // as float64, strings as variable-length UTF-8 (exactly what h5py writes for a str).
  void write_attr_int64_array(const std::string& name, std::span<const int64_t> values);
  void write_attr_int64(const std::string& name, int64_t value);
  void write_attr_double(const std::string& name, double value);
  void write_attr_string(const std::string& name, std::string_view value);

  // ---- groups ----
  // Whether `name` ("params", "a/b") exists and is a group.
  bool has_group(const std::string& name) const;
  // Creates group `name` (and missing parents), recording the order in which links are
  // created in it (h5py's track_order=True), so list_group returns them in that order.
  void create_group(const std::string& name);
  // The names of the links directly in group `name`: in creation order when the group
  // records it (create_group's groups), else in name order (HDF5's default).
  std::vector<std::string> list_group(const std::string& name) const;

  // ---- integer datasets (1-D) ----
  // Written as little-endian uint8 / uint64 (numpy's uint8 / uint64); read back only
  // from exactly that type, for the same reason read_tensor_f32 refuses float64: token
  // bytes read from an int32 dataset would mean the producer wrote something else.
  void write_dataset_u8(const std::string& name, std::span<const uint8_t> values);
  std::vector<uint8_t> read_dataset_u8(const std::string& name) const;
  void write_dataset_u64(const std::string& name, std::span<const uint64_t> values);
  std::vector<uint64_t> read_dataset_u64(const std::string& name) const;

  // ---- int64 matrices (2-D) ----
  // Written as little-endian int64; read back only from a signed 64-bit integer dataset
  // (numpy's int64, h5py's default for Python ints), of rank 2.
  void write_matrix_i64(const std::string& name, const Int64Matrix& matrix);
  Int64Matrix read_matrix_i64(const std::string& name) const;

  // ---- unsigned attributes ----
  // Stored as uint64; read from any unsigned integer type, or a signed one holding a
  // non-negative value (h5py writes Python ints as int64).
  void write_attr_uint64(const std::string& name, uint64_t value);
  uint64_t read_attr_uint64(const std::string& name) const;

  // ---- typed forms of the above ----
  // read_attr<T> / write_attr<T>: T is int64_t, uint64_t, double, std::string or
  // std::vector<int64_t>, stored and checked as the named functions do. read_dataset<T> /
  // write_dataset<T>: T is uint8_t or uint64_t (1-D), or Tensor (read as float32).
  template <typename T>
  T read_attr(const std::string& name) const;
  template <typename T>
  void write_attr(const std::string& name, const T& value);
  template <typename T>
  auto read_dataset(const std::string& name) const;
  template <typename T>
  void write_dataset(const std::string& name, std::span<const T> values);

 private:
  H5File(int64_t id, std::filesystem::path path) : id_(id), path_(std::move(path)) {}

  int64_t id_ = -1;  // the hid_t of the open file; -1 when closed
  std::filesystem::path path_;
};

template <typename T>
inline constexpr bool kNotAnHdf5Type = false;

template <typename T>
T H5File::read_attr(const std::string& name) const {
  if constexpr (std::is_same_v<T, int64_t>)
    return read_attr_int64(name);
  else if constexpr (std::is_same_v<T, uint64_t>)
    return read_attr_uint64(name);
  else if constexpr (std::is_same_v<T, double>)
    return read_attr_double(name);
  else if constexpr (std::is_same_v<T, std::string>)
    return read_attr_string(name);
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
    return read_attr_int64_array(name);
  else
    static_assert(kNotAnHdf5Type<T>,
                  "read_attr: int64_t, uint64_t, double, std::string or "
                  "std::vector<int64_t>");
}

template <typename T>
void H5File::write_attr(const std::string& name, const T& value) {
  if constexpr (std::is_same_v<T, int64_t>)
    write_attr_int64(name, value);
  else if constexpr (std::is_same_v<T, uint64_t>)
    write_attr_uint64(name, value);
  else if constexpr (std::is_same_v<T, double>)
    write_attr_double(name, value);
  else if constexpr (std::is_convertible_v<T, std::string_view>)
    write_attr_string(name, value);
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
    write_attr_int64_array(name, value);
  else
    static_assert(kNotAnHdf5Type<T>,
                  "write_attr: int64_t, uint64_t, double, a string or "
                  "std::vector<int64_t>");
}

template <typename T>
auto H5File::read_dataset(const std::string& name) const {
  if constexpr (std::is_same_v<T, uint8_t>)
    return read_dataset_u8(name);
  else if constexpr (std::is_same_v<T, uint64_t>)
    return read_dataset_u64(name);
  else if constexpr (std::is_same_v<T, Tensor>)
    return read_tensor_f32(name);
  else
    static_assert(kNotAnHdf5Type<T>, "read_dataset: uint8_t, uint64_t or Tensor");
}

template <typename T>
void H5File::write_dataset(const std::string& name, std::span<const T> values) {
  if constexpr (std::is_same_v<T, uint8_t>)
    write_dataset_u8(name, values);
  else if constexpr (std::is_same_v<T, uint64_t>)
    write_dataset_u64(name, values);
  else
    static_assert(kNotAnHdf5Type<T>, "write_dataset: uint8_t or uint64_t");
}

}  // namespace longnet
