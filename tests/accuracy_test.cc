// The accuracy check: runs of the same model and weights on the same images
// must agree at every cut; the ones that do not are named.
#include "analysis/accuracy.h"

#include <gtest/gtest.h>

#include <vector>

namespace paretopipe {
namespace {

RunRecord LabelledRun(int64_t id, int64_t correct, int64_t images = 1000) {
  RunRecord r;
  r.id = id;
  r.config.model = "resnet18";
  r.config.num_classes = 10;
  r.config.seed = 7;
  r.config.weights_digest = "w1";
  r.config.input = "cifar10:/data/cifar";
  r.config.input_digest = "i1";
  r.config.cuts = {static_cast<int>(id)};
  r.accuracy = Accuracy{images, correct};
  return r;
}

std::vector<int64_t> Ids(const std::vector<AccuracyDisagreement>& d) {
  std::vector<int64_t> ids;
  for (const AccuracyDisagreement& x : d) ids.push_back(x.run_id);
  return ids;
}

TEST(AccuracyTest, RunsThatAgreeAtEveryCutRaiseNothing) {
  EXPECT_TRUE(
      FindAccuracyDisagreements({LabelledRun(1, 713), LabelledRun(2, 713), LabelledRun(3, 713)})
          .empty());
}

TEST(AccuracyTest, TheRunThatDiffersFromTheMajorityIsNamedWithWhatTheOthersGot) {
  const auto d =
      FindAccuracyDisagreements({LabelledRun(1, 713), LabelledRun(2, 709), LabelledRun(3, 713)});
  ASSERT_EQ(Ids(d), std::vector<int64_t>{2});
  EXPECT_EQ(d[0].correct, 709);
  EXPECT_EQ(d[0].expected_correct, 713);
  EXPECT_EQ(d[0].agreeing_runs, 2);
  EXPECT_EQ(d[0].group_run_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(d[0].group.images, 1000);
}

TEST(AccuracyTest, WithoutAMajorityEveryRunOfTheGroupIsNamed) {
  const auto d = FindAccuracyDisagreements({LabelledRun(4, 713), LabelledRun(5, 709)});
  EXPECT_EQ(Ids(d), (std::vector<int64_t>{4, 5}));
  for (const AccuracyDisagreement& x : d) {
    EXPECT_EQ(x.expected_correct, -1);
    EXPECT_EQ(x.agreeing_runs, 0);
  }
}

TEST(AccuracyTest, RunsOnOtherImagesOrWeightsAreNotCompared) {
  RunRecord other_input = LabelledRun(2, 600);
  other_input.config.input_digest = "i2";
  RunRecord other_weights = LabelledRun(3, 500);
  other_weights.config.weights_digest = "w2";
  RunRecord other_seed = LabelledRun(4, 400);
  other_seed.config.seed = 8;
  RunRecord other_classes = LabelledRun(5, 300);
  other_classes.config.num_classes = 100;
  RunRecord fewer_images = LabelledRun(6, 70, 100);
  RunRecord other_model = LabelledRun(7, 200);
  other_model.config.model = "vgg16";
  EXPECT_TRUE(FindAccuracyDisagreements({LabelledRun(1, 713), other_input, other_weights,
                                         other_seed, other_classes, fewer_images, other_model})
                  .empty());
}

TEST(AccuracyTest, FailedRunsAndRunsWithoutAccuracyAreIgnored) {
  RunRecord failed = LabelledRun(2, 0);
  failed.status = "failed";
  RunRecord unlabelled = LabelledRun(3, 0);
  unlabelled.accuracy.reset();
  EXPECT_TRUE(FindAccuracyDisagreements({LabelledRun(1, 713), failed, unlabelled}).empty());
}

TEST(AccuracyTest, DisagreementsComeInRunIdOrderAcrossGroups) {
  RunRecord b1 = LabelledRun(1, 100);
  b1.config.model = "vgg16";
  RunRecord b2 = LabelledRun(6, 100);
  b2.config.model = "vgg16";
  RunRecord b3 = LabelledRun(2, 90);
  b3.config.model = "vgg16";
  const auto d = FindAccuracyDisagreements(
      {LabelledRun(3, 713), LabelledRun(4, 713), LabelledRun(5, 1), b1, b2, b3});
  EXPECT_EQ(Ids(d), (std::vector<int64_t>{2, 5}));
}

}  // namespace
}  // namespace paretopipe
