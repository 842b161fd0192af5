#include "sweep/input_source.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "data/cifar10.h"
#include "data/image_file.h"
#include "data/image_folder.h"
#include "data/transform.h"
#include "runtime/input_set.h"

namespace paretopipe {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// "0.5" or "0.485,0.456,0.406": one value for every channel, or one each.
Result<std::array<float, 3>> ParseChannels(const std::string& option, const std::string& text,
                                           bool positive) {
  std::vector<float> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    char* rest = nullptr;
    errno = 0;
    const float v = std::strtof(item.c_str(), &rest);
    if (item.empty() || *rest != '\0' || errno != 0 || !std::isfinite(v) || (positive && v <= 0)) {
      return Status::InvalidArgument(
          fmt::format("{} '{}': expected one number or three comma-separated (R,G,B){}", option,
                      text, positive ? ", each > 0" : ""));
    }
    values.push_back(v);
    begin = end + 1;
  }
  if (values.size() == 1) return std::array<float, 3>{values[0], values[0], values[0]};
  if (values.size() == 3) return std::array<float, 3>{values[0], values[1], values[2]};
  return Status::InvalidArgument(
      fmt::format("{} '{}': {} values; give one for every channel or three (R,G,B)", option, text,
                  values.size()));
}

Result<std::string> CifarFile(const std::string& path) {
  if (!IsDirectory(path)) return path;
  // The archive unpacks to cifar-10-batches-bin/; accept the folder above it too.
  for (const char* candidate : {"/test_batch.bin", "/cifar-10-batches-bin/test_batch.bin"}) {
    struct stat st;
    if (stat((path + candidate).c_str(), &st) == 0) return path + candidate;
  }
  return Status::NotFound(
      fmt::format("--dataset cifar10:{}: no test_batch.bin in it (nor in "
                  "cifar-10-batches-bin/); download the CIFAR-10 binary version",
                  path));
}

}  // namespace

Status ValidateInputOptions(const InputOptions& o) {
  if (!o.dataset.empty() && !o.images_dir.empty()) {
    return Status::InvalidArgument("--dataset and --images: give one input source, not both");
  }
  if (!o.dataset.empty() && o.dataset.rfind("cifar10:", 0) != 0) {
    return Status::InvalidArgument(fmt::format(
        "--dataset {}: the dataset reader knows cifar10:DIR (the CIFAR-10 binary test batch); "
        "for other images use --images DIR",
        o.dataset));
  }
  if (o.dataset == "cifar10:") return Status::InvalidArgument("--dataset cifar10: needs a path");
  if (o.max_images < 1) {
    return Status::InvalidArgument(fmt::format("--max-images {}: must be >= 1", o.max_images));
  }
  PP_RETURN_IF_ERROR(ParseChannels("--mean", o.mean, false).status());
  PP_RETURN_IF_ERROR(ParseChannels("--std", o.std, true).status());
  return Status::Ok();
}

Result<LoadedInput> LoadInput(const InputOptions& o, int64_t side, int64_t needed) {
  PP_RETURN_IF_ERROR(ValidateInputOptions(o));
  InputTransform transform;
  transform.side = static_cast<int>(side);
  PP_ASSIGN_OR_RETURN(transform.mean, ParseChannels("--mean", o.mean, false));
  PP_ASSIGN_OR_RETURN(transform.std, ParseChannels("--std", o.std, true));
  const size_t limit = static_cast<size_t>(std::min(o.max_images, needed));
  const size_t image_floats = static_cast<size_t>(3 * side * side);

  std::vector<float> pixels;
  std::vector<int64_t> labels;
  std::string source;
  if (!o.dataset.empty()) {
    PP_ASSIGN_OR_RETURN(std::string path, CifarFile(o.dataset.substr(8)));
    PP_ASSIGN_OR_RETURN(LabeledImages images, ReadCifar10(path, limit));
    if (images.count() == 0) return Status::InvalidArgument(path + ": no images in it");
    pixels = TransformImages(images, 0, images.count(), transform);
    labels.assign(images.labels.begin(), images.labels.end());
    source = "cifar10:" + path;
  } else {
    PP_ASSIGN_OR_RETURN(ImageFolder folder, ListImageFolder(o.images_dir));
    const size_t n = std::min(limit, folder.paths.size());
    pixels.reserve(n * image_floats);
    for (size_t i = 0; i < n; ++i) {
      PP_ASSIGN_OR_RETURN(RgbImage image, DecodeImageFile(folder.paths[i]));
      std::vector<float> one = TransformImage(image, transform);
      pixels.insert(pixels.end(), one.begin(), one.end());
      labels.push_back(folder.labels[i]);
    }
    source = "images:" + o.images_dir;
  }
  const int64_t count = static_cast<int64_t>(pixels.size() / image_floats);
  // The tensor takes the vector over: no copy of a set that may be 150 MB.
  auto owned = std::make_unique<std::vector<float>>(std::move(pixels));
  float* data = owned->data();
  torch::Tensor tensor = torch::from_blob(
      data, {count, 3, side, side}, [owned = owned.release()](void*) { delete owned; },
      torch::kFloat);
  PP_ASSIGN_OR_RETURN(InputSet set, MakeInputSet(std::move(tensor)));
  LoadedInput loaded;
  loaded.set = std::make_shared<const InputSet>(std::move(set));
  if (std::any_of(labels.begin(), labels.end(), [](int64_t l) { return l >= 0; })) {
    loaded.labels = std::move(labels);
  }
  loaded.description =
      fmt::format("{} mean={},{},{} std={},{},{}", source, transform.mean[0], transform.mean[1],
                  transform.mean[2], transform.std[0], transform.std[1], transform.std[2]);
  return loaded;
}

}  // namespace paretopipe
