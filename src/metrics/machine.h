// The machine a measurement ran on, recorded beside every number so that
// profiles from different devices are never confused.
//
// Owns: reading facts about this machine (CPU, kernel, loaded BLAS, build).
// Must not touch: models, timing; it measures nothing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace paretopipe {

struct MachineInfo {
  std::string hostname;
  std::string cpu_model;  // /proc/cpuinfo "model name" (or "Model"/"Hardware" on ARM).
  int logical_cpus = 0;   // CPUs this process may run on (its affinity mask).
  std::string kernel;     // uname -sr.
  std::string arch;       // uname -m.
  std::string blas;       // The BLAS library actually loaded, e.g. "OpenBLAS (openblas-pthread)".
  std::string blas_path;  // Its resolved path.
  std::string libtorch_version;
  std::string compiler;
};

// Reads the machine description. Never fails: unknown fields are "unknown".
MachineInfo DescribeMachine();

// The machine as a JSON object (in profiles, and from worker to orchestrator).
nlohmann::ordered_json MachineToJson(const MachineInfo& machine);

// Reads MachineToJson's object; missing or mistyped fields become "unknown" (0
// CPUs): a description from another machine never fails a run.
MachineInfo MachineFromJson(const nlohmann::json& j);

// True when the loaded BLAS is the slow reference implementation.
bool IsReferenceBlas(const MachineInfo& machine);

}  // namespace paretopipe
