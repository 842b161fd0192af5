// What `paretopipe plan` and `paretopipe validate` read from their command
// lines: devices named by their profiles (`--device NAME=PROFILE.json`) and
// link models given as a spec or a link.json file.
#pragma once

#include <string>
#include <vector>

#include "analysis/device_profile.h"
#include "analysis/link_model.h"
#include "util/status.h"

namespace paretopipe::cli {

struct NamedProfile {
  std::string name;
  DeviceProfile profile;
};

// Reads each NAME=PROFILE.json: names without '=', ',', '>' or spaces, each
// once; every profile of the same model, batch and blocks as the first.
// InvalidArgument or IoError in one line naming the --device.
Result<std::vector<NamedProfile>> ReadNamedProfiles(const std::vector<std::string>& specs);

// A link given as a spec (it has '=', or is "none") or as a link.json path.
Result<LinkModel> ReadLinkValue(const std::string& value);

}  // namespace paretopipe::cli
