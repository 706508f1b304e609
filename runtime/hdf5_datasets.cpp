// H5File's datasets: tensors whole or in slices, and 1-D unsigned integer arrays.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "runtime/checked_size.hpp"
#include "runtime/hdf5_file.hpp"
#include "runtime/hdf5_internal.hpp"

namespace longnet {

using namespace hdf5_internal;

// ---- datasets -----------------------------------------------------------------------

bool H5File::has_dataset(const std::string& name) const { return dataset_exists(id_, path_, name); }

Shape H5File::dataset_shape(const std::string& name) const {
  const std::string where = where_dataset(path_, name);
  const Handle dataset = open_dataset(id_, path_, name);
  const Handle space(LONGNET_HDF5(H5Dget_space(dataset.get()), where), H5Sclose);
  return extent_of(space.get(), where);
}

Tensor H5File::read_tensor_f32(const std::string& name) const {
  const std::string where = where_dataset(path_, name);
  const Handle dataset = open_dataset(id_, path_, name);
  require_float32(dataset.get(), where);
  const Handle space(LONGNET_HDF5(H5Dget_space(dataset.get()), where), H5Sclose);
  const Shape shape = extent_of(space.get(), where);
  require_fully_stored(dataset.get(), shape_numel(shape), sizeof(float), where);
  Tensor tensor(shape, DType::float32);
  if (tensor.numel() > 0) {
    LONGNET_HDF5(
        H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tensor.raw()),
        where);
  }
  return tensor;
}

Tensor H5File::read_tensor_f32_slice(const std::string& name, std::size_t axis, int64_t begin,
                                     int64_t end) const {
  const std::string where = where_dataset(path_, name);
  const Handle dataset = open_dataset(id_, path_, name);
  require_float32(dataset.get(), where);
  const Handle file_space(LONGNET_HDF5(H5Dget_space(dataset.get()), where), H5Sclose);
  const Shape full = extent_of(file_space.get(), where);
  require_fully_stored(dataset.get(), shape_numel(full), sizeof(float), where);
  LONGNET_CHECK(axis < full.size(), "{} has rank {}, so it has no axis {} to slice", where,
                full.size(), axis);
  LONGNET_CHECK(0 <= begin && begin <= end && end <= full[axis],
                "{}: slice [{}, {}) of axis {} lies outside its extent {} (shape {})", where, begin,
                end, axis, full[axis], shape_string(full));

  Shape slice = full;
  slice[axis] = end - begin;
  Tensor tensor(slice, DType::float32);
  if (tensor.numel() == 0) return tensor;
  const Handle memory_space = select_slice(file_space.get(), axis, begin, slice, where);
  LONGNET_HDF5(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(),
                       H5P_DEFAULT, tensor.raw()),
               where);
  return tensor;
}

namespace {

// Creates dataset `name` (replacing one of that name, creating missing groups).
Handle create_dataset(hid_t file, const std::filesystem::path& path, const std::string& name,
                      hid_t file_type, const Shape& shape) {
  const std::string where = where_dataset(path, name);
  if (dataset_exists(file, path, name)) {
    LONGNET_HDF5(H5Ldelete(file, name.c_str(), H5P_DEFAULT), where);
  }
  const Handle space = make_dataspace(shape, where);
  const Handle link_props = link_props_creating_parents(where);
  return Handle(LONGNET_HDF5(H5Dcreate2(file, name.c_str(), file_type, space.get(),
                                        link_props.get(), H5P_DEFAULT, H5P_DEFAULT),
                             where),
                H5Dclose);
}

// Creates dataset `name` as create_dataset does and writes all of it: `shape` elements of
// `file_type`, converted by HDF5 from `data`, elements of `memory_type`.
void write_whole_dataset(hid_t file, const std::filesystem::path& path, const std::string& name,
                         hid_t file_type, hid_t memory_type, const Shape& shape, const void* data) {
  const Handle dataset = create_dataset(file, path, name, file_type, shape);
  if (shape_numel(shape) > 0) {
    LONGNET_HDF5(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                 where_dataset(path, name));
  }
}

}  // namespace

void H5File::write_tensor(const std::string& name, const Tensor& tensor) {
  LONGNET_CHECK(tensor.defined(), "{}: cannot write an empty (never allocated) tensor",
                where_dataset(path_, name));
  const bool is_f32 = tensor.dtype() == DType::float32;
  write_whole_dataset(id_, path_, name, is_f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE,
                      is_f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, tensor.shape(), tensor.raw());
}

void H5File::create_dataset_f32(const std::string& name, const Shape& shape) {
  create_dataset(id_, path_, name, H5T_IEEE_F32LE, shape);
}

