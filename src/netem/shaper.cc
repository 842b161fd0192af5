#include "netem/shaper.h"

#include <fmt/format.h>

#include "netem/command.h"
#include "netem/tc.h"

namespace paretopipe {
namespace {

// Shapes each interface's egress towards the other workers: an htb class
// fed by one u32 filter per destination, so control traffic to the
// orchestrator is never delayed (a delayed reply would bias the clock-offset
// estimate). Both shapers share it; they differ in who delays.
class TcShaper : public LinkShaper {
 protected:
  Status ApplyTc(const std::vector<ShapedInterface>& ifs, const NetCondition& c,
                 bool kernel_delay) {
    Status s = ApplyEach(ifs, c, kernel_delay);
    if (s.ok()) return s;
    // All or nothing: a condition half applied would be recorded as neither.
    for (const ShapedInterface& i : ifs) (void)TcClear(TcTarget{i.dev, i.netns_pid, i.mtu_bytes});
    return s;
  }

 private:
  Status ApplyEach(const std::vector<ShapedInterface>& ifs, const NetCondition& c,
                   bool kernel_delay) {
    // Under a rate, one segment per GSO packet: htb charges a 64 KiB GSO
    // packet at once (100 ms at 5 Mbit/s), so rates measured over short
    // spans read up to 20% high. Unshaped, GSO stays on: it triples what the
    // testbed carries. Connections made later (every run's) pick it up.
    const bool limit_gso = c.rate_bits_per_s > 0;
    if (gso_limited_ != limit_gso) {
      for (const ShapedInterface& i : ifs) {
        PP_RETURN_IF_ERROR(RunChecked(
            {"ip", "link", "set", "dev", i.dev, "gso_max_segs", limit_gso ? "1" : "65535"},
            i.netns_pid));
      }
      gso_limited_ = limit_gso;
    }
    for (size_t i = 0; i < ifs.size(); ++i) {
      TcTarget target{ifs[i].dev, ifs[i].netns_pid, ifs[i].mtu_bytes};
      TcOptions options;
      options.kernel_delay = kernel_delay;
      for (size_t j = c.forward_only ? i + 1 : 0; j < ifs.size(); ++j) {
        if (j != i) options.matches.push_back(fmt::format("ip dst {}/32", ifs[j].address));
      }
      if (options.matches.empty()) {
        PP_RETURN_IF_ERROR(TcClear(target));
        continue;
      }
      PP_RETURN_IF_ERROR(TcApply(target, c, options).WithContext(
          fmt::format("stage {} interface", i + 1)));
    }
    return Status::Ok();
  }

  // Whether GSO is limited on the interfaces; they start with the kernel's
  // default, unlimited. Set only once every interface has it.
  bool gso_limited_ = false;
};

std::string Join(const std::string& delay_part, const NetCondition& c) {
  std::string s;
  if (c.has_delay()) s = delay_part;
  if (c.rate_bits_per_s > 0) s += s.empty() ? "htb" : "+htb";
  return s.empty() ? "none" : s;
}

class KernelNetemShaper : public TcShaper {
 public:
  Status Apply(const std::vector<ShapedInterface>& ifs, const NetCondition& c) override {
    return ApplyTc(ifs, c, /*kernel_delay=*/true);
  }
  std::string Emulation(const NetCondition& c) const override { return Join("netem", c); }
};

class UserspaceDelayShaper : public TcShaper {
 public:
  explicit UserspaceDelayShaper(TapSwitch* s) : switch_(s) {}
  Status Apply(const std::vector<ShapedInterface>& ifs, const NetCondition& c) override {
    const Status s = ApplyTc(ifs, c, /*kernel_delay=*/false);
    switch_->SetCondition(s.ok() ? c : NetCondition{});
    return s;
  }
  std::string Emulation(const NetCondition& c) const override { return Join("userspace", c); }

 private:
  TapSwitch* switch_;
};

}  // namespace

std::unique_ptr<LinkShaper> MakeKernelNetemShaper() {
  return std::make_unique<KernelNetemShaper>();
}

std::unique_ptr<LinkShaper> MakeUserspaceDelayShaper(TapSwitch* tap_switch) {
  return std::make_unique<UserspaceDelayShaper>(tap_switch);
}

}  // namespace paretopipe
