// The input transform against Pillow and torchvision: known values Pillow
// 9.4 produced, and a bit-exact cross-check with torchvision's transforms
// when Debian's python3-torchvision is installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data/cifar10.h"
#include "data/transform.h"

namespace paretopipe {
namespace {

const std::vector<uint8_t> kPlane = {0,   17,  34,  51,  68,  88,  105, 122, 139, 156,
                                     182, 199, 216, 233, 250, 26,  43,  60,  77,  94};  // 4 x 5

TEST(ResizeTest, UpscalingMatchesPillowBilinear) {
  // Image.fromarray(plane, 'L').resize((9, 7), Image.BILINEAR), Pillow 9.4.0.
  const std::vector<uint8_t> expected = {
      0,   6,   15,  25,  34,  43,  53,  62,  68,  31,  37,  46,  56,  65,  74,  84,
      93,  99,  82,  88,  97,  107, 116, 125, 135, 144, 150, 135, 141, 150, 160, 169,
      178, 188, 197, 203, 171, 177, 186, 196, 205, 214, 224, 233, 239, 82,  88,  97,
      107, 116, 125, 135, 144, 150, 26,  32,  41,  51,  60,  69,  79,  88,  94};
  EXPECT_EQ(ResizeBilinearLikePillow(kPlane.data(), 4, 5, 7, 9), expected);
}

TEST(ResizeTest, DownscalingAveragesLikePillow) {
  // Image.fromarray(plane, 'L').resize((2, 3), Image.BILINEAR): Pillow widens
  // the filter when shrinking (antialiasing).
  EXPECT_EQ(ResizeBilinearLikePillow(kPlane.data(), 4, 5, 3, 2),
            (std::vector<uint8_t>{43, 77, 152, 186, 90, 124}));
}

TEST(ResizeTest, SameSizeIsACopy) { EXPECT_EQ(ResizeBilinearLikePillow(kPlane.data(), 4, 5, 4, 5), kPlane); }

TEST(TransformTest, MapsPixelsToMinusOneToOneWithTheDefaultNormalization) {
  LabeledImages images;
  images.height = images.width = 1;
  images.pixels = {0, 255, 51};
  images.labels = {3};
  InputTransform t;
  t.side = 1;
  const std::vector<float> out = TransformImages(images, 0, 1, t);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_FLOAT_EQ(out[2], (51.0f / 255.0f - 0.5f) / 0.5f);
}

// Writes `n` random CIFAR-10 records; returns the file's path.
std::string WriteRandomCifar(const std::string& dir, int n) {
  std::mt19937 gen(7);
  const std::string path = dir + "/test_batch.bin";
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < n; ++i) {
    out.put(static_cast<char>(i % 10));
    for (size_t p = 0; p < kCifarImageBytes; ++p) out.put(static_cast<char>(gen() % 256));
  }
  return path;
}

TEST(TransformTest, EqualsTorchvisionResizeToTensorNormalizeBitForBit) {
  if (std::system("/usr/bin/python3 -c 'import torchvision, PIL' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-torchvision (scripts/setup.sh --tests installs it)";
  }
  char dir[] = "/tmp/pp_transform_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string data = WriteRandomCifar(dir, 3), expected = std::string(dir) + "/expected";
  // The Python ParetoPipe's CIFAR-10 pipeline, on the same records.
  const std::string script = R"(
import sys, numpy as np, torch, torchvision.transforms as T
from PIL import Image
raw = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 3073)
t = T.Compose([T.Resize(224), T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
out = [t(Image.fromarray(r[1:].reshape(3, 32, 32).transpose(1, 2, 0))) for r in raw]
torch.stack(out).numpy().astype(np.float32).tofile(sys.argv[2])
)";
  const std::string script_path = std::string(dir) + "/t.py";
  std::ofstream(script_path) << script;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + script_path + " " + data + " " + expected).c_str()),
            0);
  std::ifstream in(expected, std::ios::binary);
  std::vector<float> want(3 * 3 * 224 * 224);
  in.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * 4));
  ASSERT_TRUE(in) << "torchvision wrote fewer values than 3 x 3 x 224 x 224";

  Result<LabeledImages> images = ReadCifar10(data);
  ASSERT_TRUE(images.ok()) << images.status().message();
  const std::vector<float> got = TransformImages(*images, 0, 3, InputTransform{});
  ASSERT_EQ(got.size(), want.size());
  size_t differing = 0;
  for (size_t i = 0; i < got.size(); ++i) differing += got[i] != want[i];
  EXPECT_EQ(differing, 0u) << "of " << got.size() << " values";
  std::system(("rm -rf " + std::string(dir)).c_str());
}

}  // namespace
}  // namespace paretopipe