void H5File::write_tensor_f32_slice(const std::string& name, std::size_t axis, int64_t begin,
                                    const Tensor& tensor) {
  const std::string where = where_dataset(path_, name);
  LONGNET_CHECK(tensor.defined() && tensor.dtype() == DType::float32,
                "{}: a slice to write must be a float32 tensor", where);
  const Handle dataset = open_dataset(id_, path_, name);
  require_float32(dataset.get(), where);
  const Handle file_space(LONGNET_HDF5(H5Dget_space(dataset.get()), where), H5Sclose);
  const Shape full = extent_of(file_space.get(), where);
  Shape expected = full;
  LONGNET_CHECK(axis < full.size() && tensor.rank() == full.size(),
                "{}: cannot write a slice of shape {} along axis {} of shape {}", where,
                shape_string(tensor.shape()), axis, shape_string(full));
  expected[axis] = tensor.dim(axis);
  LONGNET_CHECK(tensor.shape() == expected && begin >= 0 && begin + tensor.dim(axis) <= full[axis],
                "{}: slice of shape {} at {} along axis {} does not fit shape {}", where,
                shape_string(tensor.shape()), begin, axis, shape_string(full));
  if (tensor.numel() == 0) return;
  const Handle memory_space = select_slice(file_space.get(), axis, begin, expected, where);
  LONGNET_HDF5(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(),
                        H5P_DEFAULT, tensor.raw()),
               where);
}

// ---- integer datasets -----------------------------------------------------------------

namespace {

// Reads a 1-D dataset that must hold unsigned integers of exactly `bytes` bytes.
template <typename T>
std::vector<T> read_unsigned_dataset(hid_t file, const std::filesystem::path& path,
                                     const std::string& name, hid_t memory_type) {
  const std::string where = where_dataset(path, name);
  const Handle dataset = open_dataset(file, path, name);
  const Handle type(LONGNET_HDF5(H5Dget_type(dataset.get()), where), H5Tclose);
  const bool matches = H5Tget_class(type.get()) == H5T_INTEGER &&
                       H5Tget_sign(type.get()) == H5T_SGN_NONE &&
                       H5Tget_size(type.get()) == sizeof(T);
  LONGNET_CHECK(matches, "{} holds {}, expected uint{}", where, type_name(type.get()),
                8 * sizeof(T));
  const Handle space(LONGNET_HDF5(H5Dget_space(dataset.get()), where), H5Sclose);
  const Shape shape = extent_of(space.get(), where);
  LONGNET_CHECK(shape.size() == 1, "{} has shape {}, expected a 1-D array", where,
                shape_string(shape));
  require_fully_stored(dataset.get(), shape[0], sizeof(T), where);
  check_host_allocatable(checked_byte_count(shape[0], sizeof(T), where), where);
  std::vector<T> values(static_cast<std::size_t>(shape[0]));
  if (!values.empty()) {
    LONGNET_HDF5(H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
                 where);
  }
  return values;
}

}  // namespace

void H5File::write_dataset_u8(const std::string& name, std::span<const uint8_t> values) {
  write_whole_dataset(id_, path_, name, H5T_STD_U8LE, H5T_NATIVE_UINT8,
                      {static_cast<int64_t>(values.size())}, values.data());
}

std::vector<uint8_t> H5File::read_dataset_u8(const std::string& name) const {
  return read_unsigned_dataset<uint8_t>(id_, path_, name, H5T_NATIVE_UINT8);
}

void H5File::write_dataset_u64(const std::string& name, std::span<const uint64_t> values) {
  write_whole_dataset(id_, path_, name, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                      {static_cast<int64_t>(values.size())}, values.data());
}

std::vector<uint64_t> H5File::read_dataset_u64(const std::string& name) const {
  return read_unsigned_dataset<uint64_t>(id_, path_, name, H5T_NATIVE_UINT64);
}

// ---- int64 matrices -------------------------------------------------------------------

void H5File::write_matrix_i64(const std::string& name, const Int64Matrix& matrix) {
  LONGNET_CHECK(static_cast<int64_t>(matrix.values.size()) == matrix.rows * matrix.columns,
                "{}: {} values for a {} x {} matrix", where_dataset(path_, name),
                matrix.values.size(), matrix.rows, matrix.columns);
  write_whole_dataset(id_, path_, name, H5T_STD_I64LE, H5T_NATIVE_INT64,
                      {matrix.rows, matrix.columns}, matrix.values.data());
}

Int64Matrix H5File::read_matrix_i64(const std::string& name) const {
  const std::string where = where_dataset(path_, name);
  const Handle dataset = open_dataset(id_, path_, name);
  const Handle type(LONGNET_HDF5(H5Dget_type(dataset.get()), where), H5Tclose);
  const bool matches = H5Tget_class(type.get()) == H5T_INTEGER &&
                       H5Tget_sign(type.get()) == H5T_SGN_2 && H5Tget_size(type.get()) == 8;
  LONGNET_CHECK(matches, "{} holds {}, expected int64 (numpy.int64)", where, type_name(type.get()));
  const Handle space(LONGNET_HDF5(H5Dget_space(dataset.get()), where), H5Sclose);
  const Shape shape = extent_of(space.get(), where);
  LONGNET_CHECK(shape.size() == 2, "{} has shape {}, expected a 2-D array", where,
                shape_string(shape));
  const int64_t elements = checked_element_count(shape, where.c_str());
  require_fully_stored(dataset.get(), elements, 8, where);
  check_host_allocatable(checked_byte_count(elements, 8, where), where);
  Int64Matrix matrix{shape[0], shape[1], std::vector<int64_t>(static_cast<std::size_t>(elements))};
  if (elements > 0) {
    LONGNET_HDF5(H5Dread(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                         matrix.values.data()),
                 where);
  }
  return matrix;
}

}  // namespace longnet
