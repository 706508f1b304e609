// Temporary output files that a planted file cannot hijack.
//
// A temporary with a predictable name (".tmp_ckpt_<step>.<pid>.h5") can be prepared by
// anyone who can write the directory: a symbolic link planted there would make the
// writer truncate and overwrite the link's target. mkstemp picks an unpredictable name
// and creates it with O_CREAT | O_EXCL, which never opens an existing file or follows a
// link; HDF5 then truncates and writes that file, which is ours, and the caller renames
// it over the final name.
#pragma once

#include <filesystem>
#include <string_view>

namespace longnet {

// Creates an empty regular file DIR/<prefix>XXXXXX (six random characters) that did not
// exist before, with the permissions a plain create would give (0644 less the umask),
// and returns its path. Throws longnet::Error naming the directory when it cannot.
std::filesystem::path create_private_temporary(const std::filesystem::path& dir,
                                               std::string_view prefix);

// Whether `path` itself (not what a link points to) is a regular file: stale temporaries
// are deleted only when this holds, so cleaning up never touches a planted link's target.
bool is_regular_file_not_link(const std::filesystem::path& path);

}  // namespace longnet
