#include "data/image_folder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

namespace paretopipe {
namespace {

namespace fs = std::filesystem;

bool IsImage(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// Image files below `dir` at any depth, in ImageFolder's order: its
// `sorted(os.walk(dir))` takes directories in order of their path, and each
// one's files sorted by name (so "a/z.png" comes before "a/b/c.png").
std::vector<std::string> ImagesBelow(const fs::path& dir, std::error_code& ec) {
  std::vector<std::pair<std::string, std::string>> found;  // (directory, name)
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink,
                                           ec),
       end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && IsImage(it->path())) {
      found.emplace_back(it->path().parent_path().string(), it->path().filename().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (const auto& [directory, name] : found) out.push_back((fs::path(directory) / name).string());
  return out;
}

}  // namespace

Result<ImageFolder> ListImageFolder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound(fmt::format("--images {}: not a directory", dir));
  }
  ImageFolder folder;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec)) folder.classes.push_back(e.path().filename().string());
  }
  std::sort(folder.classes.begin(), folder.classes.end());
  if (folder.classes.empty()) {
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec) && IsImage(e.path())) folder.paths.push_back(e.path().string());
    }
    std::sort(folder.paths.begin(), folder.paths.end());
    folder.labels.assign(folder.paths.size(), -1);
  } else {
    for (size_t c = 0; c < folder.classes.size(); ++c) {
      for (std::string& p : ImagesBelow(fs::path(dir) / folder.classes[c], ec)) {
        folder.paths.push_back(std::move(p));
        folder.labels.push_back(static_cast<int>(c));
      }
    }
  }
  if (ec) return Status::IoError(fmt::format("--images {}: {}", dir, ec.message()));
  if (folder.paths.empty()) {
    return Status::InvalidArgument(
        fmt::format("--images {}: no .jpg, .jpeg or .png files{}", dir,
                    folder.classes.empty() ? "" : " in its class subdirectories"));
  }
  return folder;
}

}  // namespace paretopipe
