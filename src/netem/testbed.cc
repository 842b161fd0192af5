#include "netem/testbed.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "netem/command.h"
#include "netem/tc.h"

namespace paretopipe {
namespace {

// An Ethernet MTU, as a Raspberry Pi's link has: TCP behaves as on the
// device (segment sizes, the number of packets a delay line holds).
constexpr int kMtuBytes = 1500;
constexpr const char* kWorkerDev = "pp0";
// Serializes the choice of a subnet between testbeds starting at once.
constexpr const char* kLockPath = "/run/lock/paretopipe-testbed.lock";

bool SubnetInUse(int n) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool used = false;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    const uint32_t ip = ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
    if ((ip >> 8) == ((10u << 16) | (213u << 8) | static_cast<uint32_t>(n))) used = true;
  }
  freeifaddrs(list);
  return used;
}

class LockFile {
 public:
  LockFile() {
    fd_ = open(kLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~LockFile() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<Testbed>> Testbed::Create(int workers) {
  if (!HaveNetAdmin()) {
    return Status::InvalidArgument(
        "--testbed netns needs root (CAP_NET_ADMIN) to create network namespaces and "
        "interfaces; run as root or with sudo");
  }
  if (workers < 2 || workers > 200) {
    return Status::InvalidArgument(fmt::format("testbed: {} workers (2..200)", workers));
  }
  std::unique_ptr<Testbed> bed(new Testbed());
  bed->workers_ = workers;
  bed->worker_pids_.assign(workers, 0);
  bed->host_dev_ = fmt::format("pph{}", getpid());
  LockFile lock;
  int n = static_cast<int>(getpid() % 250) + 1;
  for (int tries = 0; SubnetInUse(n); ++tries) {
    if (tries == 250) return Status::Unavailable("testbed: every 10.213.N.0/24 is in use");
    n = n % 250 + 1;
  }
  bed->subnet_ = n;
  PP_RETURN_IF_ERROR(bed->switch_.AddPort(TapSwitch::kHostPort, bed->host_dev_));
  for (int i = 0; i < workers; ++i) {
    PP_RETURN_IF_ERROR(bed->switch_.AddPort(1 + i, fmt::format("ppw{}_{}", getpid(), i)));
  }
  const std::string host = bed->host_dev_;
  PP_RETURN_IF_ERROR(RunChecked({"ip", "link", "set", "dev", host, "mtu",
                                 std::to_string(kMtuBytes), "addrgenmode", "none"}));
  PP_RETURN_IF_ERROR(
      RunChecked({"ip", "addr", "add", fmt::format("10.213.{}.1/24", n), "dev", host}));
  PP_RETURN_IF_ERROR(RunChecked({"ip", "link", "set", "dev", host, "up"}));
  PP_ASSIGN_OR_RETURN(bed->kernel_netem_, KernelHasNetem(TcTarget{host, 0, kMtuBytes}));
  if (bed->kernel_netem_) {
    bed->shaper_ = MakeKernelNetemShaper();
  } else {
    bed->shaper_ = MakeUserspaceDelayShaper(&bed->switch_);
  }
  PP_RETURN_IF_ERROR(bed->switch_.Start());
  return bed;
}

Testbed::~Testbed() = default;

std::string Testbed::WorkerAddress(int index) const {
  return fmt::format("10.213.{}.{}", subnet_, index + 2);
}

Status Testbed::AttachWorker(int index, pid_t pid) {
  if (index < 0 || index >= workers_) return Status::InvalidArgument("testbed: worker index");
  const std::string tap = fmt::format("ppw{}_{}", getpid(), index);
  PP_RETURN_IF_ERROR(
      RunChecked({"ip", "link", "set", "dev", tap, "netns", std::to_string(pid)}));
  const std::vector<std::vector<std::string>> inside = {
      {"ip", "link", "set", "dev", tap, "name", kWorkerDev},
      {"ip", "link", "set", "dev", kWorkerDev, "mtu", std::to_string(kMtuBytes), "addrgenmode",
       "none"},
      {"ip", "addr", "add", WorkerAddress(index) + "/24", "dev", kWorkerDev},
      {"ip", "link", "set", "dev", kWorkerDev, "up"},
      {"ip", "link", "set", "dev", "lo", "up"}};
  for (const auto& cmd : inside) {
    PP_RETURN_IF_ERROR(RunChecked(cmd, pid).WithContext(fmt::format("testbed worker {}", index)));
  }
  worker_pids_[index] = pid;
  return Status::Ok();
}

Status Testbed::Apply(const NetCondition& condition) {
  std::vector<ShapedInterface> ifs;
  for (int i = 0; i < workers_; ++i) {
    if (worker_pids_[i] == 0) {
      return Status::Internal(fmt::format("testbed: worker {} not attached", i));
    }
    ifs.push_back(ShapedInterface{worker_pids_[i], kWorkerDev, WorkerAddress(i), kMtuBytes});
  }
  const Status s = shaper_->Apply(ifs, condition);
  condition_ = s.ok() ? condition : NetCondition{};
  return s;
}

std::string Testbed::emulation() const { return shaper_->Emulation(condition_); }

}  // namespace paretopipe
