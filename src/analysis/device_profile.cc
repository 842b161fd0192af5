#include "analysis/device_profile.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace paretopipe {
namespace {

using json = nlohmann::json;

// j[a][b]... or nullptr when a key on the way is missing.
const json* Find(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return nullptr;
    at = &(*at)[key];
  }
  return at;
}

}  // namespace

Result<DeviceProfile> ParseDeviceProfile(const std::string& text, const std::string& source) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& what) {
    return Status::InvalidArgument(fmt::format("profile {}: {}", source, what));
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  const json* format = Find(j, {"format"});
  if (format == nullptr || *format != "paretopipe.profile") {
    return bad(
        "not a device profile (\"format\" is not \"paretopipe.profile\"; write one with "
        "`paretopipe profile MODEL -o FILE`)");
  }
  const json* version = Find(j, {"version"});
  if (version == nullptr || !version->is_number_integer() || *version != 1) {
    return bad(fmt::format("version {} is not one this build reads (1)",
                           version == nullptr ? "(missing)" : version->dump()));
  }
  DeviceProfile p;
  p.source = source;
  const json* model = Find(j, {"model", "name"});
  const json* batch = Find(j, {"settings", "batch"});
  const json* shape = Find(j, {"settings", "input_shape"});
  if (model == nullptr || !model->is_string()) return bad("\"model.name\" missing");
  if (batch == nullptr || !batch->is_number_integer() || batch->get<int64_t>() < 1) {
    return bad("\"settings.batch\" missing or not a positive integer");
  }
  if (shape == nullptr || !shape->is_array()) return bad("\"settings.input_shape\" missing");
  p.model = model->get<std::string>();
  p.batch = batch->get<int64_t>();
  for (const json& d : *shape) {
    if (!d.is_number_integer()) return bad("\"settings.input_shape\" is not a list of integers");
    p.input_shape.push_back(d.get<int64_t>());
  }
  if (const json* device = Find(j, {"settings", "device"}); device && device->is_string()) {
    p.device = device->get<std::string>();
  }
  if (const json* threads = Find(j, {"settings", "threads"});
      threads && threads->is_number_integer()) {
    p.threads = threads->get<int>();
  }
  if (const json* host = Find(j, {"machine", "hostname"}); host && host->is_string()) {
    p.hostname = host->get<std::string>();
  }
  const json* blocks = Find(j, {"blocks"});
  if (blocks == nullptr || !blocks->is_array() || blocks->empty()) return bad("no \"blocks\"");
  for (size_t i = 0; i < blocks->size(); ++i) {
    const json& b = (*blocks)[i];
    const json* index = Find(b, {"index"});
    const json* median = Find(b, {"compute_ms", "median"});
    const json* bytes = Find(b, {"output_bytes"});
    const json* name = Find(b, {"name"});
    if (index == nullptr || !index->is_number_integer() || index->get<int64_t>() != int64_t(i)) {
      return bad(fmt::format("blocks[{}] has index {}, expected {}", i,
                             index == nullptr ? "(missing)" : index->dump(), i));
    }
    if (median == nullptr || !median->is_number() || !std::isfinite(median->get<double>()) ||
        median->get<double>() < 0) {
      return bad(fmt::format("blocks[{}].compute_ms.median is {}; it must be a finite number >= 0",
                             i, median == nullptr ? "(missing)" : median->dump()));
    }
    if (bytes == nullptr || !bytes->is_number_integer() || bytes->get<int64_t>() < 0) {
      return bad(fmt::format("blocks[{}].output_bytes is {}; it must be an integer >= 0", i,
                             bytes == nullptr ? "(missing)" : bytes->dump()));
    }
    p.block_names.push_back(name != nullptr && name->is_string() ? name->get<std::string>()
                                                                 : std::string());
    p.block_compute_ms.push_back(median->get<double>());
    p.block_output_bytes.push_back(bytes->get<int64_t>());
  }
  return p;
}

Result<DeviceProfile> ReadDeviceProfile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("profile {}: cannot read it", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseDeviceProfile(text.str(), path);
}

Status CheckSameModel(const DeviceProfile& reference, const DeviceProfile& other) {
  auto differ = [&](const std::string& what, const std::string& mine, const std::string& theirs) {
    return Status::InvalidArgument(
        fmt::format("profile {} is of {} {}, but profile {} is of {} {}; profile every device "
                    "with the same model and --batch",
                    other.source, what, theirs, reference.source, what, mine));
  };
  if (other.model != reference.model) return differ("model", reference.model, other.model);
  if (other.batch != reference.batch) {
    return differ("batch", std::to_string(reference.batch), std::to_string(other.batch));
  }
  if (other.input_shape != reference.input_shape) {
    return differ("input", fmt::format("{}", fmt::join(reference.input_shape, "x")),
                  fmt::format("{}", fmt::join(other.input_shape, "x")));
  }
  if (other.block_output_bytes.size() != reference.block_output_bytes.size()) {
    return differ("blocks", std::to_string(reference.block_output_bytes.size()),
                  std::to_string(other.block_output_bytes.size()));
  }
  for (size_t i = 0; i < other.block_output_bytes.size(); ++i) {
    if (other.block_output_bytes[i] != reference.block_output_bytes[i] ||
        other.block_names[i] != reference.block_names[i]) {
      return differ(
          fmt::format("block {}", i),
          fmt::format("'{}' ({} bytes)", reference.block_names[i], reference.block_output_bytes[i]),
          fmt::format("'{}' ({} bytes)", other.block_names[i], other.block_output_bytes[i]));
    }
  }
  return Status::Ok();
}

}  // namespace paretopipe
