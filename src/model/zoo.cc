// The zoo registry: names to model definitions.
#include <cstring>
#include <fmt/format.h>

#include "model/model.h"
#include "model/zoo.h"

namespace paretopipe {
namespace {

using DefineFn = ModelDef (*)(int64_t num_classes);

struct Registered {
  const char* name;
  DefineFn define;
};

// Order of `paretopipe models`.
constexpr Registered kZoo[] = {
    {"mobilenet_v2", DefineMobileNetV2}, {"resnet18", DefineResNet18},
    {"resnet50", DefineResNet50},        {"vgg16", DefineVgg16},
    {"alexnet", DefineAlexNet},          {"inception_v3", DefineInceptionV3},
};

// The definition with its block count filled in from its blocks.
ModelDef Define(const Registered& r, int64_t num_classes) {
  ModelDef def = r.define(num_classes);
  def.entry.num_blocks = static_cast<int64_t>(def.blocks.size());
  return def;
}

std::string KnownNames() {
  std::string names;
  for (const Registered& r : kZoo) names += (names.empty() ? "" : ", ") + std::string(r.name);
  return names;
}

}  // namespace

const std::vector<ZooEntry>& ZooModels() {
  static const std::vector<ZooEntry> entries = [] {
    std::vector<ZooEntry> out;
    for (const Registered& r : kZoo) out.push_back(Define(r, 1000).entry);
    return out;
  }();
  return entries;
}

bool IsTorchScriptFile(const std::string& name) {
  auto ends_with = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
  };
  return ends_with(".pt") || ends_with(".ts");
}

Result<ZooEntry> FindZooModel(const std::string& name) {
  for (const ZooEntry& entry : ZooModels()) {
    if (entry.name == name) return entry;
  }
  return Status::NotFound(fmt::format("unknown model '{}' (known: {})", name, KnownNames()));
}

Result<ModelDef> DefineModel(const ModelSpec& spec) {
  if (spec.num_classes < 1) {
    return Status::InvalidArgument(
        fmt::format("--num-classes must be at least 1, got {}", spec.num_classes));
  }
  for (const Registered& r : kZoo) {
    if (spec.name == r.name) return Define(r, spec.num_classes);
  }
  if (IsTorchScriptFile(spec.name)) {
    return Status::InvalidArgument(
        fmt::format("{}: a TorchScript model is not in the zoo: it is split by its graph "
                    "(model/torchscript.h), not by zoo blocks",
                    spec.name));
  }
  return Status::NotFound(fmt::format("unknown model '{}' (known: {})", spec.name, KnownNames()));
}

Status ValidateCuts(const ZooEntry& model, const std::vector<int64_t>& cuts) {
  int64_t previous = 0;
  for (int64_t cut : cuts) {
    if (cut < 1 || cut >= model.num_blocks) {
      return Status::InvalidArgument(fmt::format("cut {} out of range: {} has valid cuts 1..{}",
                                                 cut, model.name, model.num_blocks - 1));
    }
    if (cut <= previous) {
      return Status::InvalidArgument(
          fmt::format("cuts must increase strictly, got {} after {}", cut, previous));
    }
    previous = cut;
  }
  return Status::Ok();
}

}  // namespace paretopipe
