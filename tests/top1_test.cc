// Top-1 accuracy from the sink's predictions: each labelled image counts
// once, at its first prediction, as the source cycles through the set.
#include "metrics/top1.h"

#include <gtest/gtest.h>

namespace paretopipe {
namespace {

TEST(Top1Test, EachImageCountsOnceAtItsFirstPrediction) {
  // 3 images, batches of 2, 3 batches: images 0 1 | 2 0 | 1 2. Image 0 is
  // right the first time and wrong the second; only the first counts.
  const std::vector<int64_t> labels = {4, 7, 1};
  const std::vector<std::vector<int64_t>> passes = {{4, 0, 1, 9, 7, 1}};

  Result<std::optional<Accuracy>> scored = ScoreTop1(passes, 2, labels);

  ASSERT_TRUE(scored.ok()) << scored.status().message();
  ASSERT_TRUE(scored->has_value());
  EXPECT_EQ((*scored)->images, 3);
  EXPECT_EQ((*scored)->correct, 2);  // Images 0 and 2.
  EXPECT_DOUBLE_EQ((*scored)->top1(), 2.0 / 3);
}

TEST(Top1Test, ImagesAPassDidNotReachAreNotCounted) {
  const std::vector<int64_t> labels = {1, 2, 3, 4, 5, 6};
  Result<std::optional<Accuracy>> scored = ScoreTop1({{1, 0}, {1, 0}}, 2, labels);
  ASSERT_TRUE(scored.ok());
  ASSERT_TRUE(scored->has_value());
  EXPECT_EQ((*scored)->images, 2);
  EXPECT_EQ((*scored)->correct, 1);
}

TEST(Top1Test, UnlabelledImagesAreSkippedAndNoLabelsMeansNoAccuracy) {
  Result<std::optional<Accuracy>> partly = ScoreTop1({{3, 3, 3, 3}}, 2, {-1, 3});
  ASSERT_TRUE(partly.ok());
  ASSERT_TRUE(partly->has_value());
  EXPECT_EQ((*partly)->images, 1);
  EXPECT_EQ((*partly)->correct, 1);

  Result<std::optional<Accuracy>> none = ScoreTop1({{3, 3}}, 2, {-1, -1});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(Top1Test, APassOfPartialBatchesIsRefused) {
  Result<std::optional<Accuracy>> scored = ScoreTop1({{1, 2, 3}}, 2, {1, 2});
  ASSERT_FALSE(scored.ok());
  EXPECT_NE(scored.status().message().find("not whole batches of 2"), std::string::npos);
}

}  // namespace
}  // namespace paretopipe
