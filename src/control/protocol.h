// The orchestrator-worker protocol: JSON control messages carried in kControl
// frames on one TCP connection (docs/protocol.md lists every message).
//
// Owns: the JSON form of what crosses the control channel (stage
// configurations, traces, machine descriptions). Must not touch: sockets
// (callers send the text), models.
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "metrics/machine.h"
#include "metrics/run_record.h"
#include "profile/profiler.h"
#include "runtime/stage.h"
#include "util/status.h"

namespace paretopipe {

// 2: backends, link timings in traces. 3: link probes. 4: input sets, TorchScript
// modules. 5: heartbeats, authenticated hellos. 6: GPU timings in traces
// (device compute and copies per batch, device memory and utilization).
inline constexpr int kProtocolVersion = 6;

// Hello roles: the first frame on every connection to a worker says which.
inline constexpr const char* kRoleControl = "control";  // An orchestrator.
inline constexpr const char* kRoleData = "data";        // The previous stage's activations.
inline constexpr const char* kRoleCredit = "credit";    // The sink's credits, to the source.
inline constexpr const char* kRoleProbe = "probe";      // The previous stage measuring the link.

nlohmann::json ToJson(const StageConfig& config);
// Parses and range-checks a configuration from the network: every field of
// its type (an integer field refuses floats), counts and sizes within the
// limits docs/protocol.md lists ("Limits"). InvalidArgument names the field.
// The block range is checked here for its form only (begin >= 0, end > begin
// or -1); against the model by Segment::CheckRange.
Result<StageConfig> StageConfigFromJson(const nlohmann::json& j);

// The fields of a "profile" request: the zoo model (name, num_classes, seed),
// batch, input_side_px, repeat and warmup. Not the weights (a block's time does
// not depend on their values), nor threads and device: those are the worker's.
nlohmann::json ToJson(const ProfileRequest& request);
// Parses and range-checks a "profile" request like StageConfigFromJson (limits
// in docs/protocol.md). Leaves threads and device at their defaults, for the
// worker to fill in; whether model.name is a zoo model is the worker's check.
Result<ProfileRequest> ProfileRequestFromJson(const nlohmann::json& j);

nlohmann::json ToJson(const StageTrace& trace);
// Like StageConfigFromJson, for a stage's trace (a worker's reply).
Result<StageTrace> StageTraceFromJson(const nlohmann::json& j);

// The reply to a failed request: {"ok": false, "error": message, "code": name},
// the code as "invalid_argument", "not_found", "io_error", "unavailable" or
// "internal", so the orchestrator can tell a stage's own failure from the
// "peer closed" its neighbours see after it.
nlohmann::json ErrorReply(const Status& status);
// The status a reply with "ok": false stands for, its message prefixed with
// "`label`: ". A reply without a known code (an older worker) is Unavailable.
Status StatusOfErrorReply(const nlohmann::json& reply, const std::string& label);

// Parses `text` as a JSON object; errors name `what`. Refuses text over
// kMaxJsonObjectBytes and arrays or objects nested deeper than
// kMaxJsonDepth: no control message needs either, and a megabyte of "[[[["
// would otherwise cost a gigabyte of memory.
inline constexpr size_t kMaxJsonObjectBytes = 16 << 20;  // = kMaxControlPayloadBytes.
inline constexpr int kMaxJsonDepth = 32;
Result<nlohmann::json> ParseJsonObject(const std::string& text, const std::string& what);

}  // namespace paretopipe
