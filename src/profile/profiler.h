// Per-block profiles: how long each block of a model takes on this machine,
// what it outputs and how much it computes. The JSON written here is what
// later stages (planning, prediction) read as a device profile; its format is
// documented in docs/profile-format.md.
//
// Owns: timing blocks in isolation and describing the result. Must not touch:
// transports, the store; it runs one process's blocks only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/machine.h"
#include "metrics/stats.h"
#include "model/zoo.h"
#include "util/status.h"

namespace paretopipe {

struct ProfileRequest {
  ModelSpec model;
  int64_t batch = 1;
  int64_t input_side_px = 0;  // Square input side; 0: the model's nominal size.
  int repeat = 20;         // Timed passes over every block.
  int warmup = 3;          // Untimed passes first (allocator, caches, thread pools).
  int threads = 0;         // Intra-op threads; 0: every CPU this process may use.
  std::string device = "cpu";
};

struct BlockProfile {
  int64_t index = 0;
  std::string name;
  Summary compute_ms;                 // Wall time of the block's forward, over `repeat` passes.
  std::vector<int64_t> output_shape;  // At the profiled batch.
  int64_t output_bytes = 0;
  int64_t macs = 0;                   // At the profiled batch.
  int64_t parameters = 0;
};

struct Profile {
  ProfileRequest request;  // With threads and input_side_px resolved.
  std::vector<int64_t> input_shape;
  MachineInfo machine;
  std::vector<BlockProfile> blocks;
  Summary total_ms;        // Sum over blocks, per pass: the whole model on one device.
};

// Builds the model on `request.device` and times every block: `warmup`
// untimed passes, then `repeat` passes in which each block's forward is timed
// alone on the steady clock (after a device synchronization on CUDA).
Result<Profile> RunProfile(const ProfileRequest& request);

// The versioned JSON form ("format": "paretopipe.profile", "version": 1), keys in
// the documented order (docs/profile-format.md).
nlohmann::ordered_json ProfileToJson(const Profile& profile);

}  // namespace paretopipe
