// The accuracy check: runs that classified the same images with the same
// weights must agree on top-1 accuracy wherever the model was cut, because
// splitting a model must not change what it computes (docs/metrics.md,
// "Accuracy"). A run that disagrees points at a broken split, a corrupted
// transfer or a mixed-up input.
//
// Owns: grouping runs that must agree and naming those that do not. Must not
// touch: the store's SQL, models, running anything.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/run_record.h"

namespace paretopipe {

// What makes two runs' accuracy comparable: the same model and weights
// (seed, weights file, classes) and the same labelled images.
struct AccuracyGroupKey {
  std::string model;
  uint64_t seed = 0;
  std::string weights_digest;
  int64_t num_classes = 0;
  std::string input_digest;
  int64_t images = 0;  // Accuracy::images.

  bool operator<(const AccuracyGroupKey& other) const;
  bool operator==(const AccuracyGroupKey& other) const;
};

AccuracyGroupKey AccuracyGroupOf(const RunRecord& run);

// A run whose accuracy differs from the others in its group.
struct AccuracyDisagreement {
  int64_t run_id = 0;
  AccuracyGroupKey group;
  int64_t correct = 0;  // This run's Accuracy::correct.
  // What most of the group got, and how many runs got it; when no count is
  // shared by more runs than any other (e.g. two runs, two answers), there is
  // no majority: expected_correct is -1 and every run of the group is listed.
  int64_t expected_correct = -1;
  int agreeing_runs = 0;
  std::vector<int64_t> group_run_ids;  // Every run of the group, ascending.
};

// Groups the finished runs (status "ok") that carry an accuracy by
// AccuracyGroupOf and returns, in run id order, each run whose
// Accuracy::correct differs from the most common value in its group (all of
// the group's runs when no value is the most common). Runs without accuracy
// and failed runs are ignored; a group of one agrees with itself.
std::vector<AccuracyDisagreement> FindAccuracyDisagreements(const std::vector<RunRecord>& runs);

}  // namespace paretopipe
