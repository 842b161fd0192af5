// The model zoo as the layers above see it, without LibTorch headers: which
// models exist, their nominal input, and how a run names a model instance.
//
// Owns: the list of built-in models and the ModelSpec that identifies one
// instance (name, classes, seed, weights). Must not touch: devices, threads,
// transports; nothing here runs a model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

// What identifies one instance of a model: its architecture and its weights.
struct ModelSpec {
  std::string name;           // A zoo name, e.g. "mobilenet_v2".
  int64_t num_classes = 1000;
  uint64_t seed = 0;          // Deterministic random init when `weights_path` is empty.
  std::string weights_path;   // A state dict saved by torch.save; empty: random init.
  // A TorchScript file (IsTorchScriptFile(name)) is cut where its graph
  // allows (model/torchscript.h): "module" boundaries or any "op", with at
  // most this many tensors crossing. Its weights are its own: num_classes,
  // seed and weights_path do not apply.
  std::string granularity = "module";
  int max_cut_tensors = 1;
};

// Whether `name` names a TorchScript file rather than a zoo model: it ends in
// ".pt" or ".ts".
bool IsTorchScriptFile(const std::string& name);

struct ZooEntry {
  std::string name;
  std::string description;   // One line: the architecture and where its blocks come from.
  int64_t input_channels = 3;
  int64_t input_side_px = 224;   // Nominal square input side (299 for inception_v3).
  int64_t min_input_side_px = 32;  // Smallest square input side the architecture accepts.
  int64_t num_blocks = 0;     // Valid cuts are 1 .. num_blocks - 1.
};

// Every built-in model, in a fixed order.
const std::vector<ZooEntry>& ZooModels();

// Returns the entry named `name`, or NotFound naming the known models.
Result<ZooEntry> FindZooModel(const std::string& name);

// Checks `cuts` (N-1 increasing cut indices for an N-stage pipeline) against `model`.
Status ValidateCuts(const ZooEntry& model, const std::vector<int64_t>& cuts);

}  // namespace paretopipe
