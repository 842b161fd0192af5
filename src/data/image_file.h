// JPEG and PNG files as 8-bit RGB images, decoded by libjpeg-turbo and
// libpng (Debian's libjpeg62-turbo, libpng16: the decoders Pillow uses, so
// a file decodes to the same pixels as torchvision's loader,
// Image.open(f).convert("RGB"), gives).
//
// Owns: decoding and converting to RGB. Must not touch: resizing,
// normalization (transform.h), the network.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

// One image, 3 channels, planar (CHW): the red plane, then green, then blue.
struct RgbImage {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // 3 x height x width.
};

// Decodes the JPEG or PNG file at `path` (told apart by content, not by
// name) into RGB as Pillow's convert("RGB") would: grey and palette expand
// to RGB, alpha is dropped, 16-bit samples keep their high byte. NotFound
// for a missing file; InvalidArgument naming the file for anything else
// (another format, a truncated or corrupt file, an image above 2^28 pixels).
Result<RgbImage> DecodeImageFile(const std::string& path);

}  // namespace paretopipe
