// JPEG and PNG files as 8-bit RGB images, decoded by libjpeg-turbo and
// libpng (Debian's libjpeg62-turbo, libpng16: the decoders Pillow uses, so
// a file decodes to the same pixels as torchvision's loader,
// Image.open(f).convert("RGB"), gives).
//
// A build leaves out the decoder whose library CMake did not find
// (cmake/OptionalFeatures.cmake); files of that format are then refused with
// a message saying so.
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

enum class ImageFormat { kJpeg, kPng };

// OK when this build decodes `format`. Else Unavailable, one line: "this
// build has no JPEG support: CMake found no libjpeg when it was configured
// (install libjpeg-dev, then reconfigure)".
Status CheckImageFormatBuilt(ImageFormat format);

// Decodes the JPEG or PNG file at `path` (told apart by content, not by
// name) into RGB as Pillow's convert("RGB") would: grey and palette expand
// to RGB, alpha is dropped, 16-bit samples keep their high byte. NotFound
// for a missing file; Unavailable, naming the file, for a format this build
// does not decode (CheckImageFormatBuilt); InvalidArgument naming the file
// for anything else (another format, a truncated or corrupt file, an image
// above 2^28 pixels).
Result<RgbImage> DecodeImageFile(const std::string& path);

}  // namespace paretopipe
