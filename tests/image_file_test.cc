// Decoding JPEG and PNG files to RGB, and the image transform against
// torchvision's (Resize, CenterCrop, ToTensor, Normalize) on files Pillow
// wrote, when Debian's python3-torchvision is installed.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "data/image_file.h"
#include "data/transform.h"

// Skips the test, saying why, unless this build decodes `format` (CMake
// leaves out a decoder whose library it did not find). The tests write their
// PNG files with libpng, so they are built only when CMake found it; a build
// may still lack libjpeg.
#define PP_REQUIRE_IMAGE_FORMAT(format)                                \
  if (const Status built = CheckImageFormatBuilt(format); !built.ok()) \
  GTEST_SKIP() << built.message()

namespace paretopipe {
namespace {

class ImageFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/pp_image_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  // Writes a PNG of `color_type` and `bit_depth` with rows as given
  // (samples as libpng takes them), returning its path.
  std::string WritePng(const std::string& name, int width, int height, int color_type,
                       int bit_depth, const std::vector<std::vector<uint8_t>>& rows,
                       const std::vector<png_color>& palette = {}) {
    const std::string path = dir_ + "/" + name;
    FILE* f = fopen(path.c_str(), "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, width, height, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!palette.empty()) {
      png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    }
    png_write_info(png, info);
    for (const auto& row : rows) png_write_row(png, row.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    return path;
  }

  std::string dir_;
};

TEST_F(ImageFileTest, RgbPngDecodesToPlanarPixels) {
  PP_REQUIRE_IMAGE_FORMAT(ImageFormat::kPng);
  // 3 x 2: red, green, blue / white, black, grey.
  const std::string path = WritePng("rgb.png", 3, 2, PNG_COLOR_TYPE_RGB, 8,
                                    {{255, 0, 0, 0, 255, 0, 0, 0, 255},
                                     {255, 255, 255, 0, 0, 0, 128, 128, 128}});
  Result<RgbImage> image = DecodeImageFile(path);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(image->width, 3);
  EXPECT_EQ(image->height, 2);
  EXPECT_EQ(image->pixels, (std::vector<uint8_t>{255, 0, 0, 255, 0, 128,     // red plane
                                                 0, 255, 0, 255, 0, 128,     // green
                                                 0, 0, 255, 255, 0, 128}));  // blue
}

TEST_F(ImageFileTest, GreyAlphaPaletteAndSixteenBitBecomeRgbAsPillowConverts) {
  PP_REQUIRE_IMAGE_FORMAT(ImageFormat::kPng);
  Result<RgbImage> grey =
      DecodeImageFile(WritePng("grey.png", 2, 1, PNG_COLOR_TYPE_GRAY, 8, {{7, 200}}));
  ASSERT_TRUE(grey.ok()) << grey.status().message();
  EXPECT_EQ(grey->pixels, (std::vector<uint8_t>{7, 200, 7, 200, 7, 200}));

  Result<RgbImage> rgba = DecodeImageFile(
      WritePng("rgba.png", 1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, {{10, 20, 30, 0}}));
  ASSERT_TRUE(rgba.ok()) << rgba.status().message();
  EXPECT_EQ(rgba->pixels, (std::vector<uint8_t>{10, 20, 30}));  // Alpha dropped, not composited.

  Result<RgbImage> palette = DecodeImageFile(WritePng(
      "palette.png", 2, 1, PNG_COLOR_TYPE_PALETTE, 8, {{1, 0}}, {{1, 2, 3}, {40, 50, 60}}));
  ASSERT_TRUE(palette.ok()) << palette.status().message();
  EXPECT_EQ(palette->pixels, (std::vector<uint8_t>{40, 1, 50, 2, 60, 3}));

  // 16-bit samples, big-endian: 0x12ff keeps its high byte 0x12.
  Result<RgbImage> deep = DecodeImageFile(
      WritePng("deep.png", 1, 1, PNG_COLOR_TYPE_RGB, 16, {{0x12, 0xff, 0xab, 0x00, 0x01, 0x80}}));
  ASSERT_TRUE(deep.ok()) << deep.status().message();
  EXPECT_EQ(deep->pixels, (std::vector<uint8_t>{0x12, 0xab, 0x01}));
}

TEST_F(ImageFileTest, RefusesOtherFormatsTruncatedFilesAndMissingOnes) {
  PP_REQUIRE_IMAGE_FORMAT(ImageFormat::kPng);
  const std::string text = dir_ + "/notes.txt";
  std::ofstream(text) << "not an image at all";
  Result<RgbImage> other = DecodeImageFile(text);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("neither a JPEG nor a PNG"), std::string::npos);

  const std::string png = WritePng("cut.png", 3, 2, PNG_COLOR_TYPE_RGB, 8,
                                   {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 5, 6, 7, 8, 9}});
  ASSERT_EQ(truncate(png.c_str(), 40), 0);
  Result<RgbImage> cut = DecodeImageFile(png);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("cut.png: PNG:"), std::string::npos)
      << cut.status().message();

  EXPECT_EQ(DecodeImageFile(dir_ + "/absent.jpg").status().code(), Status::Code::kNotFound);
}

TEST_F(ImageFileTest, TransformEqualsTorchvisionOnJpegAndPngBitForBit) {
  PP_REQUIRE_IMAGE_FORMAT(ImageFormat::kJpeg);
  PP_REQUIRE_IMAGE_FORMAT(ImageFormat::kPng);
  if (std::system("/usr/bin/python3 -c 'import torchvision, PIL' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-torchvision (scripts/setup.sh --tests installs it)";
  }
  // Pillow writes the files (a wide JPEG, a tall RGBA PNG, odd sizes so the
  // crop rounds) and transforms them as torchvision's ImageFolder recipe does.
  const std::string script = R"(
import sys, numpy as np, torch, torchvision.transforms as T
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(3)
y, x = np.mgrid[0:37, 0:61]
wide = np.stack([(x * 4) % 256, (y * 7) % 256, rng.integers(0, 256, x.shape)], -1).astype(np.uint8)
Image.fromarray(wide).save(d + "/wide.jpg", quality=90)
tall = rng.integers(0, 256, (83, 45, 4)).astype(np.uint8)
Image.fromarray(tall, "RGBA").save(d + "/tall.png")
t = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
for name in ("wide.jpg", "tall.png"):
    t(Image.open(d + "/" + name).convert("RGB")).numpy().astype(np.float32).tofile(d + "/" + name + ".expected")
)";
  std::ofstream(dir_ + "/t.py") << script;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + dir_ + "/t.py " + dir_).c_str()), 0);
  InputTransform t;
  t.side = 64;
  t.mean = {0.485f, 0.456f, 0.406f};
  t.std = {0.229f, 0.224f, 0.225f};
  for (const std::string name : {"wide.jpg", "tall.png"}) {
    SCOPED_TRACE(name);
    Result<RgbImage> image = DecodeImageFile(dir_ + "/" + name);
    ASSERT_TRUE(image.ok()) << image.status().message();
    const std::vector<float> got = TransformImage(*image, t);
    std::vector<float> want(got.size());
    std::ifstream in(dir_ + "/" + name + ".expected", std::ios::binary);
    in.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * 4));
    ASSERT_TRUE(in);
    size_t differing = 0;
    for (size_t i = 0; i < got.size(); ++i) differing += got[i] != want[i];
    EXPECT_EQ(differing, 0u) << "of " << got.size() << " values";
  }
}

}  // namespace
}  // namespace paretopipe
