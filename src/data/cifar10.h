// The CIFAR-10 binary format (https://www.cs.toronto.edu/~kriz/cifar.html,
// "binary version"): records of 1 label byte (0..9) followed by a 32x32
// colour image as 3072 bytes, the red plane, then green, then blue, each
// row-major. test_batch.bin holds 10000 records.
//
// Owns: reading and validating such a file. Must not touch: transforms,
// models, the network.
// Thread safety: pure functions over the caller's values.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

inline constexpr int kCifarSide = 32;
inline constexpr int kCifarChannels = 3;
inline constexpr size_t kCifarImageBytes = kCifarChannels * kCifarSide * kCifarSide;  // 3072
inline constexpr size_t kCifarRecordBytes = 1 + kCifarImageBytes;                      // 3073

inline constexpr std::array<const char*, 10> kCifarClasses = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

struct LabeledImages {
  int channels = kCifarChannels, height = kCifarSide, width = kCifarSide;
  // count x channels x height x width bytes, planar (CHW) per image.
  std::vector<uint8_t> pixels;
  std::vector<int> labels;  // One per image.

  size_t count() const { return labels.size(); }
};

// Reads at most `max_images` records (0: all) of the CIFAR-10 binary file at
// `path`. NotFound when it does not exist; InvalidArgument, naming the file
// and the record, when its size is not a whole number of records or a label
// is outside 0..9 (not a CIFAR-10 binary batch: e.g. CIFAR-100's records
// carry two label bytes).
Result<LabeledImages> ReadCifar10(const std::string& path, size_t max_images = 0);

}  // namespace paretopipe
