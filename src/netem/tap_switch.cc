#include "netem/tap_switch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <queue>
#include <random>

namespace paretopipe {
namespace {

// Larger than any MTU the testbed sets, so a read never truncates a frame.
constexpr size_t kMaxFrameBytes = 65536 + 64;
// Frames read from one port before the others get a turn.
constexpr int kReadBatch = 64;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

uint64_t Mac(const uint8_t* p) {
  uint64_t m = 0;
  for (int i = 0; i < 6; ++i) m = (m << 8) | p[i];
  return m;
}

struct Held {
  int64_t release_ns;
  uint64_t seq;  // Ties keep arrival order.
  int out;
  std::vector<uint8_t> frame;
  bool operator>(const Held& o) const {
    return release_ns != o.release_ns ? release_ns > o.release_ns : seq > o.seq;
  }
};

}  // namespace

struct TapSwitch::Impl {
  struct Port {
    int id = -1;
    int fd = -1;
    std::string name;
  };
  std::vector<Port> ports;  // Indexed by port id; fd -1 where none or gone.
  int epoll_fd = -1, timer_fd = -1, stop_fd = -1;
  std::thread thread;

  std::mutex mu;  // Guards condition.
  NetCondition condition;
  // Counted per frame by the forwarding thread: atomics, not the mutex.
  std::atomic<int64_t> forwarded{0}, delayed{0}, lost{0}, dropped{0};

  // Only the forwarding thread touches these.
  std::map<uint64_t, int> mac_to_port;
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held;
  std::map<std::pair<int, int>, int64_t> last_release_ns;  // Per (in, out): no reordering.
  uint64_t seq = 0;
  std::mt19937_64 random{0x7061726574ULL};
  int64_t armed_ns = 0;

  ~Impl() {
    if (thread.joinable()) {
      const uint64_t one = 1;
      (void)!write(stop_fd, &one, sizeof(one));
      thread.join();
    }
    for (Port& p : ports) {
      if (p.fd >= 0) close(p.fd);
    }
    for (int fd : {epoll_fd, timer_fd, stop_fd}) {
      if (fd >= 0) close(fd);
    }
  }


  void ClosePort(int id) {
    Port& p = ports[id];
    if (p.fd < 0) return;
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, p.fd, nullptr);
    close(p.fd);
    p.fd = -1;
  }

