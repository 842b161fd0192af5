#include "sweep/device_limits.h"

#include <dirent.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace paretopipe {
namespace {

// The CFS period: quota is a share of it. 100 ms is the kernel's default.
constexpr int64_t kPeriodUs = 100000;

Result<int> ParseInt(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == text.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument(fmt::format("--local-device: {} '{}' is not a number", what, text));
}

Result<std::vector<int>> ParseCpus(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, '+')) {
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      PP_ASSIGN_OR_RETURN(int c, ParseInt(part, "cpu"));
      cpus.push_back(c);
      continue;
    }
    PP_ASSIGN_OR_RETURN(int a, ParseInt(part.substr(0, dash), "cpu"));
    PP_ASSIGN_OR_RETURN(int b, ParseInt(part.substr(dash + 1), "cpu"));
    if (b < a || b - a > 1024) {
      return Status::InvalidArgument(fmt::format("--local-device: cpus '{}' is not a range", part));
    }
    for (int c = a; c <= b; ++c) cpus.push_back(c);
  }
  if (cpus.empty()) return Status::InvalidArgument("--local-device: cpus: empty list");
  return cpus;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The directory under which to make groups, and whether it is cgroup v2.
struct Controller {
  std::string root;
  bool v2 = false;
};

Result<Controller> FindCpuController() {
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line, v1_root, v2_root;
  while (std::getline(mounts, line)) {
    // ... MOUNTPOINT ... - FSTYPE SOURCE OPTIONS
    std::istringstream f(line);
    std::string id, parent, dev, root, point, word;
    f >> id >> parent >> dev >> root >> point;
    while (f >> word && word != "-") {
    }
    std::string fstype, source, options;
    f >> fstype >> source >> options;
    if (fstype == "cgroup2" && v2_root.empty()) v2_root = point;
    if (fstype == "cgroup" && v1_root.empty()) {
      std::stringstream opts(options);
      std::string o;
      while (std::getline(opts, o, ',')) {
        if (o == "cpu") v1_root = point;
      }
    }
  }
  if (!v2_root.empty() &&
      ReadFile(v2_root + "/cgroup.controllers").find("cpu") != std::string::npos) {
    const std::string control = ReadFile(v2_root + "/cgroup.subtree_control");
    if (control.find("cpu") != std::string::npos ||
        WriteFile(v2_root + "/cgroup.subtree_control", "+cpu")) {
      return Controller{v2_root, true};
    }
  }
  if (!v1_root.empty() && access(v1_root.c_str(), W_OK) == 0) return Controller{v1_root, false};
  return Status::Unavailable(
      "--local-device quota: no writable cgroup CPU controller (cgroup v2 with cpu in "
      "cgroup.subtree_control, or a v1 cpu hierarchy); run as root, or leave quota out");
}

// Removes groups of ours whose process is gone (a sweep that was killed).
void RemoveStale(const std::string& root) {
  DIR* dir = opendir(root.c_str());
  if (!dir) return;
  while (dirent* e = readdir(dir)) {
    int pid = 0;
    if (std::sscanf(e->d_name, "paretopipe-%d-", &pid) == 1 && pid > 0 &&
        kill(pid, 0) != 0 && errno == ESRCH) {
      rmdir((root + "/" + e->d_name).c_str());
    }
  }
  closedir(dir);
}

}  // namespace

