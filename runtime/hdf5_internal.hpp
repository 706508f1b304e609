// The HDF5 C API as the H5File sources use it (not part of the runtime's interface:
// only runtime/hdf5_*.cpp include this): the failure path and its check macro, RAII
// handles, path walking, dataspaces and the attribute reader.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/tensor.hpp"

namespace longnet::hdf5_internal {

// Throws Error through the one library failure path (runtime/library_check.hpp):
// `context`, the statement, file:line, HDF5's innermost message, rank and host.
[[noreturn]] void throw_hdf5_error(const std::string& context, const char* statement,
                                   const char* file, int line);

}  // namespace longnet::hdf5_internal

// LONGNET_HDF5(call, context): evaluates an HDF5 call and yields its result; every HDF5
// call signals failure with a negative value, which becomes a longnet::Error holding
// `context` (what we were doing, built only on failure), the statement, file:line,
// HDF5's message, rank and host.
#define LONGNET_HDF5(call, context)                                                     \
  [&] {                                                                                 \
    const auto hdf5_result_ = (call);                                                   \
    if (hdf5_result_ < 0)                                                               \
      ::longnet::hdf5_internal::throw_hdf5_error((context), #call, __FILE__, __LINE__); \
    return hdf5_result_;                                                                \
  }()

namespace longnet::hdf5_internal {

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Handle& operator=(Handle&&) = delete;
  ~Handle() {
    if (id_ >= 0) closer_(id_);
  }
  hid_t get() const { return id_; }

 private:
  hid_t id_;
  Closer closer_;
};

// HDF5 prints its whole error stack to stderr by default and closes files at exit;
// see the definition for why both are switched off. Every entry point calls it.
void silence_hdf5_error_printing();

std::string where_dataset(const std::filesystem::path& path, const std::string& name);
std::string where_attribute(const std::filesystem::path& path, const std::string& name);
std::string where_group(const std::filesystem::path& path, const std::string& name);
// "float64", "int32", "string", ... for messages.
std::string type_name(hid_t type);
// The dataspace's extents, refused when one exceeds int64_t or their product overflows.
Shape extent_of(hid_t space, const std::string& where);
Handle make_dataspace(const Shape& shape, const std::string& where);
std::vector<std::string> link_names(hid_t group, H5_index_t index, const std::string& where);
std::string root_listing(hid_t file);
H5I_type_t object_kind(hid_t file, const std::string& name, const std::string& where);
H5I_type_t kind_at_path(hid_t file, const std::string& name, const std::string& where);
bool dataset_exists(hid_t file, const std::filesystem::path& path, const std::string& name);
bool group_exists(hid_t file, const std::filesystem::path& path, const std::string& name);
Handle link_props_creating_parents(const std::string& where);
Handle variable_length_string_type(H5T_cset_t charset, const std::string& where);
Handle select_slice(hid_t file_space, std::size_t axis, int64_t begin, const Shape& slice,
                    const std::string& where);
std::string why_not_a_dataset(hid_t file, const std::filesystem::path& path,
                              const std::string& name);
Handle open_dataset(hid_t file, const std::filesystem::path& path, const std::string& name);
void require_float32(hid_t dataset, const std::string& where);
// Refuses an unfiltered dataset that stores fewer bytes than its `elements` of
// `element_bytes` need: HDF5 returns the fill value (zeros) for storage never written,
// so a file cut short or a shape redeclared by hand would otherwise read as zeros.
void require_fully_stored(hid_t dataset, int64_t elements, int64_t element_bytes,
                          const std::string& where);

// An open root attribute with its type and dataspace.
struct Attribute {
  Handle attr, type, space;
  std::string where;

  H5T_class_t type_class() const { return LONGNET_HDF5(H5Tget_class(type.get()), where); }
  int rank() const { return LONGNET_HDF5(H5Sget_simple_extent_ndims(space.get()), where); }
  std::size_t elements() const {
    return static_cast<std::size_t>(LONGNET_HDF5(H5Sget_simple_extent_npoints(space.get()), where));
  }
  void require_class(bool ok, const char* expected) const {
    LONGNET_CHECK(ok, "{} holds {}, expected {}", where, type_name(type.get()), expected);
  }
  void require_one_element() const {
    LONGNET_CHECK(elements() == 1, "{} has {} elements, expected exactly one", where, elements());
  }
  // The one element, converted by HDF5 to `memory_type`, the native type of T.
  template <typename T>
  T read_one(hid_t memory_type) const {
    T value{};
    LONGNET_HDF5(H5Aread(attr.get(), memory_type, &value), where);
    return value;
  }
  // Integers of any width and sign, and enums: h5py stores a numpy bool as an enum over
  // int8 (FALSE = 0, TRUE = 1), so `causal = True` written from Python reads as 1.
  std::vector<int64_t> read_integers() const;
};

int64_t widen_integer(const unsigned char* bytes, std::size_t size, bool is_signed);
Attribute open_attribute(hid_t file, const std::filesystem::path& path, const std::string& name);
// Writes root attribute `name`, replacing one of that name: `extent` elements (a scalar's
// extent is {}) of `file_type`, converted by HDF5 from `data`, elements of `memory_type`.
void write_attribute(hid_t file, const std::filesystem::path& path, const std::string& name,
                     hid_t file_type, hid_t memory_type, const Shape& extent, const void* data);

}  // namespace longnet::hdf5_internal