  void Write(int out, const uint8_t* data, size_t len) {
    if (out < 0 || out >= static_cast<int>(ports.size()) || ports[out].fd < 0) {
      dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // A full interface queue drops the frame, as a NIC's ring would, and so
    // does an interface that is down (EIO: a worker's, until it is placed);
    // TCP retransmits. EBADFD: the interface went with its namespace.
    if (write(ports[out].fd, data, len) < 0) {
      if (errno == EBADFD) ClosePort(out);
      dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    forwarded.fetch_add(1, std::memory_order_relaxed);
  }

  void Forward(int in, const uint8_t* data, size_t len, const NetCondition& c) {
    if (len < 14) return;
    const uint64_t dst = Mac(data), src = Mac(data + 6);
    if (!(data[6] & 1)) mac_to_port[src] = in;
    std::vector<int> outs;
    auto known = mac_to_port.find(dst);
    if (!(data[0] & 1) && known != mac_to_port.end()) {
      if (known->second != in) outs.push_back(known->second);
    } else {
      for (const Port& p : ports) {
        if (p.fd >= 0 && p.id != in) outs.push_back(p.id);
      }
    }
    const int64_t now = MonotonicNs();
    for (int out : outs) {
      const bool worker_link = in != kHostPort && out != kHostPort;
      const bool shaped = worker_link && c.has_delay() && (!c.forward_only || out > in);
      if (!shaped) {
        Write(out, data, len);
        continue;
      }
      if (c.loss_percent > 0 &&
          std::uniform_real_distribution<double>(0, 100)(random) < c.loss_percent) {
        lost.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      int64_t delay_ns = c.delay.count() * 1000;
      if (c.jitter.count() > 0) {
        const int64_t j = c.jitter.count() * 1000;
        delay_ns += std::uniform_int_distribution<int64_t>(-j, j)(random);
      }
      if (delay_ns <= 0) {
        Write(out, data, len);
        continue;
      }
      int64_t& last = last_release_ns[{in, out}];
      const int64_t release = std::max(now + delay_ns, last);
      last = release;
      held.push(Held{release, seq++, out, std::vector<uint8_t>(data, data + len)});
      delayed.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void ReleaseDue() {
    const int64_t now = MonotonicNs();
    while (!held.empty() && held.top().release_ns <= now) {
      const Held& h = held.top();
      Write(h.out, h.frame.data(), h.frame.size());
      held.pop();
    }
    const int64_t next = held.empty() ? 0 : held.top().release_ns;
    if (next == armed_ns) return;
    itimerspec spec{};
    spec.it_value.tv_sec = next / 1000000000;
    spec.it_value.tv_nsec = next % 1000000000;
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr);  // 0 disarms.
    armed_ns = next;
  }

  void Loop() {
    std::vector<uint8_t> buf(kMaxFrameBytes);
    epoll_event events[16];
    for (;;) {
      const int n = epoll_wait(epoll_fd, events, 16, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
      NetCondition c;
      {
        std::lock_guard<std::mutex> lock(mu);
        c = condition;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd) return;
        if (fd == timer_fd) {
          uint64_t expirations;
          (void)!read(timer_fd, &expirations, sizeof(expirations));
          armed_ns = 0;
          continue;
        }
        int in = -1;
        for (const Port& p : ports) {
          if (p.fd == fd) in = p.id;
        }
        if (in < 0) continue;
        for (int k = 0; k < kReadBatch; ++k) {
          const ssize_t len = read(fd, buf.data(), buf.size());
          if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (len < 0 && errno == EINTR) continue;
          if (len <= 0) {  // The interface is gone (its namespace ended).
            ClosePort(in);
            break;
          }
          Forward(in, buf.data(), static_cast<size_t>(len), c);
        }
      }
      ReleaseDue();
    }
  }
};

TapSwitch::TapSwitch() : impl_(std::make_unique<Impl>()) {}
TapSwitch::~TapSwitch() = default;

Status TapSwitch::AddPort(int port, const std::string& name) {
  if (port < 0 || port > 255) return Status::InvalidArgument(fmt::format("port {}", port));
  if (name.size() >= IFNAMSIZ) {
    return Status::InvalidArgument(fmt::format("interface name '{}' too long", name));
  }
  const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return Status::Unavailable(fmt::format(
        "/dev/net/tun: {} (the testbed needs the tun driver and root)", strerror(errno)));
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    const int err = errno;
    close(fd);
    return Status::Unavailable(fmt::format("creating TAP interface {}: {}", name, strerror(err)));
  }
  if (static_cast<int>(impl_->ports.size()) <= port) impl_->ports.resize(port + 1);
  for (int i = 0; i < static_cast<int>(impl_->ports.size()); ++i) impl_->ports[i].id = i;
  impl_->ports[port].fd = fd;
  impl_->ports[port].name = name;
  return Status::Ok();
}

Status TapSwitch::Start() {
  Impl& im = *impl_;
  im.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  im.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  im.stop_fd = eventfd(0, EFD_CLOEXEC);
  if (im.epoll_fd < 0 || im.timer_fd < 0 || im.stop_fd < 0) {
    return Status::IoError(fmt::format("switch: {}", strerror(errno)));
  }
  std::vector<int> fds = {im.stop_fd, im.timer_fd};
  for (const Impl::Port& p : im.ports) {
    if (p.fd >= 0) fds.push_back(p.fd);
  }
  for (int fd : fds) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(im.epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      return Status::IoError(fmt::format("switch: epoll: {}", strerror(errno)));
    }
  }
  im.thread = std::thread([&im] { im.Loop(); });
  return Status::Ok();
}

void TapSwitch::SetCondition(const NetCondition& condition) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->condition = condition;
}

TapSwitch::Counters TapSwitch::counters() const {
  const Impl& im = *impl_;
  return Counters{im.forwarded.load(), im.delayed.load(), im.lost.load(), im.dropped.load()};
}

}  // namespace paretopipe
