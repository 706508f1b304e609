// H5File's root attributes: integers of any width, reals and strings.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "runtime/hdf5_file.hpp"
#include "runtime/hdf5_internal.hpp"

namespace longnet {

using namespace hdf5_internal;

// ---- attributes ---------------------------------------------------------------------

bool H5File::has_attribute(const std::string& name) const {
  return LONGNET_HDF5(H5Aexists(id_, name.c_str()), where_attribute(path_, name)) > 0;
}

std::vector<int64_t> H5File::read_attr_int64_array(const std::string& name) const {
  const Attribute a = open_attribute(id_, path_, name);
  LONGNET_CHECK(a.rank() <= 1, "{} has rank {}, expected a scalar or a 1-D array", a.where,
                a.rank());
  return a.read_integers();
}

int64_t H5File::read_attr_int64(const std::string& name) const {
  const Attribute a = open_attribute(id_, path_, name);
  const H5T_class_t kind = a.type_class();
  a.require_class(kind == H5T_INTEGER || kind == H5T_ENUM, "an integer");
  a.require_one_element();
  return a.read_integers().front();
}

double H5File::read_attr_double(const std::string& name) const {
  const Attribute a = open_attribute(id_, path_, name);
  const H5T_class_t type_class = a.type_class();
  a.require_class(type_class == H5T_FLOAT || type_class == H5T_INTEGER, "a number");
  a.require_one_element();
  return a.read_one<double>(H5T_NATIVE_DOUBLE);
}

std::string H5File::read_attr_string(const std::string& name) const {
  const Attribute a = open_attribute(id_, path_, name);
  a.require_class(a.type_class() == H5T_STRING, "a string");
  a.require_one_element();

  if (LONGNET_HDF5(H5Tis_variable_str(a.type.get()), a.where) > 0) {
    // h5py's form: HDF5 allocates the string; we copy it and hand the memory back.
    const H5T_cset_t charset = LONGNET_HDF5(H5Tget_cset(a.type.get()), a.where);
    const Handle memory_type = variable_length_string_type(charset, a.where);
    char* text = nullptr;
    LONGNET_HDF5(H5Aread(a.attr.get(), memory_type.get(), &text), a.where);
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }

  // Fixed length: read the bytes as stored, then drop the NUL or space padding.
  const std::size_t size = H5Tget_size(a.type.get());
  std::string value(size, '\0');
  if (size > 0) LONGNET_HDF5(H5Aread(a.attr.get(), a.type.get(), value.data()), a.where);
  value.resize(std::min(value.find('\0'), size));
  if (H5Tget_strpad(a.type.get()) == H5T_STR_SPACEPAD) {
    value.erase(value.find_last_not_of(' ') + 1);
  }
  return value;
}

void H5File::write_attr_int64_array(const std::string& name, std::span<const int64_t> values) {
  write_attribute(id_, path_, name, H5T_STD_I64LE, H5T_NATIVE_INT64,
                  {static_cast<int64_t>(values.size())}, values.data());
}

void H5File::write_attr_int64(const std::string& name, int64_t value) {
  write_attribute(id_, path_, name, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &value);
}

void H5File::write_attr_double(const std::string& name, double value) {
  write_attribute(id_, path_, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &value);
}

void H5File::write_attr_string(const std::string& name, std::string_view value) {
  const Handle type = variable_length_string_type(H5T_CSET_UTF8, where_attribute(path_, name));
  const std::string text(value);  // NUL-terminated, as a variable-length string must be
  const char* pointer = text.c_str();
  write_attribute(id_, path_, name, type.get(), type.get(), {}, &pointer);
}

// ---- unsigned attributes ------------------------------------------------------------

void H5File::write_attr_uint64(const std::string& name, uint64_t value) {
  write_attribute(id_, path_, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, {}, &value);
}

uint64_t H5File::read_attr_uint64(const std::string& name) const {
  const Attribute a = open_attribute(id_, path_, name);
  a.require_class(a.type_class() == H5T_INTEGER, "an unsigned integer");
  a.require_one_element();
  if (H5Tget_sign(a.type.get()) == H5T_SGN_NONE) return a.read_one<uint64_t>(H5T_NATIVE_UINT64);
  const auto value = a.read_one<int64_t>(H5T_NATIVE_INT64);
  LONGNET_CHECK(value >= 0, "{} is {}, expected a non-negative integer", a.where, value);
  return static_cast<uint64_t>(value);
}

}  // namespace longnet
