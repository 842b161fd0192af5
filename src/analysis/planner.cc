#include "analysis/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

namespace paretopipe {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The stage range that `problem` allows, with max_stages resolved.
struct StageRange {
  int min = 1, max = 1;
};

StageRange StagesOf(const PlanProblem& p) {
  const int devices = static_cast<int>(p.compute_ms.size());
  const int blocks = static_cast<int>(p.block_output_bytes.size());
  int max = p.max_stages == 0 ? devices : p.max_stages;
  max = std::min({max, devices, blocks});
  return StageRange{p.min_stages, max};
}

// Every number a prediction is made of, precomputed once. Predict, the DP
// and the brute force all go through these functions, so that one placement
// gets bit-identical numbers whichever computes it.
class Arithmetic {
 public:
  explicit Arithmetic(const PlanProblem& p)
      : n_(static_cast<int>(p.block_output_bytes.size())),
        devices_(static_cast<int>(p.compute_ms.size())),
        window_(p.window),
        prefix_(static_cast<size_t>(devices_) * (n_ + 1), 0.0),
        transfer_(static_cast<size_t>(devices_) * devices_ * (n_ + 1), 0.0),
        hop_(transfer_.size(), 0.0),
        credit_(static_cast<size_t>(devices_) * devices_, 0.0) {
    for (int d = 0; d < devices_; ++d) {
      for (int b = 0; b < n_; ++b) {
        prefix_[d * (n_ + 1) + b + 1] = prefix_[d * (n_ + 1) + b] + p.compute_ms[d][b];
      }
    }
    for (int a = 0; a < devices_; ++a) {
      for (int b = 0; b < devices_; ++b) {
        if (a == b) continue;
        const LinkModel& link = p.links[a][b];
        credit_[a * devices_ + b] = link.TimeMs(0);
        for (int cut = 1; cut < n_; ++cut) {
          const double t = link.TransferMs(p.block_output_bytes[cut - 1]);
          transfer_[HopIndex(a, b, cut)] = t;
          hop_[HopIndex(a, b, cut)] = t + link.delay_ms;
        }
      }
    }
  }

  int blocks() const { return n_; }
  int devices() const { return devices_; }

  // C: blocks [from, to) on device d.
  double Compute(int d, int from, int to) const {
    return prefix_[d * (n_ + 1) + to] - prefix_[d * (n_ + 1) + from];
  }
  // T: the transfer of cut `cut` from device a to b.
  double Transfer(int a, int b, int cut) const { return transfer_[HopIndex(a, b, cut)]; }
  // T + D, as latency adds it.
  double Hop(int a, int b, int cut) const { return hop_[HopIndex(a, b, cut)]; }
  // R: the credit from the sink (last) back to the source (first).
  double Credit(int last, int first) const {
    return last == first ? 0.0 : credit_[last * devices_ + first];
  }
  double Period(double latency_ms, double bottleneck_ms, int last, int first) const {
    return std::max(bottleneck_ms, (latency_ms + Credit(last, first)) / window_);
  }

 private:
  size_t HopIndex(int a, int b, int cut) const {
    return (static_cast<size_t>(a) * devices_ + b) * (n_ + 1) + cut;
  }

