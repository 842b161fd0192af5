#include "analysis/accuracy.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace paretopipe {

namespace {

auto Tie(const AccuracyGroupKey& k) {
  return std::tie(k.model, k.seed, k.weights_digest, k.num_classes, k.input_digest, k.images);
}

}  // namespace

bool AccuracyGroupKey::operator<(const AccuracyGroupKey& other) const {
  return Tie(*this) < Tie(other);
}

bool AccuracyGroupKey::operator==(const AccuracyGroupKey& other) const {
  return Tie(*this) == Tie(other);
}

AccuracyGroupKey AccuracyGroupOf(const RunRecord& run) {
  AccuracyGroupKey key;
  key.model = run.config.model;
  key.seed = run.config.seed;
  key.weights_digest = run.config.weights_digest;
  key.num_classes = run.config.num_classes;
  key.input_digest = run.config.input_digest;
  key.images = run.accuracy ? run.accuracy->images : 0;
  return key;
}

std::vector<AccuracyDisagreement> FindAccuracyDisagreements(const std::vector<RunRecord>& runs) {
  std::map<AccuracyGroupKey, std::vector<const RunRecord*>> groups;
  for (const RunRecord& r : runs) {
    if (r.status == "ok" && r.accuracy) groups[AccuracyGroupOf(r)].push_back(&r);
  }
  std::vector<AccuracyDisagreement> out;
  for (const auto& [key, members] : groups) {
    std::map<int64_t, int> runs_per_correct;
    for (const RunRecord* r : members) ++runs_per_correct[r->accuracy->correct];
    if (runs_per_correct.size() < 2) continue;
    int most = 0, holders = 0;
    int64_t majority = -1;
    for (const auto& [correct, n] : runs_per_correct) {
      if (n > most) {
        most = n;
        majority = correct;
        holders = 1;
      } else if (n == most) {
        ++holders;
      }
    }
    // A tie at the top names no culprit: every run is suspect.
    if (holders > 1) majority = -1;
    std::vector<int64_t> ids;
    for (const RunRecord* r : members) ids.push_back(r->id);
    std::sort(ids.begin(), ids.end());
    for (const RunRecord* r : members) {
      if (r->accuracy->correct == majority) continue;
      AccuracyDisagreement d;
      d.run_id = r->id;
      d.group = key;
      d.correct = r->accuracy->correct;
      d.expected_correct = majority;
      d.agreeing_runs = majority >= 0 ? most : 0;
      d.group_run_ids = ids;
      out.push_back(std::move(d));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const AccuracyDisagreement& a, const AccuracyDisagreement& b) {
              return a.run_id < b.run_id;
            });
  return out;
}

}  // namespace paretopipe
