// Where a sweep's images come from: synthetic (the default), the CIFAR-10
// binary test batch (--dataset cifar10:DIR) or a folder of JPEG and PNG files
// (--images DIR), transformed as torchvision does for the model's input size
// (data/transform.h) into the InputSet the source stage cycles through.
//
// Owns: reading the options, loading and transforming the images once per
// sweep, the run's `input` description. Must not touch: the network, the
// store, models.
// Thread safety: pure functions (they read files).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

struct InputSet;

struct InputOptions {
  std::string dataset;       // "cifar10:PATH" (a test_batch.bin or a folder with one); "" none.
  std::string images_dir;    // A folder of .jpg/.jpeg/.png (subfolders: classes); "" none.
  std::string mean = "0.5";  // One value, or three comma-separated (R,G,B).
  std::string std = "0.5";
  int64_t max_images = 256;  // At most this many images are loaded.

  bool synthetic() const { return dataset.empty() && images_dir.empty(); }
};

struct LoadedInput {
  std::shared_ptr<const InputSet> set;
  std::vector<int64_t> labels;  // One per image; -1 unlabelled; empty when none is labelled.
  // RunConfig::input: "cifar10:/data/test_batch.bin mean=0.5,0.5,0.5 std=0.5,0.5,0.5".
  std::string description;
};

// Loads the first min(max_images, `needed`) images of the source `options`
// names, each resized and center-cropped to side x side and normalized.
// REQUIRES: !options.synthetic(), side >= 1, needed >= 1.
// InvalidArgument for both sources at once, an unknown dataset, a bad
// --mean/--std or max_images < 1; NotFound / InvalidArgument from the readers
// (a missing file, not a CIFAR-10 batch, an undecodable image, by name).
Result<LoadedInput> LoadInput(const InputOptions& options, int64_t side, int64_t needed);

// Checks the options without reading images (for early errors).
Status ValidateInputOptions(const InputOptions& options);

}  // namespace paretopipe