  int n_, devices_, window_;
  std::vector<double> prefix_;    // [d][j]: blocks [0, j) on d.
  std::vector<double> transfer_;  // [a][b][cut].
  std::vector<double> hop_;       // [a][b][cut].
  std::vector<double> credit_;    // [last][first].
};

// The prediction of a valid placement.
PlanPrediction PredictValid(const PlanProblem& problem, const Arithmetic& a,
                            const Placement& placement) {
  PlanPrediction out;
  out.placement = placement;
  const int stages = static_cast<int>(placement.devices.size());
  double latency = 0, bottleneck = 0;
  for (int i = 0; i < stages; ++i) {
    const int from = i == 0 ? 0 : placement.cuts[i - 1];
    const int to = i + 1 == stages ? a.blocks() : placement.cuts[i];
    const int d = placement.devices[i];
    if (i > 0) {
      const int prev = placement.devices[i - 1];
      const double t = a.Transfer(prev, d, from);
      out.hop_transfer_ms.push_back(t);
      out.hop_delay_ms.push_back(problem.links[prev][d].delay_ms);
      out.hop_bytes.push_back(problem.block_output_bytes[from - 1]);
      latency = latency + a.Hop(prev, d, from);
      bottleneck = std::max(bottleneck, t);
    }
    const double c = a.Compute(d, from, to);
    out.stage_compute_ms.push_back(c);
    latency = latency + c;
    bottleneck = std::max(bottleneck, c);
  }
  const int first = placement.devices.front(), last = placement.devices.back();
  out.latency_ms = latency;
  out.credit_return_ms = a.Credit(last, first);
  out.period_ms = a.Period(latency, bottleneck, last, first);
  out.throughput_ips =
      out.period_ms > 0 ? static_cast<double>(problem.batch) * 1000.0 / out.period_ms : kInf;
  out.bottleneck = Bottleneck{Bottleneck::Kind::kWindow, 0};
  bool found = false;
  for (int i = 0; i < stages && !found; ++i) {
    if (out.stage_compute_ms[i] == out.period_ms) {
      out.bottleneck = Bottleneck{Bottleneck::Kind::kStage, i};
      found = true;
    }
  }
  for (int i = 0; i + 1 < stages && !found; ++i) {
    if (out.hop_transfer_ms[i] == out.period_ms) {
      out.bottleneck = Bottleneck{Bottleneck::Kind::kHop, i};
      found = true;
    }
  }
  // Queueing: K batches circulate; in front of a bottleneck after the
  // source's compute started, each waits its turn, so a batch's latency is
  // its share of the cycle, K * period - R. In front of the source's compute
  // the wait is before latency starts.
  const bool source_bound =
      out.bottleneck.kind == Bottleneck::Kind::kStage && out.bottleneck.index == 0;
  out.steady_latency_ms =
      source_bound || stages == 1
          ? out.latency_ms
          : std::max(out.latency_ms, problem.window * out.period_ms - out.credit_return_ms);
  return out;
}

Status ValidatePlacement(const PlanProblem& problem, const Placement& p) {
  const int n = static_cast<int>(problem.block_output_bytes.size());
  const int devices = static_cast<int>(problem.compute_ms.size());
  const StageRange range = StagesOf(problem);
  const int stages = static_cast<int>(p.devices.size());
  if (p.cuts.size() + 1 != p.devices.size()) {
    return Status::InvalidArgument(fmt::format("placement: {} cuts need {} devices, not {}",
                                               p.cuts.size(), p.cuts.size() + 1, stages));
  }
  if (stages < range.min || stages > range.max) {
    return Status::InvalidArgument(fmt::format("placement: {} stages, outside the range {}..{}",
                                               stages, range.min, range.max));
  }
  for (size_t i = 0; i < p.cuts.size(); ++i) {
    const int low = i == 0 ? 1 : p.cuts[i - 1] + 1;
    if (p.cuts[i] < low || p.cuts[i] > n - 1) {
      return Status::InvalidArgument(
          fmt::format("placement: cut {} out of order or outside 1..{} (cuts must increase)",
                      p.cuts[i], n - 1));
    }
  }
  std::vector<bool> used(devices, false);
  for (int d : p.devices) {
    if (d < 0 || d >= devices) {
      return Status::InvalidArgument(
          fmt::format("placement: device {} unknown (there are {})", d, devices));
    }
    if (used[d]) {
      return Status::InvalidArgument(
          fmt::format("placement: device {} runs two stages (one stage per device)", d));
    }
    used[d] = true;
  }
  return Status::Ok();
}

// Orders complete plans for the front: latency, then period, then the tie
// rule of planner.h (fewest stages, smallest cuts, smallest devices).
bool TieOrder(const Placement& a, const Placement& b) {
  return std::make_tuple(a.cuts.size(), std::cref(a.cuts), std::cref(a.devices)) <
         std::make_tuple(b.cuts.size(), std::cref(b.cuts), std::cref(b.devices));
}

// ---- The dynamic programme ------------------------------------------------
//
// A state is (j, S, f, d): blocks [0, j) placed, on the set S of devices, the
// first stage on f and the last on d. Per state, a front of (latency so far,
// largest stage or hop time so far) pairs. Layer s holds the states with
// |S| = s. Each layer has two kinds of fronts:
//   F(j, S, f, d): a stage on d ends at block j;
//   H(j, S, f, d): the previous stage ended at cut j and its output has
//     crossed the hop into d, whose stage has not computed yet.
// F(layer s - 1) -> H(layer s) adds a hop; H(layer s) -> F(layer s) adds the
// segment [j, j') on d. Splitting the two steps makes the segment step
// independent of the previous device.
//
// Pruning, all exact (it drops only pairs that a kept pair weakly dominates
// for every completion):
//   - within a state, the dominated pairs;
//   - a pair of state (j, S, f, d) that a pair of (j, S - {x}, f, d) weakly
//     dominates: every completion of the first is one of the second, with one
//     stage fewer; applied only where that stage fewer cannot fall below
//     min_stages;
//   - the scan over segment starts stops once every remaining start is
//     dominated (see BuildSegments).

struct Pair {
  double latency_ms;
  double bottleneck_ms;
  uint32_t prev;  // The F pair of layer s - 1 it extends (for H and F pairs of layer s).
};

struct Combo {
  uint32_t set;
  int first, last;
};

// One kind of front (F or H) of one layer: fronts stored one after another,
// combo-major, j = 0..n each.
struct Fronts {
  std::vector<Pair> pairs;
  std::vector<uint32_t> offsets;  // Front (combo, j) is pairs[offsets[c*(n+1)+j] .. offsets[..+1]).

