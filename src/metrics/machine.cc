#include "metrics/machine.h"

#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <torch/version.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "util/cpus.h"

namespace paretopipe {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::string fallback = "unknown";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string value = line.substr(line.find_first_not_of(" \t", colon + 1) == std::string::npos
                                        ? line.size()
                                        : line.find_first_not_of(" \t", colon + 1));
    if (key == "model name") return value;
    if ((key == "Model" || key == "Hardware") && !value.empty()) fallback = value;  // ARM boards.
  }
  return fallback;
}

int CollectLibrary(struct dl_phdr_info* info, size_t, void* data) {
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
    static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
  }
  return 0;
}

// Names the BLAS among the loaded libraries by its resolved file name
// (Debian's libblas.so.3 is a symlink chosen by update-alternatives), or
// returns "" when `basename` is no BLAS. GPU BLAS libraries (libcublas) are
// not the CPU BLAS and are ignored.
std::string BlasName(const std::string& path) {
  const std::string base = path.substr(path.rfind('/') + 1);
  auto starts = [&](const char* prefix) { return base.rfind(prefix, 0) == 0; };
  if (starts("libopenblas")) return "OpenBLAS";
  if (starts("libblis")) return "BLIS";
  if (starts("libmkl_rt") || starts("libmkl_core")) return "Intel MKL";
  if (starts("libsatlas") || starts("libtatlas")) return "ATLAS";
  if (starts("libblas.so")) {
    // Debian installs OpenBLAS's and BLIS's libblas.so.3 under their own directories.
    if (path.find("/openblas") != std::string::npos) return "OpenBLAS";
    if (path.find("/blis") != std::string::npos) return "BLIS";
    if (path.find("/atlas") != std::string::npos) return "ATLAS";
    return "reference BLAS (Netlib)";
  }
  return "";
}

void DetectBlas(MachineInfo& m) {
  std::vector<std::string> libs;
  dl_iterate_phdr(CollectLibrary, &libs);
  m.blas = "unknown (none loaded as a shared library)";
  for (const std::string& lib : libs) {
    char resolved[PATH_MAX];
    const std::string path = realpath(lib.c_str(), resolved) ? resolved : lib;
    const std::string name = BlasName(path);
    if (name.empty()) continue;
    const std::string dir = path.substr(0, path.rfind('/'));
    m.blas = name + " (" + dir.substr(dir.rfind('/') + 1) + ")";
    m.blas_path = path;
    if (name != "reference BLAS (Netlib)") return;  // An optimized one wins if several load.
  }
}

}  // namespace

MachineInfo DescribeMachine() {
  MachineInfo m;
  char host[256] = {};
  m.hostname = gethostname(host, sizeof(host) - 1) == 0 ? host : "unknown";
  m.cpu_model = CpuModel();
  m.logical_cpus = AvailableCpus();
  struct utsname u;
  if (uname(&u) == 0) {
    m.kernel = std::string(u.sysname) + " " + u.release;
    m.arch = u.machine;
  }
  DetectBlas(m);
  m.libtorch_version = TORCH_VERSION;
  m.compiler = __VERSION__;
#if defined(__clang__)
  m.compiler = "clang " + m.compiler;
#elif defined(__GNUC__)
  m.compiler = "gcc " + m.compiler;
#endif
  return m;
}

bool IsReferenceBlas(const MachineInfo& machine) { return machine.blas.rfind("reference", 0) == 0; }

nlohmann::ordered_json MachineToJson(const MachineInfo& m) {
  return {{"hostname", m.hostname},
          {"cpu_model", m.cpu_model},
          {"logical_cpus", m.logical_cpus},
          {"kernel", m.kernel},
          {"arch", m.arch},
          {"blas", m.blas},
          {"blas_path", m.blas_path},
          {"libtorch_version", m.libtorch_version},
          {"compiler", m.compiler}};
}

MachineInfo MachineFromJson(const nlohmann::json& j) {
  auto text = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>()
                                                 : std::string("unknown");
  };
  MachineInfo m;
  m.hostname = text("hostname");
  m.cpu_model = text("cpu_model");
  m.kernel = text("kernel");
  m.arch = text("arch");
  m.blas = text("blas");
  m.blas_path = text("blas_path");
  m.libtorch_version = text("libtorch_version");
  m.compiler = text("compiler");
  m.logical_cpus = j.contains("logical_cpus") && j["logical_cpus"].is_number_integer()
                       ? j["logical_cpus"].get<int>()
                       : 0;
  return m;
}

}  // namespace paretopipe
