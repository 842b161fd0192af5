// Matching state-dict keys to blocks.
#include "model/state_dict.h"
#include "model/torch_util.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unordered_map>

namespace paretopipe {
namespace {

// "a, b, c" or "a, b, c and 7 more".
std::string ListSome(const std::vector<std::string>& keys) {
  constexpr size_t kShown = 5;
  std::vector<std::string> shown(keys.begin(), keys.begin() + std::min(keys.size(), kShown));
  std::string out = fmt::format("{}", fmt::join(shown, ", "));
  if (keys.size() > kShown) out += fmt::format(" and {} more", keys.size() - kShown);
  return out;
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

constexpr int64_t kSkipped = -2;
constexpr int64_t kNoOwner = -1;

// Index of the block owning `key`, kSkipped for a key the model leaves out on
// purpose, kNoOwner otherwise.
int64_t OwningBlock(const ModelDef& def, const std::string& key) {
  for (size_t b = 0; b < def.blocks.size(); ++b) {
    for (const std::string& prefix : def.blocks[b].state_prefixes) {
      if (StartsWith(key, prefix + ".")) return static_cast<int64_t>(b);
    }
  }
  for (const std::string& prefix : def.skipped_state_prefixes) {
    if (StartsWith(key, prefix + ".")) return kSkipped;
  }
  return kNoOwner;
}

// `key` without the "module." that nn.DataParallel adds.
std::string WithoutModulePrefix(const std::string& key) {
  return StartsWith(key, "module.") ? key.substr(7) : key;
}

}  // namespace

KeyFilter StageKeys(const ModelDef& def, int64_t begin, int64_t end) {
  return [&def, begin, end](const std::string& key) {
    const int64_t owner = OwningBlock(def, WithoutModulePrefix(key));
    return owner >= begin && owner < end;
  };
}

Status LoadStateDict(const NamedTensors& file, const std::string& path, const ModelDef& def,
                     int64_t begin, const std::vector<Block>& blocks) {
  bool all_module_prefixed = !file.empty();
  for (const auto& [key, tensor] : file) all_module_prefixed &= StartsWith(key, "module.");

  std::unordered_map<std::string, const torch::Tensor*> by_key;
  std::vector<std::string> unexpected;
  const int64_t end = begin + static_cast<int64_t>(blocks.size());
  for (const auto& [raw_key, tensor] : file) {
    const std::string key = all_module_prefixed ? WithoutModulePrefix(raw_key) : raw_key;
    const int64_t owner = OwningBlock(def, key);
    if (owner == kNoOwner) {
      unexpected.push_back(key);
    } else if (owner >= begin && owner < end) {
      by_key[key] = &tensor;
    }
  }
  if (!unexpected.empty()) {
    return Status::InvalidArgument(fmt::format(
        "weights {}: {} unexpected key(s) for {}: {}", path, unexpected.size(), def.entry.name,
        ListSome(unexpected)));
  }

  std::vector<std::string> missing;
  torch::NoGradGuard no_grad;
  for (const Block& block : blocks) {
    for (auto& [key, target] : block->StateTensors()) {
      auto it = by_key.find(key);
      if (it == by_key.end()) {
        missing.push_back(key);
        continue;
      }
      const torch::Tensor& source = *it->second;
      if (!source.sizes().equals(target.sizes())) {
        return Status::InvalidArgument(fmt::format(
            "weights {}: key '{}' has shape {}, {} expects {}{}", path, key, ShapeString(source),
            def.entry.name, ShapeString(target),
            StartsWith(key, "fc.") || StartsWith(key, "classifier.")
                ? " (is --num-classes set to the classes the weights were trained for?)"
                : ""));
      }
      if (!source.is_floating_point() && target.is_floating_point()) {
        return Status::InvalidArgument(fmt::format("weights {}: key '{}' has dtype {}, expected a floating-point tensor",
                                                   path, key, std::string(c10::toString(source.scalar_type()))));
      }
      target.copy_(source);
    }
  }
  if (!missing.empty()) {
    return Status::InvalidArgument(fmt::format("weights {}: {} missing key(s) for {}: {}", path,
                                               missing.size(), def.entry.name, ListSome(missing)));
  }
  return Status::Ok();
}

}  // namespace paretopipe