  const Pair* begin(size_t combo, int j, int n) const {
    return pairs.data() + offsets[combo * (n + 1) + j];
  }
  const Pair* end(size_t combo, int j, int n) const {
    return pairs.data() + offsets[combo * (n + 1) + j + 1];
  }
  // The (combo, j) of pair `index`.
  std::pair<size_t, int> Locate(uint32_t index, int n) const {
    const size_t at = std::upper_bound(offsets.begin(), offsets.end(), index) - offsets.begin() - 1;
    return {at / (n + 1), static_cast<int>(at % (n + 1))};
  }
};

// True when the front [begin, end) (latency ascending, bottleneck strictly
// descending) has a pair with latency <= latency_ms and bottleneck <= bottleneck_ms.
bool Covers(const Pair* begin, const Pair* end, double latency_ms, double bottleneck_ms) {
  const Pair* it = std::upper_bound(begin, end, latency_ms,
                                    [](double l, const Pair& p) { return l < p.latency_ms; });
  return it != begin && (it - 1)->bottleneck_ms <= bottleneck_ms;
}

// A front under construction. Small (tens of pairs), so a sorted vector.
class WorkingFront {
 public:
  void Clear() { pairs_.clear(); }
  const std::vector<Pair>& pairs() const { return pairs_; }

  bool Covers(double latency_ms, double bottleneck_ms) const {
    return paretopipe::Covers(pairs_.data(), pairs_.data() + pairs_.size(), latency_ms,
                              bottleneck_ms);
  }

  // Adds `p` unless a pair already weakly dominates it (an equal pair
  // included: the first one stays); removes the pairs `p` dominates.
  void Insert(const Pair& p) {
    if (Covers(p.latency_ms, p.bottleneck_ms)) return;
    auto pos = std::lower_bound(pairs_.begin(), pairs_.end(), p.latency_ms,
                                [](const Pair& q, double l) { return q.latency_ms < l; });
    auto last = pos;
    while (last != pairs_.end() && last->bottleneck_ms >= p.bottleneck_ms) ++last;
    if (last != pos) {
      *pos = p;
      pairs_.erase(pos + 1, last);
    } else {
      pairs_.insert(pos, p);
    }
  }

 private:
  std::vector<Pair> pairs_;
};

class FrontSolver {
 public:
  FrontSolver(const PlanProblem& problem, const Arithmetic& a, PlanFrontStats* stats)
      : problem_(problem),
        a_(a),
        n_(a.blocks()),
        devices_(a.devices()),
        range_(StagesOf(problem)),
        stats_(stats),
        combo_index_((static_cast<size_t>(1) << devices_) * devices_ * devices_, -1) {}

  std::vector<PlanPrediction> Solve() {
    combos_.resize(range_.max + 1);
    f_.resize(range_.max + 1);
    for (int s = 1; s <= range_.max; ++s) {
      EnumerateCombos(s);
      if (s == 1) {
        BuildFirstLayer();
      } else {
        std::swap(h_before_, h_);
        BuildHops(s);
        BuildSegments(s);
      }
    }
    return Collect();
  }

 private:
  size_t ComboKey(uint32_t set, int first, int last) const {
    return (static_cast<size_t>(set) * devices_ + first) * devices_ + last;
  }

