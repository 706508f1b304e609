// The helpers of runtime/hdf5_internal.hpp.
#include "runtime/hdf5_internal.hpp"

#include "runtime/checked_size.hpp"
#include "runtime/library_check.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <limits>
#include <type_traits>

static_assert(std::is_same_v<hid_t, int64_t>, "H5File keeps its hid_t as int64_t (HDF5 >= 1.10)");

namespace longnet::hdf5_internal {

// The innermost frame of HDF5's error stack names the cause ("file signature not
// found"); the outer frames only name the API call that failed ("unable to open file").
std::string hdf5_error_message() {
  const hid_t stack = H5Eget_current_stack();  // a copy; also clears the live stack
  if (stack < 0) return "unknown HDF5 error";
  std::string innermost;
  // H5E_WALK_UPWARD starts at the most specific frame, which is frame 0.
  H5Ewalk2(
      stack, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* frame, void* out) -> herr_t {
        if (n == 0 && frame->desc != nullptr) *static_cast<std::string*>(out) = frame->desc;
        return 0;
      },
      &innermost);
  H5Eclose_stack(stack);
  return innermost.empty() ? std::string("unknown HDF5 error") : innermost;
}

[[noreturn]] void throw_hdf5_error(const std::string& context, const char* statement,
                                   const char* file, int line) {
  detail::throw_library_failure("HDF5: " + hdf5_error_message(), statement, file, line, context);
}

// HDF5 prints its whole error stack to stderr by default; we report the cause ourselves,
// once, through Error. Idempotent and cheap, so every entry point calls it.
//
// It also keeps HDF5 from closing files at exit (H5dont_atexit, which only works before
// the library's first use, hence here): a file whose H5Fclose failed (a full disk while
// flushing) stays in HDF5's table half torn down, and the library's atexit handler then
// closes it again and segfaults after the error was reported. Every file this class
// opens is closed by its owner, so the handler has nothing else to do.
void silence_hdf5_error_printing() {
  static const bool no_atexit = [] { return H5dont_atexit() >= 0; }();
  (void)no_atexit;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::string where_dataset(const std::filesystem::path& path, const std::string& name) {
  return fmt::format("{}: dataset '{}'", path.string(), name);
}
std::string where_attribute(const std::filesystem::path& path, const std::string& name) {
  return fmt::format("{}: root attribute '{}'", path.string(), name);
}
std::string where_group(const std::filesystem::path& path, const std::string& name) {
  return fmt::format("{}: group '{}'", path.string(), name);
}

// "float32", "int64", "uint8", "string", ...: how a type is named in error messages.
std::string type_name(hid_t type) {
  const std::size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return fmt::format("{}int{}", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
    case H5T_FLOAT:
      return fmt::format("float{}", bits);
    case H5T_STRING:
      return "string";
    case H5T_ENUM:
      return "enum";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "variable-length sequence";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_REFERENCE:
      return "reference";
    case H5T_TIME:
      return "time";
    default:
      return "unknown type";
  }
}

// The extent of a dataspace; a scalar is rank 0.
Shape extent_of(hid_t space, const std::string& where) {
  const H5S_class_t kind = LONGNET_HDF5(H5Sget_simple_extent_type(space), where);
  LONGNET_CHECK(kind != H5S_NULL, "{} has a null dataspace (it holds no data)", where);
  const int rank = LONGNET_HDF5(H5Sget_simple_extent_ndims(space), where);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  LONGNET_HDF5(H5Sget_simple_extent_dims(space, dims.data(), nullptr), where);
  for (const hsize_t d : dims) {
    LONGNET_CHECK(d <= static_cast<hsize_t>(std::numeric_limits<int64_t>::max()),
                  "{} declares an extent of {}, more than any file can hold", where, d);
  }
  Shape shape(dims.begin(), dims.end());
  checked_element_count(shape, where);
  return shape;
}

Handle make_dataspace(const Shape& shape, const std::string& where) {
  if (shape.empty()) return {LONGNET_HDF5(H5Screate(H5S_SCALAR), where), H5Sclose};
  const std::vector<hsize_t> dims(shape.begin(), shape.end());
  return {
      LONGNET_HDF5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), where),
      H5Sclose};
}

// The names of the links directly in `group` (a group or a file, for its root), in the
// order of `index`.
std::vector<std::string> link_names(hid_t group, H5_index_t index, const std::string& where) {
  H5G_info_t info;
  LONGNET_HDF5(H5Gget_info(group, &info), where);
  std::vector<std::string> names;
  names.reserve(info.nlinks);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    // The first call measures the name, the second copies it (with its NUL).
    const ssize_t length = LONGNET_HDF5(
        H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT), where);
    std::string name(static_cast<std::size_t>(length) + 1, '\0');
    LONGNET_HDF5(H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, name.data(), name.size(),
                                    H5P_DEFAULT),
                 where);
    name.resize(static_cast<std::size_t>(length));
    names.push_back(std::move(name));
  }
  return names;
}

