// The inputs `plan` and `validate` share: named device profiles and links.
#include "cli/plan_inputs.h"

#include <fmt/format.h>

namespace paretopipe::cli {

namespace {

// A name is used in --link keys (A-B, A>B) and tables: no separators of ours.
Status CheckDeviceName(const std::string& name, const std::string& spec) {
  if (name.empty() || name.find_first_of("=,> \t") != std::string::npos) {
    return Status::InvalidArgument(fmt::format(
        "--device {}: give NAME=PROFILE.json, NAME without '=', ',', '>' or spaces", spec));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<NamedProfile>> ReadNamedProfiles(const std::vector<std::string>& specs) {
  std::vector<NamedProfile> devices;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    const std::string name = spec.substr(0, eq);
    PP_RETURN_IF_ERROR(CheckDeviceName(name, spec));
    if (eq == std::string::npos || eq + 1 == spec.size()) {
      return Status::InvalidArgument(fmt::format(
          "--device {}: give NAME=PROFILE.json (written by `paretopipe profile`)", spec));
    }
    for (const NamedProfile& d : devices) {
      if (d.name == name) {
        return Status::InvalidArgument(fmt::format("--device {}: '{}' given twice", spec, name));
      }
    }
    Result<DeviceProfile> profile = ReadDeviceProfile(spec.substr(eq + 1));
    if (!profile.ok()) return profile.status().WithContext("--device " + name);
    if (!devices.empty()) PP_RETURN_IF_ERROR(CheckSameModel(devices.front().profile, *profile));
    devices.push_back(NamedProfile{name, std::move(*profile)});
  }
  return devices;
}

Result<LinkModel> ReadLinkValue(const std::string& value) {
  if (value == "none" || value.find('=') != std::string::npos) return ParseLinkSpec(value);
  return ReadLinkFile(value);
}

}  // namespace paretopipe::cli
