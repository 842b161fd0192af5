// The planner's inputs: link specs, link files and device profiles.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "analysis/device_profile.h"
#include "analysis/link_model.h"

namespace paretopipe {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LinkSpecTest, RoundTripTimeIsHalvedIntoTheOneWayDelay) {
  Result<LinkModel> link = ParseLinkSpec("rtt=40ms,rate=20mbit");
  ASSERT_TRUE(link.ok()) << link.status().message();
  EXPECT_DOUBLE_EQ(link->delay_ms, 20);
  EXPECT_DOUBLE_EQ(link->rate_bits_per_s, 20e6);
  EXPECT_DOUBLE_EQ(link->overhead_ms, 0);
}

TEST(LinkSpecTest, DelayOverheadAndUnlimitedRateAreRead) {
  Result<LinkModel> link = ParseLinkSpec("delay=1.5ms,rate=unlimited,overhead=200us");
  ASSERT_TRUE(link.ok()) << link.status().message();
  EXPECT_DOUBLE_EQ(link->delay_ms, 1.5);
  EXPECT_DOUBLE_EQ(link->rate_bits_per_s, 0);
  EXPECT_DOUBLE_EQ(link->overhead_ms, 0.2);
}

TEST(LinkSpecTest, NoneIsALinkWithoutCost) {
  Result<LinkModel> link = ParseLinkSpec("none");
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(*link, LinkModel{});
  EXPECT_EQ(DescribeLinkModel(*link), "none");
}

TEST(LinkSpecTest, ErrorsNameTheKeyAndTheReason) {
  struct Case {
    const char* spec;
    const char* expected;
  } cases[] = {
      {"rtt=40", "rtt=40: give a unit"},
      {"rtt=40ms,delay=20ms", "not both"},
      {"rate=5mbps", "bytes per second"},
      {"rate=0mbit", "rate=0mbit: must be within"},
      {"jitter=1ms", "unknown key 'jitter'"},
      {"rtt=40ms,rtt=20ms", "'rtt' given twice"},
      {"rtt", "not key=value"},
      {"rtt=40ms,", "ends with a comma"},
      {"", "empty"},
  };
  for (const Case& c : cases) {
    Result<LinkModel> link = ParseLinkSpec(c.spec);
    ASSERT_FALSE(link.ok()) << c.spec;
    EXPECT_TRUE(Contains(link.status().message(), c.expected))
        << c.spec << ": " << link.status().message();
  }
}

TEST(LinkModelTest, TransferIsOverheadPlusSerialization) {
  const LinkModel link{0.25, 8e6, 10};  // 8 Mbit/s: 1 ms per 1000 bytes.
  EXPECT_DOUBLE_EQ(link.TransferMs(1000), 1.25);
  EXPECT_DOUBLE_EQ(link.TimeMs(1000), 11.25);
  EXPECT_DOUBLE_EQ((LinkModel{0.25, 0, 10}.TransferMs(1 << 30)), 0.25);  // Unlimited.
}

TEST(LinkFileTest, ReadsTheThreeNumbersAndIgnoresTheFit) {
  Result<LinkModel> link = ParseLinkFile(
      R"({"format": "paretopipe.link", "version": 1, "overhead_ms": 0.3,
          "rate_bits_per_s": 9.5e7, "delay_ms": 12, "fit": {"samples": 40, "r2": 0.998}})",
      "link.json");
  ASSERT_TRUE(link.ok()) << link.status().message();
  EXPECT_EQ(*link, (LinkModel{0.3, 9.5e7, 12}));
}

TEST(LinkFileTest, RefusesOtherFormatsVersionsAndBadNumbers) {
  struct Case {
    const char* text;
    const char* expected;
  } cases[] = {
      {"[1]", "not a JSON object"},
      {R"({"format": "paretopipe.profile", "version": 1})", "not a link file"},
      {R"({"format": "paretopipe.link", "version": 2})", "version 2"},
      {R"({"format": "paretopipe.link", "version": 1, "overhead_ms": 0, "rate_bits_per_s": -1,
           "delay_ms": 0})",
       "\"rate_bits_per_s\" is -1"},
      {R"({"format": "paretopipe.link", "version": 1, "overhead_ms": 0, "rate_bits_per_s": 0})",
       "\"delay_ms\" is missing"},
  };
  for (const Case& c : cases) {
    Result<LinkModel> link = ParseLinkFile(c.text, "l.json");
    ASSERT_FALSE(link.ok()) << c.text;
    EXPECT_TRUE(Contains(link.status().message(), "link file l.json: "));
    EXPECT_TRUE(Contains(link.status().message(), c.expected)) << link.status().message();
  }
}