Result<DeviceLimits> ParseDeviceLimits(const std::string& text) {
  DeviceLimits d;
  const size_t eq = text.find('=');
  d.name = text.substr(0, eq);
  if (d.name.empty() || d.name.find_first_of(" ,:/") != std::string::npos) {
    return Status::InvalidArgument(fmt::format(
        "--local-device '{}': expected NAME=cpus:0,quota:0.25 (a name without spaces, commas, "
        "colons or slashes)",
        text));
  }
  if (eq == std::string::npos) return d;
  std::stringstream in(text.substr(eq + 1));
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t colon = item.find(':');
    const std::string key = item.substr(0, colon);
    const std::string value = colon == std::string::npos ? "" : item.substr(colon + 1);
    if (key == "cpus") {
      PP_ASSIGN_OR_RETURN(d.cpus, ParseCpus(value));
    } else if (key == "quota") {
      double q = 0;
      try {
        size_t used = 0;
        q = std::stod(value, &used);
        if (used != value.size()) q = -1;
      } catch (const std::exception&) {
        q = -1;
      }
      if (!(q >= 0.01 && q <= 1024)) {
        return Status::InvalidArgument(fmt::format(
            "--local-device {}: quota '{}' must be a number of CPUs within 0.01..1024 (0.25: a "
            "quarter of one CPU)",
            d.name, value));
      }
      d.cpu_quota = q;
    } else if (key == "threads") {
      PP_ASSIGN_OR_RETURN(d.threads, ParseInt(value, "threads"));
      if (d.threads < 1) return Status::InvalidArgument("--local-device: threads must be >= 1");
    } else if (key == "device") {
      // Checked by the worker, which says why a device is unusable.
      if (value.empty() || value.size() > 64) {
        return Status::InvalidArgument(
            fmt::format("--local-device {}: device needs a value (cpu, cuda or cuda:N)", d.name));
      }
      d.device = value;
    } else {
      return Status::InvalidArgument(fmt::format(
          "--local-device {}: unknown key '{}' (keys: cpus, quota, threads, device)", d.name, key));
    }
  }
  return d;
}

std::string FormatDeviceLimits(const DeviceLimits& d) {
  std::vector<std::string> parts;
  if (!d.cpus.empty()) parts.push_back(fmt::format("cpus {}", fmt::join(d.cpus, "+")));
  if (d.cpu_quota > 0) parts.push_back(fmt::format("quota {:g}", d.cpu_quota));
  if (d.threads > 0) parts.push_back(fmt::format("threads {}", d.threads));
  if (!d.device.empty()) parts.push_back(fmt::format("device {}", d.device));
  if (parts.empty()) return d.name;
  return fmt::format("{}: {}", d.name, fmt::join(parts, ", "));
}

Result<CpuQuotaGroup> CpuQuotaGroup::Create(const std::string& name, double cpu_quota) {
  PP_ASSIGN_OR_RETURN(Controller c, FindCpuController());
  RemoveStale(c.root);
  CpuQuotaGroup group;
  const std::string path = fmt::format("{}/paretopipe-{}-{}", c.root, getpid(), name);
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::Unavailable(fmt::format("cgroup {}: {}", path, strerror(errno)));
  }
  group.path_ = path;
  const int64_t quota_us = std::llround(cpu_quota * kPeriodUs);
  const bool ok = c.v2 ? WriteFile(path + "/cpu.max", fmt::format("{} {}", quota_us, kPeriodUs))
                       : WriteFile(path + "/cpu.cfs_period_us", std::to_string(kPeriodUs)) &&
                             WriteFile(path + "/cpu.cfs_quota_us", std::to_string(quota_us));
  if (!ok) return Status::Unavailable(fmt::format("cgroup {}: cannot set the CPU quota", path));
  return group;
}

CpuQuotaGroup::~CpuQuotaGroup() { Remove(); }

CpuQuotaGroup::CpuQuotaGroup(CpuQuotaGroup&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

CpuQuotaGroup& CpuQuotaGroup::operator=(CpuQuotaGroup&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

Status CpuQuotaGroup::Add(pid_t pid) const {
  if (!WriteFile(path_ + "/cgroup.procs", std::to_string(pid))) {
    return Status::Unavailable(fmt::format("cgroup {}: cannot add process {}", path_, pid));
  }
  return Status::Ok();
}

void CpuQuotaGroup::Remove() {
  if (path_.empty()) return;
  rmdir(path_.c_str());
  path_.clear();
}

}  // namespace paretopipe