// The names of the root group's links, for "no dataset 'x' (the file holds: ...)".
// Best effort: it only decorates an error message, so its own failures are ignored.
std::string root_listing(hid_t file) {
  std::vector<std::string> names;
  try {
    names = link_names(file, H5_INDEX_NAME, "the file's root");
  } catch (const Error&) {
    return "";
  }
  if (names.empty()) return " (the file's root is empty)";
  return fmt::format(" (the file's root holds: {})", fmt::join(names, ", "));
}

H5I_type_t object_kind(hid_t file, const std::string& name, const std::string& where) {
  const Handle object(LONGNET_HDF5(H5Oopen(file, name.c_str(), H5P_DEFAULT), where), H5Oclose);
  return H5Iget_type(object.get());
}

// What the path `name` ("a/b/c") leads to: the kind of its last object (H5I_DATASET,
// H5I_GROUP, ...), or H5I_BADID when a link on it is missing or an object before the
// last is not a group. The root ("", "/") and a name ending in '/' lead to a group or
// to nothing. H5Lexists fails, rather than answering no, when a group on the path is
// missing or is not a group, so the path is walked one link at a time. `where` names the
// object the caller is after, for errors.
H5I_type_t kind_at_path(hid_t file, const std::string& name, const std::string& where) {
  std::size_t begin = 0;
  while (true) {
    const std::size_t slash = name.find('/', begin);
    const std::size_t end = slash == std::string::npos ? name.size() : slash;
    if (end > begin) {  // skip the empty components of "/a" and "a//b"
      const std::string prefix = name.substr(0, end);
      if (LONGNET_HDF5(H5Lexists(file, prefix.c_str(), H5P_DEFAULT), where) == 0) return H5I_BADID;
      const H5I_type_t kind = object_kind(file, prefix, where);
      if (slash == std::string::npos) return kind;
      if (kind != H5I_GROUP) return H5I_BADID;
    }
    if (slash == std::string::npos) return H5I_GROUP;  // every object on the path is a group
    begin = slash + 1;
  }
}

bool dataset_exists(hid_t file, const std::filesystem::path& path, const std::string& name) {
  return kind_at_path(file, name, where_dataset(path, name)) == H5I_DATASET;
}

bool group_exists(hid_t file, const std::filesystem::path& path, const std::string& name) {
  return kind_at_path(file, name, where_group(path, name)) == H5I_GROUP;
}

// Link-creation properties under which creating "a/b/x" also creates the missing groups
// a and a/b (as h5py does).
Handle link_props_creating_parents(const std::string& where) {
  Handle props(LONGNET_HDF5(H5Pcreate(H5P_LINK_CREATE), where), H5Pclose);
  LONGNET_HDF5(H5Pset_create_intermediate_group(props.get(), 1), where);
  return props;
}

// A variable-length string type in `charset`: what h5py writes for a str, and the memory
// type that reads one back as a char* allocated by HDF5.
Handle variable_length_string_type(H5T_cset_t charset, const std::string& where) {
  Handle type(LONGNET_HDF5(H5Tcopy(H5T_C_S1), where), H5Tclose);
  LONGNET_HDF5(H5Tset_size(type.get(), H5T_VARIABLE), where);
  LONGNET_HDF5(H5Tset_cset(type.get(), charset), where);
  LONGNET_HDF5(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), where);
  return type;
}

// Selects elements [begin, begin + slice[axis]) along `axis` of `file_space`, and every
// element along the other axes, and returns the memory dataspace of `slice`: the pair of
// dataspaces H5Dread and H5Dwrite take to move one rank's shard.
Handle select_slice(hid_t file_space, std::size_t axis, int64_t begin, const Shape& slice,
                    const std::string& where) {
  std::vector<hsize_t> start(slice.size(), 0);
  start[axis] = static_cast<hsize_t>(begin);
  const std::vector<hsize_t> count(slice.begin(), slice.end());
  LONGNET_HDF5(
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
      where);
  return make_dataspace(slice, where);
}

// Why `name` is not a dataset, for the error: a group (and what it holds), something
// else, or nothing at all (and what the root holds instead).
std::string why_not_a_dataset(hid_t file, const std::filesystem::path& path,
                              const std::string& name) {
  const std::string where = where_dataset(path, name);
  const H5I_type_t kind = kind_at_path(file, name, where);
  if (kind == H5I_GROUP) {
    std::vector<std::string> inside;
    try {  // best effort, as root_listing: it only decorates the message
      const Handle group(LONGNET_HDF5(H5Gopen2(file, name.c_str(), H5P_DEFAULT), where), H5Gclose);
      inside = link_names(group.get(), H5_INDEX_NAME, where);
    } catch (const Error&) {
    }
    return fmt::format(
        "{}: '{}' is a group, not a dataset (it holds: {}); write the tensor "
        "itself as dataset '{}'",
        path.string(), name,
        inside.empty() ? "nothing" : fmt::format("{}", fmt::join(inside, ", ")), name);
  }
  if (kind != H5I_BADID) {
    return fmt::format("{}: '{}' is not a dataset (a named datatype or another kind of object)",
                       path.string(), name);
  }
  return fmt::format("{}: no dataset '{}'{}", path.string(), name, root_listing(file));
}

