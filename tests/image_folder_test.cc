// --images DIR's listing, as torchvision's ImageFolder labels it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/image_folder.h"

namespace paretopipe {
namespace {

namespace fs = std::filesystem;

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/pp_folder_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Touch(const std::string& relative) {
    fs::create_directories(fs::path(dir_ / fs::path(relative)).parent_path());
    std::ofstream(dir_ / fs::path(relative)) << "x";
  }
  fs::path dir_;
};

TEST_F(ImageFolderTest, SubdirectoriesAreClassesInSortedOrder) {
  Touch("dog/b.png");
  Touch("dog/a.JPG");
  Touch("dog/deeper/c.jpeg");
  Touch("dog/z.png");  // Before deeper/: ImageFolder walks a directory's files first.
  Touch("cat/z.png");
  Touch("cat/notes.txt");
  Touch("stray.png");  // Beside the classes: not in any, as in ImageFolder.
  Result<ImageFolder> f = ListImageFolder(dir_.string());
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->classes, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(f->paths.size(), 5u);
  EXPECT_EQ(f->paths[0], (dir_ / "cat/z.png").string());
  EXPECT_EQ(f->paths[1], (dir_ / "dog/a.JPG").string());
  EXPECT_EQ(f->paths[2], (dir_ / "dog/b.png").string());
  EXPECT_EQ(f->paths[3], (dir_ / "dog/z.png").string());
  EXPECT_EQ(f->paths[4], (dir_ / "dog/deeper/c.jpeg").string());
  EXPECT_EQ(f->labels, (std::vector<int>{0, 1, 1, 1, 1}));
}

TEST_F(ImageFolderTest, AFlatFolderIsUnlabeled) {
  Touch("b.png");
  Touch("a.jpg");
  Result<ImageFolder> f = ListImageFolder(dir_.string());
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f->classes.empty());
  EXPECT_EQ(f->paths, (std::vector<std::string>{(dir_ / "a.jpg").string(),
                                                (dir_ / "b.png").string()}));
  EXPECT_EQ(f->labels, (std::vector<int>{-1, -1}));
}

TEST_F(ImageFolderTest, NoImagesOrNoDirectoryIsAClearError) {
  Touch("readme.txt");
  Result<ImageFolder> none = ListImageFolder(dir_.string());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no .jpg, .jpeg or .png files"), std::string::npos);
  EXPECT_EQ(ListImageFolder((dir_ / "absent").string()).status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace paretopipe