  void EnumerateCombos(int s) {
    for (uint32_t set = 0; set < (1u << devices_); ++set) {
      if (__builtin_popcount(set) != s) continue;
      for (int f = 0; f < devices_; ++f) {
        if (!(set >> f & 1)) continue;
        for (int d = 0; d < devices_; ++d) {
          if (!(set >> d & 1) || (s == 1) != (d == f)) continue;
          combo_index_[ComboKey(set, f, d)] = static_cast<int32_t>(combos_[s].size());
          combos_[s].push_back(Combo{set, f, d});
        }
      }
    }
  }

  // Whether a plan with `s` stages whose last stage ends at block j can be
  // completed within the stage range (one block at least per stage).
  bool Completable(int s, int j) const {
    if (j == n_) return s >= range_.min;
    const int more = std::max(1, range_.min - s);
    return s + more <= range_.max && more <= n_ - j;
  }

  // Whether a pair of layer s may be pruned by one of layer s - 1 (one
  // device fewer): true when every completion of the pair, which adds
  // `fewest_more` stages or more, still has min_stages with one stage fewer.
  bool SubsetPruningSound(int s, int fewest_more) const {
    return s - 1 + fewest_more >= range_.min;
  }

  // True when a front of `below` (layer |set| - 1) at (j, set - {x}, first,
  // last), for some x other than first and last, covers the pair.
  bool CoveredBySubset(const Fronts& below, const Combo& c, int j, double latency_ms,
                       double bottleneck_ms) const {
    for (uint32_t rest = c.set & ~(1u << c.first) & ~(1u << c.last); rest != 0; rest &= rest - 1) {
      const uint32_t x = static_cast<uint32_t>(__builtin_ctz(rest));
      const int32_t smaller = combo_index_[ComboKey(c.set & ~(1u << x), c.first, c.last)];
      if (Covers(below.begin(smaller, j, n_), below.end(smaller, j, n_), latency_ms,
                 bottleneck_ms)) {
        return true;
      }
    }
    return false;
  }

  void Count(int64_t PlanFrontStats::*field, int64_t by) {
    if (stats_ != nullptr) stats_->*field += by;
  }

  // Appends the working front to `out` as the next (combo, j), without the
  // pairs that a front of `below` covers (when `below` is not null).
  void Store(const WorkingFront& w, const Fronts* below, const Combo& c, int j, Fronts* out) {
    for (const Pair& p : w.pairs()) {
      if (below == nullptr || !CoveredBySubset(*below, c, j, p.latency_ms, p.bottleneck_ms)) {
        out->pairs.push_back(p);
      }
    }
    out->offsets.push_back(static_cast<uint32_t>(out->pairs.size()));
  }

  void BuildFirstLayer() {
    Fronts& f = f_[1];
    f.offsets.assign(1, 0);
    for (const Combo& c : combos_[1]) {
      for (int j = 0; j <= n_; ++j) {
        if (j >= 1 && Completable(1, j)) {
          const double compute = a_.Compute(c.last, 0, j);
          f.pairs.push_back(Pair{compute, compute, 0});
        }
        f.offsets.push_back(static_cast<uint32_t>(f.pairs.size()));
      }
    }
    Count(&PlanFrontStats::pairs_kept, static_cast<int64_t>(f.pairs.size()));
  }

  // H(layer s): every F(layer s - 1) pair ending at cut j, across the hop to
  // a device not yet used.
  void BuildHops(int s) {
    const Fronts& from = f_[s - 1];
    h_.pairs.clear();
    h_.offsets.assign(1, 0);
    // After the hop at least the stage on the new device follows.
    const Fronts* below = s >= 3 && SubsetPruningSound(s, 0) ? &h_before_ : nullptr;
    WorkingFront w;
    for (const Combo& c : combos_[s]) {
      const uint32_t before = c.set & ~(1u << c.last);
      for (int j = 0; j <= n_; ++j) {
        w.Clear();
        // A hop at cut j starts a stage [j, j') with j' <= n: j < n.
        if (j >= s - 1 && j < n_) {
          for (uint32_t rest = before; rest != 0; rest &= rest - 1) {
            const int d = __builtin_ctz(rest);
            const int32_t source = combo_index_[ComboKey(before, c.first, d)];
            if (source < 0) continue;
            const double transfer = a_.Transfer(d, c.last, j);
            const double hop = a_.Hop(d, c.last, j);
            for (const Pair* p = from.begin(source, j, n_); p != from.end(source, j, n_); ++p) {
              w.Insert(Pair{p->latency_ms + hop, std::max(p->bottleneck_ms, transfer),
                            static_cast<uint32_t>(p - from.pairs.data())});
              Count(&PlanFrontStats::candidates, 1);
              // The rest have larger latency and a bottleneck no larger than
              // the transfer: all map to this bottleneck, dominated.
              if (p->bottleneck_ms <= transfer) break;
            }
          }
        }
        Store(w, below, c, j, &h_);
      }
    }
  }

