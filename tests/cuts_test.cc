#include <gtest/gtest.h>

#include "model/cuts.h"

namespace paretopipe {
namespace {

TEST(CutsTest, MobileNetV2AtBatch8ListsEighteenCutsWithExactActivationBytes) {
  Result<ModelAnalysis> a = AnalyzeModel({"mobilenet_v2", 1000, 0, ""});
  ASSERT_TRUE(a.ok()) << a.status().message();
  const std::vector<CutInfo> cuts = CutsAtBatch(*a, 8);
  ASSERT_EQ(cuts.size(), 18u);
  EXPECT_EQ(cuts[0].cut, 1);
  EXPECT_EQ(cuts[0].shape, (std::vector<int64_t>{8, 32, 112, 112}));
  EXPECT_EQ(cuts[0].bytes, 12'845'056);
  EXPECT_EQ(cuts[0].last_block_before, "features.0");
  // features.17 outputs 320 channels at 7x7; features.18 (1x1 conv to 1280) follows cut 18.
  EXPECT_EQ(cuts[17].shape, (std::vector<int64_t>{8, 320, 7, 7}));
  EXPECT_EQ(cuts[17].bytes, 8 * 320 * 7 * 7 * 4);
}

TEST(CutsTest, MacShareGrowsFromZeroTowardOne) {
  Result<ModelAnalysis> a = AnalyzeModel({"resnet18", 10, 0, ""}, 64);
  ASSERT_TRUE(a.ok()) << a.status().message();
  const std::vector<CutInfo> cuts = CutsAtBatch(*a, 2);
  ASSERT_EQ(cuts.size(), 8u);
  double previous = 0;
  for (const CutInfo& c : cuts) {
    EXPECT_GT(c.macs_share_before, previous) << "cut " << c.cut;
    EXPECT_LT(c.macs_share_before, 1.0) << "cut " << c.cut;
    previous = c.macs_share_before;
  }
  // Bytes and MACs scale with the batch.
  const std::vector<CutInfo> single = CutsAtBatch(*a, 1);
  EXPECT_EQ(cuts[3].bytes, 2 * single[3].bytes);
  EXPECT_EQ(cuts[3].macs_before, 2 * single[3].macs_before);
}

}  // namespace
}  // namespace paretopipe
