// runtime/hdf5_file.hpp over the HDF5 C API: RAII handles, the HDF5 check macro,
// and the type checks that keep a float64 dataset from being read as float32.
#include "runtime/hdf5_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hdf5.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <type_traits>
#include <utility>

static_assert(std::is_same_v<hid_t, int64_t>, "H5File keeps its hid_t as int64_t (HDF5 >= 1.10)");

namespace longnet {
namespace {

// ---- the failure path -----------------------------------------------------------

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
  fail("{}: {} ({} failed at {}:{})", context, hdf5_error_message(), statement, file, line);
}

}  // namespace
}  // namespace longnet

// LONGNET_HDF5(call, context): evaluates an HDF5 call and yields its result; every HDF5
// call signals failure with a negative value, which becomes a longnet::Error holding
// `context` (what we were doing, built only on failure), HDF5's message, the statement
// and file:line.
#define LONGNET_HDF5(call, context)                                                          \
  [&] {                                                                                      \
    const auto hdf5_result_ = (call);                                                        \
    if (hdf5_result_ < 0) ::longnet::throw_hdf5_error((context), #call, __FILE__, __LINE__); \
    return hdf5_result_;                                                                     \
  }()

namespace longnet {
namespace {

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
    case H5T_FLOAT: return fmt::format("float{}", bits);
    case H5T_STRING: return "string";
    case H5T_ENUM: return "enum";
    case H5T_COMPOUND: return "compound";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_OPAQUE: return "opaque";
    case H5T_BITFIELD: return "bitfield";
    case H5T_REFERENCE: return "reference";
    case H5T_TIME: return "time";
    default: return "unknown type";
  }
}

// The extent of a dataspace; a scalar is rank 0.
Shape extent_of(hid_t space, const std::string& where) {
  const H5S_class_t kind = LONGNET_HDF5(H5Sget_simple_extent_type(space), where);
  LONGNET_CHECK(kind != H5S_NULL, "{} has a null dataspace (it holds no data)", where);
  const int rank = LONGNET_HDF5(H5Sget_simple_extent_ndims(space), where);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  LONGNET_HDF5(H5Sget_simple_extent_dims(space, dims.data(), nullptr), where);
  return Shape(dims.begin(), dims.end());
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
    return fmt::format("{}: '{}' is a group, not a dataset (it holds: {}); write the tensor "
                       "itself as dataset '{}'",
                       path.string(), name,
                       inside.empty() ? "nothing" : fmt::format("{}", fmt::join(inside, ", ")),
                       name);
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

// Widens one native integer of `size` bytes.
int64_t widen_integer(const unsigned char* bytes, std::size_t size, bool is_signed) {
  const auto load = [bytes]<typename T>(T value) {
    std::memcpy(&value, bytes, sizeof value);
    return static_cast<int64_t>(value);
  };
  switch (size) {
    case 1: return is_signed ? load(int8_t{}) : load(uint8_t{});
    case 2: return is_signed ? load(int16_t{}) : load(uint16_t{});
    case 4: return is_signed ? load(int32_t{}) : load(uint32_t{});
    case 8: return load(int64_t{});  // uint64 above 2^63 - 1 wraps; no config needs it
    default: fail("cannot read a {}-byte integer", size);
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

}  // namespace

// ---- files ------------------------------------------------------------------------

H5File H5File::open_read(const std::filesystem::path& path) {
  silence_hdf5_error_printing();
  const std::string name = path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  LONGNET_CHECK(std::filesystem::exists(status), "cannot open '{}': no such file", name);
  LONGNET_CHECK(!std::filesystem::is_directory(status),
                "cannot open '{}': it is a directory, not an HDF5 file", name);
  {
    // HDF5 reports a file it may not read only as "unable to open file"; say why.
    const std::ifstream probe(path, std::ios::binary);
    LONGNET_CHECK(probe.good(), "cannot read '{}': {}", name, std::strerror(errno));
  }
  const std::string where = fmt::format("cannot open '{}'", name);
  LONGNET_CHECK(LONGNET_HDF5(H5Fis_hdf5(name.c_str()), where) > 0,
                "'{}' is not an HDF5 file (it has no HDF5 signature)", name);
  return {LONGNET_HDF5(H5Fopen(name.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), where), path};
}

H5File H5File::create(const std::filesystem::path& path) {
  silence_hdf5_error_printing();
  const std::string name = path.string();
  return {LONGNET_HDF5(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                       fmt::format("cannot create '{}'", name)),
          path};
}

H5File H5File::open_read_write(const std::filesystem::path& path) {
  silence_hdf5_error_printing();
  const std::string name = path.string();
  const std::string where = fmt::format("cannot open '{}' for writing", name);
  LONGNET_CHECK(std::filesystem::exists(path), "{}: no such file", where);
  return {LONGNET_HDF5(H5Fopen(name.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), where), path};
}

H5File::H5File(H5File&& other) noexcept
    : id_(std::exchange(other.id_, H5I_INVALID_HID)), path_(std::move(other.path_)) {}

H5File& H5File::operator=(H5File&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0) H5Fclose(id_);
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    path_ = std::move(other.path_);
  }
  return *this;
}

H5File::~H5File() {
  if (id_ >= 0) H5Fclose(id_);
}

void H5File::close() {
  if (id_ < 0) return;
  const hid_t id = std::exchange(id_, H5I_INVALID_HID);
  LONGNET_HDF5(H5Fclose(id), fmt::format("cannot close '{}'", path_.string()));
}

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
  Tensor tensor(extent_of(space.get(), where), DType::float32);
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
void write_dataset(hid_t file, const std::filesystem::path& path, const std::string& name,
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
  write_dataset(id_, path_, name, is_f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE,
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

// ---- files with a user block ----------------------------------------------------------

H5File H5File::create_with_user_block(const std::filesystem::path& path,
                                      std::size_t user_block_bytes) {
  silence_hdf5_error_printing();
  const std::string name = path.string();
  const std::string where = fmt::format("cannot create '{}'", name);
  const Handle props(LONGNET_HDF5(H5Pcreate(H5P_FILE_CREATE), where), H5Pclose);
  LONGNET_HDF5(H5Pset_userblock(props.get(), user_block_bytes), where);
  return {LONGNET_HDF5(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, props.get(), H5P_DEFAULT), where),
          path};
}

std::size_t H5File::user_block_bytes() const {
  const std::string where = fmt::format("{}: user block", path_.string());
  const Handle props(LONGNET_HDF5(H5Fget_create_plist(id_), where), H5Pclose);
  hsize_t size = 0;
  LONGNET_HDF5(H5Pget_userblock(props.get(), &size), where);
  return static_cast<std::size_t>(size);
}

// ---- groups -------------------------------------------------------------------------

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
  std::vector<T> values(static_cast<std::size_t>(shape[0]));
  if (!values.empty()) {
    LONGNET_HDF5(
        H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
        where);
  }
  return values;
}

}  // namespace

