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

#include "model/device.h"

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

// Finds the BLAS among the loaded libraries and names it from its resolved
// path (Debian's libblas.so.3 is a symlink chosen by update-alternatives).
void DetectBlas(MachineInfo& m) {
  std::vector<std::string> libs;
  dl_iterate_phdr(CollectLibrary, &libs);
  m.blas = "unknown";
  for (const std::string& lib : libs) {
    char resolved[PATH_MAX];
    const std::string path = realpath(lib.c_str(), resolved) ? resolved : lib;
    const bool is_blas = path.find("blas") != std::string::npos || path.find("mkl") != std::string::npos;
    if (!is_blas || path.find("cblas") != std::string::npos) continue;
    m.blas_path = path;
    if (path.find("openblas") != std::string::npos) {
      const auto dir_end = path.rfind('/');
      const auto dir_begin = path.rfind('/', dir_end - 1);
      m.blas = "OpenBLAS (" + path.substr(dir_begin + 1, dir_end - dir_begin - 1) + ")";
    } else if (path.find("blis") != std::string::npos) {
      m.blas = "BLIS";
    } else if (path.find("mkl") != std::string::npos) {
      m.blas = "Intel MKL";
    } else if (path.find("atlas") != std::string::npos) {
      m.blas = "ATLAS";
    } else {
      m.blas = "reference BLAS (Netlib)";
    }
    if (path.find("openblas") != std::string::npos) return;  // Prefer it if several match.
  }
}

}  // namespace

MachineInfo DescribeMachine() {
  MachineInfo m;
  char host[256] = {};
  m.hostname = gethostname(host, sizeof(host) - 1) == 0 ? host : "unknown";
  m.cpu_model = CpuModel();
  m.logical_cpus = DefaultThreads();
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

bool IsReferenceBlas(const MachineInfo& machine) {
  return machine.blas.rfind("reference", 0) == 0;
}

}  // namespace paretopipe