  // F(layer s): a stage [j, end) on the combo's last device after H(j).
  void BuildSegments(int s) {
    Fronts& f = f_[s];
    f.offsets.assign(1, 0);
    const Fronts* below_open = s >= 3 && SubsetPruningSound(s, 1) ? &f_[s - 1] : nullptr;
    const Fronts* below_done = s >= 3 && SubsetPruningSound(s, 0) ? &f_[s - 1] : nullptr;
    WorkingFront w;
    // min_latency[j]: the smallest latency in H(j'') over j'' <= j, a lower
    // bound that ends the scan over j early.
    std::vector<double> min_latency(n_ + 1);
    for (size_t ci = 0; ci < combos_[s].size(); ++ci) {
      const Combo& c = combos_[s][ci];
      double running = kInf;
      for (int j = 0; j <= n_; ++j) {
        if (h_.begin(ci, j, n_) != h_.end(ci, j, n_)) {
          running = std::min(running, h_.begin(ci, j, n_)->latency_ms);
        }
        min_latency[j] = running;
      }
      for (int end = 0; end <= n_; ++end) {
        w.Clear();
        const Fronts* below = end == n_ ? below_done : below_open;
        if (end >= s && Completable(s, end)) {
          for (int j = end - 1; j >= s - 1; --j) {
            if (min_latency[j] == kInf) break;
            const double compute = a_.Compute(c.last, j, end);
            // Every start j'' <= j gives latency >= min_latency[j] + compute
            // and a bottleneck >= compute (compute only grows as j'' falls):
            // once a kept pair covers that, no start is worth trying.
            const double bound = min_latency[j] + compute;
            if (w.Covers(bound, compute)) break;
            // This start's candidates have latency >= its first pair's + compute
            // and a bottleneck >= its last pair's and >= compute.
            const Pair* first = h_.begin(ci, j, n_);
            const Pair* last = h_.end(ci, j, n_);
            if (first == last || w.Covers(first->latency_ms + compute,
                                          std::max((last - 1)->bottleneck_ms, compute))) {
              continue;
            }
            for (const Pair* p = first; p != last; ++p) {
              w.Insert(Pair{p->latency_ms + compute, std::max(p->bottleneck_ms, compute), p->prev});
              Count(&PlanFrontStats::candidates, 1);
              if (p->bottleneck_ms <= compute) break;
            }
          }
        }
        Store(w, below, c, end, &f);
      }
    }
    Count(&PlanFrontStats::pairs_kept, static_cast<int64_t>(f.pairs.size()));
  }

  // The placement of pair `index` of F(layer s), by following prev: each F
  // pair of layer s - 1 that a pair extends ended at the cut before it.
  Placement Reconstruct(int s, uint32_t index) const {
    Placement p;
    for (int layer = s;; --layer) {
      const auto [combo, end] = f_[layer].Locate(index, n_);
      p.devices.push_back(combos_[layer][combo].last);
      if (layer == 1) break;
      index = f_[layer].pairs[index].prev;
      p.cuts.push_back(f_[layer - 1].Locate(index, n_).second);
    }
    std::reverse(p.devices.begin(), p.devices.end());
    std::reverse(p.cuts.begin(), p.cuts.end());
    return p;
  }