Handle open_dataset(hid_t file, const std::filesystem::path& path, const std::string& name) {
  if (!dataset_exists(file, path, name)) throw Error(why_not_a_dataset(file, path, name));
  return {LONGNET_HDF5(H5Dopen2(file, name.c_str(), H5P_DEFAULT), where_dataset(path, name)),
          H5Dclose};
}

// Refuses anything but 32-bit floats: converting float64 (or ints) on the way in would
// hide a producer writing the wrong dtype.
void require_float32(hid_t dataset, const std::string& where) {
  const Handle type(LONGNET_HDF5(H5Dget_type(dataset), where), H5Tclose);
  const bool is_float32 = H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 4;
  LONGNET_CHECK(is_float32, "{} holds {}, expected float32", where, type_name(type.get()));
}

void require_fully_stored(hid_t dataset, int64_t elements, int64_t element_bytes,
                          const std::string& where) {
  const Handle create_props(LONGNET_HDF5(H5Dget_create_plist(dataset), where), H5Pclose);
  // A compressed dataset legitimately stores fewer bytes than it holds.
  if (LONGNET_HDF5(H5Pget_nfilters(create_props.get()), where) > 0) return;
  const int64_t needed = checked_byte_count(elements, element_bytes, where);
  const auto stored = static_cast<int64_t>(H5Dget_storage_size(dataset));
  LONGNET_CHECK(stored >= needed,
                "{} declares {} elements ({} bytes) but stores only {} bytes: the file was cut "
                "short or its data never written; write the file again",
                where, elements, needed, stored);
}

// Widens one native integer of `size` bytes.
int64_t widen_integer(const unsigned char* bytes, std::size_t size, bool is_signed) {
  const auto load = [bytes]<typename T>(T value) {
    std::memcpy(&value, bytes, sizeof value);
    return static_cast<int64_t>(value);
  };
  switch (size) {
    case 1:
      return is_signed ? load(int8_t{}) : load(uint8_t{});
    case 2:
      return is_signed ? load(int16_t{}) : load(uint16_t{});
    case 4:
      return is_signed ? load(int32_t{}) : load(uint32_t{});
    case 8:
      return load(int64_t{});  // uint64 above 2^63 - 1 wraps; no config needs it
    default:
      fail("cannot read a {}-byte integer", size);
  }
}

std::vector<int64_t> Attribute::read_integers() const {
  const H5T_class_t kind = type_class();
  require_class(kind == H5T_INTEGER || kind == H5T_ENUM, "integers");
  std::vector<int64_t> values(elements());
  if (values.empty()) return values;
  if (kind == H5T_INTEGER) {
    LONGNET_HDF5(H5Aread(attr.get(), H5T_NATIVE_INT64, values.data()), where);
    return values;
  }
  // HDF5 converts an enum only to another enum, so read its native values and widen them.
  const Handle native(LONGNET_HDF5(H5Tget_native_type(type.get(), H5T_DIR_ASCEND), where),
                      H5Tclose);
  const Handle base(LONGNET_HDF5(H5Tget_super(native.get()), where), H5Tclose);
  const std::size_t size = H5Tget_size(base.get());
  const bool is_signed = H5Tget_sign(base.get()) != H5T_SGN_NONE;
  std::vector<unsigned char> raw(values.size() * size);
  LONGNET_HDF5(H5Aread(attr.get(), native.get(), raw.data()), where);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = widen_integer(raw.data() + i * size, size, is_signed);
  }
  return values;
}

Attribute open_attribute(hid_t file, const std::filesystem::path& path, const std::string& name) {
  const std::string where = where_attribute(path, name);
  LONGNET_CHECK(LONGNET_HDF5(H5Aexists(file, name.c_str()), where) > 0,
                "{}: no root attribute '{}'", path.string(), name);
  Handle attr(LONGNET_HDF5(H5Aopen(file, name.c_str(), H5P_DEFAULT), where), H5Aclose);
  Handle type(LONGNET_HDF5(H5Aget_type(attr.get()), where), H5Tclose);
  Handle space(LONGNET_HDF5(H5Aget_space(attr.get()), where), H5Sclose);
  return {std::move(attr), std::move(type), std::move(space), where};
}

// Writes root attribute `name`, replacing one of that name: `extent` elements (a scalar's
// extent is {}) of `file_type`, converted by HDF5 from `data`, elements of `memory_type`.
void write_attribute(hid_t file, const std::filesystem::path& path, const std::string& name,
                     hid_t file_type, hid_t memory_type, const Shape& extent, const void* data) {
  const std::string where = where_attribute(path, name);
  const Handle space = make_dataspace(extent, where);
  if (LONGNET_HDF5(H5Aexists(file, name.c_str()), where) > 0) {
    LONGNET_HDF5(H5Adelete(file, name.c_str()), where);
  }
  const Handle attr(
      LONGNET_HDF5(H5Acreate2(file, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                   where),
      H5Aclose);
  if (shape_numel(extent) > 0) LONGNET_HDF5(H5Awrite(attr.get(), memory_type, data), where);
}

}  // namespace longnet::hdf5_internal
