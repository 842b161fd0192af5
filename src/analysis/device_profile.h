// A DeviceProfile is what the planner (analysis/planner.h) needs from the
// JSON that `paretopipe profile` writes (docs/profile-format.md): per block,
// its median compute time on one device and the bytes it outputs, at the
// profile's batch size.
//
// Owns: reading that JSON and checking that several profiles describe the
// same model at the same batch. Must not touch: running or timing a model
// (profile/profiler.h writes the file; this reads it without LibTorch).
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

struct DeviceProfile {
  std::string source;                       // The file (or name) it was read from, for messages.
  std::string model;                        // model.name.
  int64_t batch = 0;                        // settings.batch.
  std::vector<int64_t> input_shape;         // settings.input_shape.
  std::string device;                       // settings.device: cpu, cuda, cuda:N.
  int threads = 0;                          // settings.threads.
  std::string hostname;                     // machine.hostname.
  std::vector<std::string> block_names;     // blocks[].name.
  std::vector<double> block_compute_ms;     // blocks[].compute_ms.median, per batch.
  std::vector<int64_t> block_output_bytes;  // blocks[].output_bytes, per batch.
};

// Parses a profile's JSON text. Refuses, naming `source` and the field, a
// text that is not JSON, whose "format" is not "paretopipe.profile", whose
// "version" is not 1, that has no blocks, whose blocks are not in index
// order, or whose median times or output bytes are missing, negative or not
// finite.
Result<DeviceProfile> ParseDeviceProfile(const std::string& text, const std::string& source);

// ParseDeviceProfile of the file at `path` (its `source`); IoError when it
// cannot be read.
Result<DeviceProfile> ReadDeviceProfile(const std::string& path);

// OK when `other` describes the same model, input shape (so batch) and blocks
// (count and output bytes) as `reference`; otherwise InvalidArgument in one
// line naming both sources and what differs.
Status CheckSameModel(const DeviceProfile& reference, const DeviceProfile& other);

}  // namespace paretopipe
