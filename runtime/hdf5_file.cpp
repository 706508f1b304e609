// H5File: opening, creating and closing files, user blocks and groups (datasets in
// hdf5_datasets.cpp, attributes in hdf5_attributes.cpp; the HDF5 plumbing in
// hdf5_internal.*).
#include "runtime/hdf5_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "runtime/hdf5_internal.hpp"

namespace longnet {

using namespace hdf5_internal;

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

bool H5File::has_group(const std::string& name) const { return group_exists(id_, path_, name); }

void H5File::create_group(const std::string& name) {
  const std::string where = where_group(path_, name);
  LONGNET_CHECK(!group_exists(id_, path_, name) && !dataset_exists(id_, path_, name),
                "{} already exists", where);
  const Handle link_props = link_props_creating_parents(where);
  const Handle group_props(LONGNET_HDF5(H5Pcreate(H5P_GROUP_CREATE), where), H5Pclose);
  LONGNET_HDF5(
      H5Pset_link_creation_order(group_props.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
      where);
  const Handle group(
      LONGNET_HDF5(H5Gcreate2(id_, name.c_str(), link_props.get(), group_props.get(), H5P_DEFAULT),
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

}  // namespace longnet
