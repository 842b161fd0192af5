#include "data/cifar10.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace paretopipe {

Result<LabeledImages> ReadCifar10(const std::string& path, size_t max_images) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return Status::NotFound(fmt::format("{}: {}", path, strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return Status::InvalidArgument(fmt::format("{}: not a regular file", path));
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size == 0 || size % kCifarRecordBytes != 0) {
    return Status::InvalidArgument(fmt::format(
        "{}: {} bytes is not a whole number of CIFAR-10 records of {} bytes (1 label byte and a "
        "32x32x3 image); is it the binary version's test_batch.bin?",
        path, size, kCifarRecordBytes));
  }
  size_t count = size / kCifarRecordBytes;
  if (max_images > 0 && max_images < count) count = max_images;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("{}: cannot open: {}", path, strerror(errno)));
  std::vector<uint8_t> records(count * kCifarRecordBytes);
  if (!in.read(reinterpret_cast<char*>(records.data()), static_cast<std::streamsize>(records.size()))) {
    return Status::IoError(fmt::format("{}: read failed after {} bytes", path, in.gcount()));
  }
  LabeledImages out;
  out.pixels.resize(count * kCifarImageBytes);
  out.labels.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* record = records.data() + i * kCifarRecordBytes;
    if (record[0] >= kCifarClasses.size()) {
      return Status::InvalidArgument(
          fmt::format("{}: record {} has label {}, CIFAR-10 labels are 0..9", path, i, record[0]));
    }
    out.labels[i] = record[0];
    std::memcpy(out.pixels.data() + i * kCifarImageBytes, record + 1, kCifarImageBytes);
  }
  return out;
}

}  // namespace paretopipe
