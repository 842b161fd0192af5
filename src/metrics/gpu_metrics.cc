// NVML through dlopen, and the utilization sampler.
#include "metrics/gpu_metrics.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <numeric>

namespace paretopipe {
namespace {

// The few NVML declarations used, from nvml.h's documented ABI: the header
// need not be installed for the library to be used.
using NvmlReturn = int;  // nvmlReturn_t; 0 is NVML_SUCCESS.
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};

struct Nvml {
  NvmlReturn (*init)() = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
  NvmlReturn (*handle_by_pci_bus_id)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  std::string error;  // Why NVML is not usable; empty when it is.
};

// Loaded and initialized once per process; never unloaded (nvmlShutdown at
// exit is optional and another thread may still be sampling).
const Nvml& LoadNvml() {
  static const Nvml nvml = [] {
    Nvml n;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      n.error =
          fmt::format("cannot load libnvidia-ml.so.1 (the NVIDIA driver's NVML): {}", dlerror());
      return n;
    }
    n.init = reinterpret_cast<NvmlReturn (*)()>(dlsym(lib, "nvmlInit_v2"));
    n.error_string = reinterpret_cast<const char* (*)(NvmlReturn)>(dlsym(lib, "nvmlErrorString"));
    n.handle_by_pci_bus_id = reinterpret_cast<NvmlReturn (*)(const char*, NvmlDevice*)>(
        dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2"));
    n.utilization = reinterpret_cast<NvmlReturn (*)(NvmlDevice, NvmlUtilization*)>(
        dlsym(lib, "nvmlDeviceGetUtilizationRates"));
    if (!n.init || !n.error_string || !n.handle_by_pci_bus_id || !n.utilization) {
      n.error =
          "libnvidia-ml.so.1 lacks nvmlInit_v2, nvmlDeviceGetHandleByPciBusId_v2 or "
          "nvmlDeviceGetUtilizationRates";
      return n;
    }
    if (NvmlReturn rc = n.init(); rc != 0) {
      n.error = fmt::format("nvmlInit_v2: {}", n.error_string(rc));
    }
    return n;
  }();
  return nvml;
}

}  // namespace

Result<UtilizationReader> NvmlUtilizationReader(const std::string& pci_bus_id) {
  const Nvml& nvml = LoadNvml();
  if (!nvml.error.empty()) return Status::Unavailable(nvml.error);
  NvmlDevice device = nullptr;
  if (NvmlReturn rc = nvml.handle_by_pci_bus_id(pci_bus_id.c_str(), &device); rc != 0) {
    return Status::Unavailable(
        fmt::format("NVML has no GPU at PCI {}: {}", pci_bus_id, nvml.error_string(rc)));
  }
  return UtilizationReader([&nvml, device]() -> std::optional<double> {
    NvmlUtilization u{};
    if (nvml.utilization(device, &u) != 0) return std::nullopt;
    return static_cast<double>(u.gpu);
  });
}

UtilizationSampler::UtilizationSampler(UtilizationReader reader, std::chrono::milliseconds period)
    : reader_(std::move(reader)), period_(period) {}

UtilizationSampler::~UtilizationSampler() {
  if (thread_.joinable()) Stop();
}

void UtilizationSampler::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
    samples_.clear();
  }
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
      lock.unlock();
      std::optional<double> v = reader_();
      lock.lock();
      if (v) samples_.push_back(*v);
    }
  });
}

double UtilizationSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (std::optional<double> v = reader_()) samples_.push_back(*v);
  if (samples_.empty()) return -1;
  return std::accumulate(samples_.begin(), samples_.end(), 0.0) / samples_.size();
}

}  // namespace paretopipe
