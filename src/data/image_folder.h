// Which image files `--images DIR` means, and their labels, as torchvision's
// ImageFolder decides: each subdirectory of DIR is a class (index in sorted
// name order) holding its images at any depth; a DIR without subdirectories
// is a flat folder of unlabeled images. Only .jpg, .jpeg and .png files
// count (any case).
//
// Owns: listing. Must not touch: decoding (image_file.h).
// Thread safety: pure functions over the file system.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

struct ImageFolder {
  std::vector<std::string> classes;  // Sorted; empty for a flat folder.
  std::vector<std::string> paths;    // Sorted within each class, classes in order.
  std::vector<int> labels;           // Index into classes, or -1 (flat folder).
};

// Lists `dir`. NotFound when it does not exist; InvalidArgument when it holds
// no image files (the message says which extensions count).
Result<ImageFolder> ListImageFolder(const std::string& dir);

}  // namespace paretopipe
