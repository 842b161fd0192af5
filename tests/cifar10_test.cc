// The CIFAR-10 binary reader on small files in that format, written here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "data/cifar10.h"

namespace paretopipe {
namespace {

class Cifar10Test : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/pp_cifar_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }

  // Writes `n` records: record i has label i % 10 and pixel p of channel c
  // equal to (i + 3c + p) % 256.
  void Write(size_t n, size_t extra_bytes = 0, int bad_label_at = -1) {
    path_ = dir_ + "/test_batch.bin";
    std::ofstream out(path_, std::ios::binary);
    for (size_t i = 0; i < n; ++i) {
      out.put(static_cast<char>(static_cast<int>(i) == bad_label_at ? 10 : i % 10));
      for (int c = 0; c < 3; ++c) {
        for (int p = 0; p < 1024; ++p) out.put(static_cast<char>((i + 3 * c + p) % 256));
      }
    }
    for (size_t k = 0; k < extra_bytes; ++k) out.put('\0');
  }

  std::string dir_, path_;
};

TEST_F(Cifar10Test, ReadsLabelsAndPlanarPixels) {
  Write(12);
  Result<LabeledImages> images = ReadCifar10(path_);
  ASSERT_TRUE(images.ok()) << images.status().message();
  ASSERT_EQ(images->count(), 12u);
  EXPECT_EQ(images->labels[11], 1);
  EXPECT_EQ(images->pixels.size(), 12u * 3072);
  // Image 5, green plane (c = 1), row 2, column 7: p = 2 * 32 + 7.
  const size_t at = 5 * 3072 + 1 * 1024 + 2 * 32 + 7;
  EXPECT_EQ(images->pixels[at], (5 + 3 + 71) % 256);
}

TEST_F(Cifar10Test, ReadsAtMostTheImagesAskedFor) {
  Write(12);
  Result<LabeledImages> images = ReadCifar10(path_, 4);
  ASSERT_TRUE(images.ok());
  EXPECT_EQ(images->count(), 4u);
  EXPECT_EQ(images->pixels.size(), 4u * 3072);
}

TEST_F(Cifar10Test, RefusesAFileThatIsNotWholeRecords) {
  Write(3, /*extra_bytes=*/1);  // CIFAR-100 records are 3074 bytes, for instance.
  Result<LabeledImages> images = ReadCifar10(path_);
  ASSERT_FALSE(images.ok());
  EXPECT_NE(images.status().message().find("not a whole number of CIFAR-10 records"),
            std::string::npos)
      << images.status().message();
}

TEST_F(Cifar10Test, RefusesALabelOutsideTheTenClasses) {
  Write(3, 0, /*bad_label_at=*/2);
  Result<LabeledImages> images = ReadCifar10(path_);
  ASSERT_FALSE(images.ok());
  EXPECT_NE(images.status().message().find("record 2 has label 10"), std::string::npos)
      << images.status().message();
}

TEST_F(Cifar10Test, MissingFileIsNotFound) {
  path_ = dir_ + "/absent.bin";
  Result<LabeledImages> images = ReadCifar10(path_);
  ASSERT_FALSE(images.ok());
  EXPECT_EQ(images.status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace paretopipe