  std::vector<PlanPrediction> Collect() {
    struct Final {
      double latency_ms, period_ms;
      int stages;
      uint32_t index;
    };
    std::vector<Final> finals;
    for (int s = range_.min; s <= range_.max; ++s) {
      const Fronts& f = f_[s];
      for (size_t ci = 0; ci < combos_[s].size(); ++ci) {
        const Combo& c = combos_[s][ci];
        for (const Pair* p = f.begin(ci, n_, n_); p != f.end(ci, n_, n_); ++p) {
          finals.push_back(Final{p->latency_ms,
                                 a_.Period(p->latency_ms, p->bottleneck_ms, c.last, c.first), s,
                                 static_cast<uint32_t>(p - f.pairs.data())});
        }
      }
    }
    Count(&PlanFrontStats::final_candidates, static_cast<int64_t>(finals.size()));
    std::sort(finals.begin(), finals.end(), [](const Final& x, const Final& y) {
      return std::tie(x.latency_ms, x.period_ms) < std::tie(y.latency_ms, y.period_ms);
    });
    std::vector<PlanPrediction> front;
    double best_period = kInf;
    for (size_t i = 0; i < finals.size();) {
      size_t group_end = i + 1;
      while (group_end < finals.size() && finals[group_end].latency_ms == finals[i].latency_ms &&
             finals[group_end].period_ms == finals[i].period_ms) {
        ++group_end;
      }
      if (finals[i].period_ms < best_period) {
        best_period = finals[i].period_ms;
        Placement chosen = Reconstruct(finals[i].stages, finals[i].index);
        for (size_t k = i + 1; k < group_end; ++k) {
          Placement other = Reconstruct(finals[k].stages, finals[k].index);
          if (TieOrder(other, chosen)) chosen = std::move(other);
        }
        front.push_back(PredictValid(problem_, a_, chosen));
      }
      i = group_end;
    }
    return front;
  }

  const PlanProblem& problem_;
  const Arithmetic& a_;
  const int n_, devices_;
  const StageRange range_;
  PlanFrontStats* stats_;
  std::vector<int32_t> combo_index_;        // [set][first][last] -> index in its layer.
  std::vector<std::vector<Combo>> combos_;  // Per layer.
  std::vector<Fronts> f_;                   // Per layer (index 0 unused), kept to reconstruct.
  Fronts h_, h_before_;                     // H of this layer and of the one before.
};

// The front of complete predictions, by the rule of planner.h.
std::vector<PlanPrediction> FrontOf(std::vector<PlanPrediction> all) {
  std::sort(all.begin(), all.end(), [](const PlanPrediction& x, const PlanPrediction& y) {
    if (x.latency_ms != y.latency_ms) return x.latency_ms < y.latency_ms;
    if (x.period_ms != y.period_ms) return x.period_ms < y.period_ms;
    return TieOrder(x.placement, y.placement);
  });
  std::vector<PlanPrediction> front;
  for (PlanPrediction& p : all) {
    if (front.empty() || p.period_ms < front.back().period_ms) front.push_back(std::move(p));
  }
  return front;
}

// Calls `visit` with every placement of `stages` stages on distinct devices.
template <typename Visit>
void ForEachPlacement(int n, int devices, int stages, Placement* p, std::vector<bool>* used,
                      Visit&& visit) {
  const int placed = static_cast<int>(p->devices.size());
  if (placed == stages) {
    visit(*p);
    return;
  }
  // The next stage starts at the last cut (or 0); it needs a device, and
  // unless it is the last stage, a cut after it that leaves a block for
  // every later stage.
  const int from = p->cuts.empty() ? 0 : p->cuts.back();
  for (int d = 0; d < devices; ++d) {
    if ((*used)[d]) continue;
    (*used)[d] = true;
    p->devices.push_back(d);
    if (placed + 1 == stages) {
      ForEachPlacement(n, devices, stages, p, used, visit);
    } else {
      for (int cut = from + 1; cut <= n - (stages - placed - 1); ++cut) {
        p->cuts.push_back(cut);
        ForEachPlacement(n, devices, stages, p, used, visit);
        p->cuts.pop_back();
      }
    }
    p->devices.pop_back();
    (*used)[d] = false;
  }
}

bool FiniteNonNegative(double v) { return std::isfinite(v) && v >= 0; }

}  // namespace