bool H5File::has_group(const std::string& name) const { return group_exists(id_, path_, name); }

void H5File::create_group(const std::string& name) {
  const std::string where = where_group(path_, name);
  LONGNET_CHECK(!group_exists(id_, path_, name) && !dataset_exists(id_, path_, name),
                "{} already exists", where);
  const Handle link_props = link_props_creating_parents(where);
  const Handle group_props(LONGNET_HDF5(H5Pcreate(H5P_GROUP_CREATE), where), H5Pclose);
  LONGNET_HDF5(H5Pset_link_creation_order(group_props.get(),
                                          H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
               where);
  const Handle group(LONGNET_HDF5(H5Gcreate2(id_, name.c_str(), link_props.get(),
                                             group_props.get(), H5P_DEFAULT),
                                  where),
                     H5Gclose);
}

std::vector<std::string> H5File::list_group(const std::string& name) const {
  const std::string where = where_group(path_, name);
  LONGNET_CHECK(group_exists(id_, path_, name), "{}: no group '{}'{}", path_.string(), name,
                root_listing(id_));
  const Handle group(LONGNET_HDF5(H5Gopen2(id_, name.c_str(), H5P_DEFAULT), where), H5Gclose);
  const Handle group_props(LONGNET_HDF5(H5Gget_create_plist(group.get()), where), H5Pclose);
  unsigned order_flags = 0;
  LONGNET_HDF5(H5Pget_link_creation_order(group_props.get(), &order_flags), where);
  const bool by_creation = (order_flags & H5P_CRT_ORDER_INDEXED) != 0;
  return link_names(group.get(), by_creation ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, where);
}

// ---- integer datasets -----------------------------------------------------------------

void H5File::write_dataset_u8(const std::string& name, std::span<const uint8_t> values) {
  write_dataset(id_, path_, name, H5T_STD_U8LE, H5T_NATIVE_UINT8,
                {static_cast<int64_t>(values.size())}, values.data());
}

std::vector<uint8_t> H5File::read_dataset_u8(const std::string& name) const {
  return read_unsigned_dataset<uint8_t>(id_, path_, name, H5T_NATIVE_UINT8);
}

void H5File::write_dataset_u64(const std::string& name, std::span<const uint64_t> values) {
  write_dataset(id_, path_, name, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                {static_cast<int64_t>(values.size())}, values.data());
}

std::vector<uint64_t> H5File::read_dataset_u64(const std::string& name) const {
  return read_unsigned_dataset<uint64_t>(id_, path_, name, H5T_NATIVE_UINT64);
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