TEST(LinkFileTest, MissingFileIsAnIoError) {
  Result<LinkModel> link = ReadLinkFile("/nonexistent/link.json");
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.status().code(), Status::Code::kIoError);
}

// A profile as `paretopipe profile` writes it, with two blocks.
nlohmann::json ProfileJson(const std::string& model = "mobilenet_v2", int batch = 8) {
  nlohmann::json block = {{"index", 0},
                          {"name", "features.0"},
                          {"compute_ms", {{"n", 5}, {"median", 4.5}, {"p95", 5.0}}},
                          {"output_shape", {batch, 32, 112, 112}},
                          {"output_bytes", batch * 32 * 112 * 112 * 4}};
  nlohmann::json last = block;
  last["index"] = 1;
  last["name"] = "classifier";
  last["compute_ms"]["median"] = 1.25;
  last["output_bytes"] = batch * 1000 * 4;
  return {{"format", "paretopipe.profile"},
          {"version", 1},
          {"model", {{"name", model}, {"num_classes", 1000}}},
          {"settings",
           {{"batch", batch},
            {"input_shape", {batch, 3, 224, 224}},
            {"device", "cpu"},
            {"threads", 1}}},
          {"machine", {{"hostname", "pi"}}},
          {"blocks", {block, last}}};
}

TEST(DeviceProfileTest, ReadsMediansAndOutputBytes) {
  Result<DeviceProfile> p = ParseDeviceProfile(ProfileJson().dump(), "a.json");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->model, "mobilenet_v2");
  EXPECT_EQ(p->batch, 8);
  EXPECT_EQ(p->block_compute_ms, (std::vector<double>{4.5, 1.25}));
  EXPECT_EQ(p->block_output_bytes, (std::vector<int64_t>{8 * 32 * 112 * 112 * 4, 32000}));
  EXPECT_EQ(p->hostname, "pi");
}

TEST(DeviceProfileTest, RefusesOtherFormatsVersionsAndBrokenBlocks) {
  nlohmann::json wrong_format = ProfileJson(), wrong_version = ProfileJson(),
                 no_median = ProfileJson(), shuffled = ProfileJson(), negative = ProfileJson();
  wrong_format["format"] = "paretopipe.link";
  wrong_version["version"] = 2;
  no_median["blocks"][1]["compute_ms"].erase("median");
  shuffled["blocks"][0]["index"] = 1;
  negative["blocks"][0]["compute_ms"]["median"] = -0.5;
  const std::pair<nlohmann::json, const char*> cases[] = {
      {wrong_format, "not a device profile"},
      {wrong_version, "version 2 is not one this build reads"},
      {no_median, "blocks[1].compute_ms.median is (missing)"},
      {shuffled, "blocks[0] has index 1, expected 0"},
      {negative, "blocks[0].compute_ms.median is -0.5"},
  };
  for (const auto& [json, expected] : cases) {
    Result<DeviceProfile> p = ParseDeviceProfile(json.dump(), "a.json");
    ASSERT_FALSE(p.ok()) << expected;
    EXPECT_TRUE(Contains(p.status().message(), "profile a.json: ")) << p.status().message();
    EXPECT_TRUE(Contains(p.status().message(), expected)) << p.status().message();
  }
  EXPECT_FALSE(ParseDeviceProfile("not json", "a.json").ok());
}

TEST(DeviceProfileTest, ProfilesOfAnotherModelOrBatchAreRefusedInOneLine) {
  Result<DeviceProfile> a = ParseDeviceProfile(ProfileJson().dump(), "a.json");
  Result<DeviceProfile> other_model = ParseDeviceProfile(ProfileJson("resnet18").dump(), "b.json");
  Result<DeviceProfile> other_batch =
      ParseDeviceProfile(ProfileJson("mobilenet_v2", 4).dump(), "c.json");
  ASSERT_TRUE(a.ok() && other_model.ok() && other_batch.ok());
  EXPECT_TRUE(CheckSameModel(*a, *a).ok());
  const Status model = CheckSameModel(*a, *other_model);
  EXPECT_EQ(model.message(),
            "profile b.json is of model resnet18, but profile a.json is of model mobilenet_v2; "
            "profile every device with the same model and --batch");
  const Status batch = CheckSameModel(*a, *other_batch);
  EXPECT_TRUE(Contains(batch.message(),
                       "profile c.json is of batch 4, but profile a.json is of "
                       "batch 8"))
      << batch.message();
}

}  // namespace
}  // namespace paretopipe