Status ValidatePlanProblem(const PlanProblem& problem) {
  const size_t devices = problem.compute_ms.size();
  const size_t n = problem.block_output_bytes.size();
  if (devices == 0) return Status::InvalidArgument("plan: no devices");
  if (devices > static_cast<size_t>(kMaxPlanDevices)) {
    return Status::InvalidArgument(
        fmt::format("plan: {} devices; at most {} (the planner's work grows as 2^devices)", devices,
                    kMaxPlanDevices));
  }
  if (n == 0) return Status::InvalidArgument("plan: no blocks");
  for (size_t d = 0; d < devices; ++d) {
    if (problem.compute_ms[d].size() != n) {
      return Status::InvalidArgument(
          fmt::format("plan: device {} has {} block times, the model {} blocks", d,
                      problem.compute_ms[d].size(), n));
    }
    for (size_t b = 0; b < n; ++b) {
      if (!FiniteNonNegative(problem.compute_ms[d][b])) {
        return Status::InvalidArgument(
            fmt::format("plan: device {} block {}: compute time {} ms is not finite and >= 0", d, b,
                        problem.compute_ms[d][b]));
      }
    }
  }
  for (size_t b = 0; b < n; ++b) {
    if (problem.block_output_bytes[b] < 0) {
      return Status::InvalidArgument(
          fmt::format("plan: block {} outputs {} bytes", b, problem.block_output_bytes[b]));
    }
  }
  if (problem.links.size() != devices) {
    return Status::InvalidArgument(
        fmt::format("plan: {} rows of links for {} devices", problem.links.size(), devices));
  }
  for (size_t a = 0; a < devices; ++a) {
    if (problem.links[a].size() != devices) {
      return Status::InvalidArgument(fmt::format("plan: links row {} has {} entries, not {}", a,
                                                 problem.links[a].size(), devices));
    }
    for (size_t b = 0; b < devices; ++b) {
      const LinkModel& l = problem.links[a][b];
      if (a != b && !(FiniteNonNegative(l.overhead_ms) && FiniteNonNegative(l.rate_bits_per_s) &&
                      FiniteNonNegative(l.delay_ms))) {
        return Status::InvalidArgument(fmt::format(
            "plan: link {} -> {}: overhead, rate and delay must be finite and >= 0", a, b));
      }
    }
  }
  if (problem.batch < 1) {
    return Status::InvalidArgument(fmt::format("plan: batch {} < 1", problem.batch));
  }
  if (problem.window < 1) {
    return Status::InvalidArgument(fmt::format("plan: window {} < 1", problem.window));
  }
  if (problem.min_stages < 1 || problem.max_stages < 0 ||
      (problem.max_stages > 0 && problem.max_stages < problem.min_stages)) {
    return Status::InvalidArgument(
        fmt::format("plan: stage range {}..{} is empty", problem.min_stages, problem.max_stages));
  }
  const StageRange range = StagesOf(problem);
  if (range.min > range.max) {
    return Status::InvalidArgument(fmt::format(
        "plan: no placement has {} or more stages with {} devices and {} blocks (one stage per "
        "device, one block at least per stage)",
        range.min, devices, n));
  }
  return Status::Ok();
}

Result<PlanPrediction> Predict(const PlanProblem& problem, const Placement& placement) {
  PP_RETURN_IF_ERROR(ValidatePlanProblem(problem));
  PP_RETURN_IF_ERROR(ValidatePlacement(problem, placement));
  const Arithmetic a(problem);
  return PredictValid(problem, a, placement);
}

Result<std::vector<PlanPrediction>> PlanFront(const PlanProblem& problem, PlanFrontStats* stats) {
  PP_RETURN_IF_ERROR(ValidatePlanProblem(problem));
  if (stats != nullptr) *stats = PlanFrontStats{};
  const Arithmetic a(problem);
  FrontSolver solver(problem, a, stats);
  return solver.Solve();
}

Result<std::vector<PlanPrediction>> PlanFrontBruteForce(const PlanProblem& problem) {
  PP_RETURN_IF_ERROR(ValidatePlanProblem(problem));
  const Arithmetic a(problem);
  const StageRange range = StagesOf(problem);
  std::vector<PlanPrediction> all;
  for (int stages = range.min; stages <= range.max; ++stages) {
    Placement p;
    std::vector<bool> used(a.devices(), false);
    ForEachPlacement(a.blocks(), a.devices(), stages, &p, &used, [&](const Placement& placed) {
      all.push_back(PredictValid(problem, a, placed));
    });
  }
  return FrontOf(std::move(all));
}

std::string BottleneckName(const Bottleneck& b) {
  switch (b.kind) {
    case Bottleneck::Kind::kStage:
      return fmt::format("stage {}", b.index + 1);
    case Bottleneck::Kind::kHop:
      return fmt::format("hop {}", b.index + 1);
    case Bottleneck::Kind::kWindow:
      return "window";
  }
  return "?";
}

}  // namespace paretopipe
