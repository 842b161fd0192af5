// GPU utilization during a pass, from NVML (the library behind nvidia-smi).
// NVML is loaded at run time (dlopen of libnvidia-ml.so.1, which the NVIDIA
// driver installs): never a build or link dependency, and a worker without it
// records no utilization instead of failing.
//
// Owns: loading NVML, sampling one GPU's utilization on a thread.
// Must not touch: LibTorch, CUDA streams, the stage loop.
// Thread safety: a UtilizationSampler is used from one thread at a time;
// its sampling thread is its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "util/status.h"

namespace paretopipe {

// Reads the GPU's utilization now, in percent; nullopt when the read failed.
using UtilizationReader = std::function<std::optional<double>()>;

// A reader of NVML's utilization of the GPU at `pci_bus_id` ("00000000:65:00.0",
// as CUDA's and NVML's PCI ids agree where device indices may not): NVML's
// nvmlDeviceGetUtilizationRates().gpu, the percent of time over its last
// sample period (1/6 s to 1 s, by GPU) in which one or more kernels ran.
// Unavailable, saying why, when NVML cannot be loaded or has no such GPU.
Result<UtilizationReader> NvmlUtilizationReader(const std::string& pci_bus_id);

// Calls a reader every `period` between Start() and Stop() and averages what
// it read.
class UtilizationSampler {
 public:
  UtilizationSampler(UtilizationReader reader, std::chrono::milliseconds period);
  ~UtilizationSampler();
  UtilizationSampler(const UtilizationSampler&) = delete;
  UtilizationSampler& operator=(const UtilizationSampler&) = delete;

  // Starts sampling (after a Stop, afresh). REQUIRES: not started.
  void Start();
  // Stops sampling and returns the mean of this interval's samples, taking
  // one more at the end (so a pass shorter than a period still has one);
  // -1 when every read failed. REQUIRES: started.
  double Stop();

 private:
  UtilizationReader reader_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<double> samples_;
  std::thread thread_;
};

}  // namespace paretopipe
