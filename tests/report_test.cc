// `paretopipe report` and `plot` end to end: a database of hand-made runs
// (several cuts, two backends, two network conditions, a dominated run, a
// failed run, a run whose accuracy disagrees) becomes figures and a page
// that parse, show the right front, flag the right run and fetch nothing.
#include "report/report.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <png.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/pareto.h"
#include "report/gnuplot.h"
#include "store/store.h"

namespace paretopipe {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "pp_report_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

constexpr const char* kSlowNet = "delay=20ms,rate=100mbit";
constexpr const char* kHostileError = "worker 127.0.0.1:7001: <script>alert('x')</script> & gone";

// A finished run: `cuts` split the model into stages whose numbers add up to
// about `latency_ms`; bytes per cut fall with the cut's depth.
RunRecord MakeRun(const std::string& backend, const std::string& net, std::vector<int> cuts,
                  double latency_ms, double throughput_ips, bool with_interval) {
  RunRecord r;
  r.started_at_utc = "2026-11-26T19:46:49Z";
  r.config.model = "resnet18";
  r.config.num_classes = 10;
  r.config.seed = 1;
  r.config.weights_digest = "feedface";
  r.config.cuts = cuts;
  r.config.batch_size = 8;
  r.config.input_side_px = 64;
  r.config.repeats = 2;
  r.config.backend = backend;
  r.config.net = net;
  r.config.net_emulation = net == std::string("none") ? "none" : "userspace";
  r.config.sweep_id = "sweep-1";
  r.config.input = "cifar10:/data/cifar";
  r.config.input_digest = "abcdef0123";
  r.config.input_images = 100;
  const size_t stages = cuts.size() + 1;
  for (size_t s = 0; s < stages; ++s) {
    r.config.workers.push_back("127.0.0.1:700" + std::to_string(s));
    StageEnvironment e;
    e.stage = static_cast<int>(s);
    e.endpoint = r.config.workers.back();
    e.hostname = "pi-" + std::to_string(s);
    e.cpu_model = "Cortex-A72";
    e.logical_cpus = 4;
    e.threads = 1;
    e.arch = "aarch64";
    e.libtorch_version = "1.13.1";
    e.limits = "pi: cpus 0, quota 0.25";
    r.environment.push_back(e);
    StageStats t;
    t.stage = static_cast<int>(s);
    t.endpoint = e.endpoint;
    t.compute_ms_mean = latency_ms * 0.7 / stages;
    t.queue_ms_mean = s == 0 ? 0.5 : latency_ms * 0.05;
    t.send_ms_mean = s + 1 < stages ? 0.4 : 0;
    t.bytes_out_per_batch = s + 1 < stages ? 8 * 100000.0 / cuts[s] : 0;
    r.stages.push_back(t);
    if (s + 1 < stages) {
      HopStats h;
      h.hop = static_cast<int>(s);
      h.bytes_per_frame = t.bytes_out_per_batch;
      h.hop_ms_mean = latency_ms * 0.2 / cuts.size();
      h.queue_ms_mean = backend == "grpc" ? 0.3 : 0;
      h.wire_ms_mean = h.hop_ms_mean - h.queue_ms_mean;
      r.hops.push_back(h);
    }
  }
  for (int rep = 0; rep < 2; ++rep) {
    RepeatSummary p;
    p.repeat = rep;
    p.latency_ms_mean = latency_ms;
    p.throughput_ips = throughput_ips;
    r.repeats.push_back(p);
  }
  auto estimate = [&](double mean, double half) {
    Estimate e;
    e.mean = mean;
    e.n = 2;
    if (with_interval) {
      e.ci_low = mean - half;
      e.ci_high = mean + half;
    }
    return e;
  };
  r.latency_ms_mean = estimate(latency_ms, latency_ms * 0.03);
  r.latency_ms_p50 = estimate(latency_ms * 0.98, latency_ms * 0.03);
  r.latency_ms_p95 = estimate(latency_ms * 1.2, latency_ms * 0.05);
  r.latency_ms_p99 = estimate(latency_ms * 1.3, latency_ms * 0.06);
  r.throughput_ips = estimate(throughput_ips, throughput_ips * 0.02);
  r.accuracy = Accuracy{100, 71};
  return r;
}

// Per backend and network: cuts 2, 4 and 6 on the front (4 its knee), 2:6
// dominated by 4 and 6, and a failed run at 8. The second backend and the
// slow network move the front.
std::vector<RunRecord> MakeRuns() {
  std::vector<RunRecord> runs;
  for (const char* net : {"none", kSlowNet}) {
    for (const char* backend : {"tcp", "grpc"}) {
      const double lat_scale = (backend == std::string("grpc") ? 1.2 : 1.0);
      const double lat_add = net == std::string("none") ? 0 : 5;
      const double tput_scale =
          (backend == std::string("grpc") ? 0.9 : 1.0) * (net == std::string("none") ? 1.0 : 0.7);
      auto add = [&](std::vector<int> cuts, double lat, double tput, bool ci) {
        runs.push_back(
            MakeRun(backend, net, cuts, lat * lat_scale + lat_add, tput * tput_scale, ci));
      };
      add({2}, 10, 100, true);
      add({4}, 14, 160, false);
      add({6}, 20, 190, true);
      add({2, 6}, 25, 150, true);  // Dominated.
      RunRecord failed = MakeRun(backend, net, {8}, 0, 0, false);
      failed.status = "failed";
      failed.error = kHostileError;
      failed.repeats.clear();
      failed.stages.clear();
      failed.hops.clear();
      failed.accuracy.reset();
      runs.push_back(failed);
    }
  }
  // The grpc run at cut 4 on the slow network classified 3 images differently.
  for (RunRecord& r : runs) {
    if (r.config.backend == "grpc" && r.config.net == kSlowNet &&
        r.config.cuts == std::vector<int>{4})
      r.accuracy->correct = 68;
  }
  return runs;
}

// Writes `runs` into a new database in `dir` and reads them back as the CLI
// does: the report sees what the store keeps.
std::vector<RunRecord> StoreAndLoad(const TempDir& dir, const std::vector<RunRecord>& runs) {
  auto store = ResultStore::Open(dir.File("runs.db"));
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return {};
  for (const RunRecord& r : runs) {
    Result<int64_t> id = (*store)->InsertRun(r);
    EXPECT_TRUE(id.ok()) << id.status().message();
  }
  Result<std::vector<RunRecord>> loaded = (*store)->LoadRuns(RunFilter{});
  EXPECT_TRUE(loaded.ok()) << loaded.status().message();
  return loaded.ok() ? *loaded : std::vector<RunRecord>{};
}

bool ParsesAsSvg(const std::string& path, std::string* why) {
  xmlDocPtr doc =
      xmlReadFile(path.c_str(), nullptr,
                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_HUGE);
  if (doc == nullptr) {
    *why = "not well-formed XML";
    return false;
  }
  xmlNodePtr root = xmlDocGetRootElement(doc);
  const bool svg = root != nullptr && xmlStrcmp(root->name, BAD_CAST "svg") == 0;
  if (!svg) *why = "root element is not <svg>";
  xmlFreeDoc(doc);
  return svg;
}

// Width and height from the IHDR chunk, or {0, 0} when `path` is not a PNG.
std::pair<uint32_t, uint32_t> PngSize(const std::string& path) {
  const std::string bytes = ReadAll(path);
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 24 || bytes.compare(0, 8, reinterpret_cast<const char*>(kSignature), 8) != 0 ||
      bytes.compare(12, 4, "IHDR") != 0)
    return {0, 0};
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  return {be32(16), be32(20)};
}

void ForEachElement(xmlNodePtr node, const std::function<void(xmlNodePtr)>& visit) {
  for (xmlNodePtr n = node; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) visit(n);
    ForEachElement(n->children, visit);
  }
}

std::string Attribute(xmlNodePtr n, const char* name) {
  xmlChar* v = xmlGetProp(n, BAD_CAST name);
  if (v == nullptr) return "";
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

// Run ids of the points a figure draws as "on the front", read from the
// SVG's hypertext points (gnuplot_svg.showHypertext(evt,'run #N, ...: on the front...')).
std::set<int64_t> FrontIdsInSvg(const std::string& path, std::set<int64_t>* all_ids) {
  std::set<int64_t> ids;
  xmlDocPtr doc = xmlReadFile(path.c_str(), nullptr, XML_PARSE_NONET | XML_PARSE_HUGE);
  if (doc == nullptr) return ids;
  const std::regex hypertext(R"(showHypertext\(evt,'run #(\d+), cuts [^:]*: ([^\\']*))");
  ForEachElement(xmlDocGetRootElement(doc), [&](xmlNodePtr n) {
    std::smatch m;
    const std::string handler = Attribute(n, "onmousemove");
    if (!std::regex_search(handler, m, hypertext)) return;
    const int64_t id = std::stoll(m[1]);
    all_ids->insert(id);
    if (m[2].str().rfind("on the front", 0) == 0) ids.insert(id);
  });
  xmlFreeDoc(doc);
  return ids;
}

// Run ids in each `$front_N` data block of a figure's gnuplot script, by N.
std::map<int, std::vector<int64_t>> FrontBlocksInScript(const std::string& path) {
  std::map<int, std::vector<int64_t>> blocks;
  std::istringstream in(ReadAll(path));
  std::string line;
  const std::regex start(R"(^\$front_(\d+) << EOD$)");
  int current = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, start)) {
      current = std::stoi(m[1]);
      blocks[current];
    } else if (line == "EOD") {
      current = 0;
    } else if (current > 0) {
      std::istringstream fields(line);
      double latency = 0, throughput = 0;
      int64_t id = 0;
      fields >> latency >> throughput >> id;
      blocks[current].push_back(id);
    }
  }
  return blocks;
}

// ParetoFront per (backend, net), the fronts in the order their first run came.
std::vector<std::vector<int64_t>> ExpectedFronts(const std::vector<RunRecord>& runs) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<ParetoPoint>> points;
  for (const RunRecord& r : runs) {
    const std::string key = r.config.backend + "|" + r.config.net;
    if (!points.count(key)) order.push_back(key);
    points[key].push_back(PointOf(r, LatencyStat::kMean));
  }
  std::vector<std::vector<int64_t>> fronts;
  for (const std::string& key : order) {
    std::vector<int64_t> front;
    for (const ParetoResult& p : ParetoFront(points[key])) {
      if (p.on_front) front.push_back(p.point.run_id);
    }
    fronts.push_back(front);
  }
  return fronts;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    made_ = MakeRuns();
    runs_ = StoreAndLoad(dir_, made_);
    ASSERT_EQ(runs_.size(), made_.size());
  }

  Result<ReportResult> Report() {
    ReportOptions options;
    options.output_dir = dir_.File("report");
    options.source = dir_.File("runs.db");
    return WriteReport(runs_, options);
  }

  TempDir dir_;
  std::vector<RunRecord> made_, runs_;
};

constexpr const char* kFigures[] = {"front-resnet18", "moves-resnet18", "breakdown-resnet18",
                                    "bytes-resnet18"};

TEST_F(ReportTest, WritesEveryFigureAsSvgAndPngAndThePage) {
  Result<ReportResult> report = Report();
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->figures, 4);
  EXPECT_EQ(report->index_html, dir_.File("report/index.html"));
  for (const char* figure : kFigures) {
    const std::string base = dir_.File("report/") + figure;
    std::string why;
    EXPECT_TRUE(ParsesAsSvg(base + ".svg", &why)) << base << ".svg: " << why;
    const auto [width, height] = PngSize(base + ".png");
    EXPECT_GE(width, 400u) << base << ".png";
    EXPECT_LE(width, 8000u) << base << ".png";
    EXPECT_GE(height, 300u) << base << ".png";
    EXPECT_LE(height, 8000u) << base << ".png";
    EXPECT_TRUE(fs::exists(base + ".gp")) << base << ".gp";
  }
}

TEST_F(ReportTest, TheFrontDrawnHoldsExactlyTheNonDominatedRuns) {
  ASSERT_TRUE(Report().ok());
  const std::vector<std::vector<int64_t>> expected = ExpectedFronts(runs_);
  ASSERT_EQ(expected.size(), 4u);  // Two backends under two networks.

  // The data gnuplot drew: one $front_N block per panel, in group order.
  const auto blocks = FrontBlocksInScript(dir_.File("report/front-resnet18.gp"));
  ASSERT_EQ(blocks.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    std::vector<int64_t> ids = blocks.at(static_cast<int>(i + 1));
    EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()),
              std::set<int64_t>(expected[i].begin(), expected[i].end()))
        << "panel " << i + 1;
  }

  // The figure itself: its front points, and nothing drawn for failed runs.
  std::set<int64_t> front_expected, drawn, failed;
  for (const auto& f : expected) front_expected.insert(f.begin(), f.end());
  for (const RunRecord& r : runs_) {
    if (r.status != "ok") failed.insert(r.id);
  }
  const std::set<int64_t> front_drawn =
      FrontIdsInSvg(dir_.File("report/front-resnet18.svg"), &drawn);
  EXPECT_EQ(front_drawn, front_expected);
  EXPECT_EQ(drawn.size(), runs_.size() - failed.size());  // Every finished run is a point.
  for (int64_t id : failed) EXPECT_EQ(drawn.count(id), 0u) << "failed run #" << id << " drawn";
}

TEST_F(ReportTest, PageIsSelfContainedWithEveryFigureInline) {
  ASSERT_TRUE(Report().ok());
  const std::string html = ReadAll(dir_.File("report/index.html"));
  EXPECT_NE(html.find("<html"), std::string::npos);

  htmlDocPtr doc = htmlReadMemory(html.data(), static_cast<int>(html.size()), nullptr, "utf-8",
                                  HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);
  ASSERT_NE(doc, nullptr);
  int svgs = 0, tables = 0;
  std::vector<std::string> remote;
  const std::regex fetch(R"(^\s*(https?:)?//)", std::regex::icase);
  ForEachElement(xmlDocGetRootElement(doc), [&](xmlNodePtr n) {
    const std::string name = reinterpret_cast<const char*>(n->name);
    if (name == "svg") ++svgs;
    if (name == "table" && Attribute(n, "id") == "runs") ++tables;
    for (const char* attribute : {"src", "href", "xlink:href", "action", "data", "poster"}) {
      const std::string value = Attribute(n, attribute);
      if (std::regex_search(value, fetch)) remote.push_back(name + " " + attribute + "=" + value);
    }
  });
  xmlFreeDoc(doc);
  EXPECT_EQ(svgs, 4);
  EXPECT_EQ(tables, 1);
  EXPECT_TRUE(remote.empty()) << remote.front();
  // Nor from CSS or script.
  EXPECT_EQ(html.find("url(http"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("fetch("), std::string::npos);
  EXPECT_EQ(html.find("XMLHttpRequest"), std::string::npos);
}

TEST_F(ReportTest, PageEscapesStoredTextAndListsTheKnee) {
  ASSERT_TRUE(Report().ok());
  const std::string html = ReadAll(dir_.File("report/index.html"));
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; gone"),
            std::string::npos);
  EXPECT_NE(html.find("knee: cuts 4 (run #2)"), std::string::npos);
}

TEST_F(ReportTest, PageNamesTheGpuOfAGpuStageAndNoneForACpuStage) {
  StageEnvironment& gpu = runs_.front().environment.back();
  gpu.device = "cuda:0";
  gpu.device_name = "NVIDIA H200";

  ASSERT_TRUE(Report().ok());

  const std::string html = ReadAll(dir_.File("report/index.html"));
  EXPECT_NE(html.find("4 CPUs), 1 thread, cuda:0 (NVIDIA H200), limits pi: cpus 0"),
            std::string::npos);
  EXPECT_NE(html.find("LibTorch 1.13.1, NVIDIA H200)"), std::string::npos);  // Its host.
  EXPECT_EQ(html.find(", cpu,"), std::string::npos);
}

TEST_F(ReportTest, PageFlagsTheRunWhoseAccuracyDiffers) {
  Result<ReportResult> report = Report();
  ASSERT_TRUE(report.ok()) << report.status().message();
  int64_t odd = 0;
  for (const RunRecord& r : runs_) {
    if (r.accuracy && r.accuracy->correct == 68) odd = r.id;
  }
  ASSERT_EQ(report->accuracy_disagreements.size(), 1u);
  EXPECT_EQ(report->accuracy_disagreements[0].run_id, odd);
  const std::string html = ReadAll(dir_.File("report/index.html"));
  const size_t warning = html.find("id=\"accuracy-warning\"");
  ASSERT_NE(warning, std::string::npos);
  EXPECT_LT(warning, html.find("<svg"));  // At the top, before any figure.
  EXPECT_NE(html.find("must agree: runs #" + std::to_string(odd) + "."), std::string::npos);
  // Its cell in the table is marked, and only its.
  const std::regex flagged("<tr id=\"run-(\\d+)\"[^>]*>(?:(?!</tr>).)*class=\"num flag\"");
  std::set<int64_t> rows;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), flagged);
       it != std::sregex_iterator(); ++it)
    rows.insert(std::stoll((*it)[1]));
  EXPECT_EQ(rows, std::set<int64_t>{odd});
  EXPECT_NE(html.find("<th>top-1 %</th>"), std::string::npos);
}

TEST_F(ReportTest, RunsWithPredictionsGetThePredictionFigureAndTable) {
  // The planner predicted the tcp runs without network emulation: its front
  // 2 and 4, the control 6 (predicted slow, measured on the front) and the
  // dominated 2,6.
  std::map<std::string, RunPrediction> predicted;
  predicted["2"] = {11, 11, 95, "stage 1", "front", "profiles"};
  predicted["4"] = {13, 13, 170, "stage 2", "front", "profiles"};
  predicted["6"] = {30, 30, 150, "hop 1", "control", "profiles"};
  predicted["2,6"] = {24, 24, 140, "hop 1", "validate", "profiles"};
  std::set<int64_t> ids;
  for (RunRecord& r : runs_) {
    if (r.config.backend != "tcp" || r.config.net != "none" || r.status != "ok") continue;
    std::string cuts;
    for (int c : r.config.cuts) cuts += (cuts.empty() ? "" : ",") + std::to_string(c);
    r.prediction = predicted.at(cuts);
    ids.insert(r.id);
  }
  ASSERT_EQ(ids.size(), 4u);

  Result<ReportResult> report = Report();
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->figures, 5);
  std::string why;
  EXPECT_TRUE(ParsesAsSvg(dir_.File("report/prediction-resnet18.svg"), &why)) << why;
  EXPECT_GT(PngSize(dir_.File("report/prediction-resnet18.png")).first, 0u);
  // Each predicted run is drawn twice, measured and predicted.
  std::set<int64_t> drawn;
  FrontIdsInSvg(dir_.File("report/prediction-resnet18.svg"), &drawn);
  EXPECT_EQ(drawn, ids);
  const std::string svg = ReadAll(dir_.File("report/prediction-resnet18.svg"));
  for (int64_t id : ids) {
    for (const char* what : {"measured, role", "predicted, role"}) {
      EXPECT_NE(svg.find(fmt::format("run #{}, cuts", id)), std::string::npos);
      EXPECT_NE(svg.find(what), std::string::npos) << what;
    }
  }

  const std::string html = ReadAll(dir_.File("report/index.html"));
  const size_t figure = html.find("aria-label=\"resnet18: predicted (hollow) vs measured");
  const size_t table = html.find("<table class=\"predictions\">");
  ASSERT_NE(figure, std::string::npos);
  ASSERT_NE(table, std::string::npos);
  EXPECT_LT(figure, table);  // The table under its figure.
  int64_t control = 0;
  for (const RunRecord& r : runs_) {
    if (r.prediction && r.prediction->role == "control") control = r.id;
  }
  EXPECT_NE(html.find(fmt::format("backend tcp, network none: 4 runs, latency MAPE "
                                  "17.8%, throughput MAPE 9.7%; control run cuts 6 (#{}) beat "
                                  "the predicted front: no run predicted on or near it measured "
                                  "better on both metrics",
                                  control)),
            std::string::npos)
      << html.substr(table, 3000);
}

TEST_F(ReportTest, PlotOfPredictionsWithoutAnyIsNotFound) {
  const Status s =
      WritePlot(runs_, FigureKind::kPrediction, LatencyStat::kMean, dir_.File("p.svg"));
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("has a prediction"), std::string::npos) << s.message();
}

TEST_F(ReportTest, PlotWritesOneFigureInTheFormatOfItsExtension) {
  const std::string svg = dir_.File("front.svg"), png = dir_.File("breakdown.png");
  Status s = WritePlot(runs_, FigureKind::kFront, LatencyStat::kP95, svg);
  ASSERT_TRUE(s.ok()) << s.message();
  s = WritePlot(runs_, FigureKind::kBreakdown, LatencyStat::kMean, png);
  ASSERT_TRUE(s.ok()) << s.message();
  std::string why;
  EXPECT_TRUE(ParsesAsSvg(svg, &why)) << why;
  EXPECT_GT(PngSize(png).first, 0u);
  EXPECT_FALSE(ParsesAsSvg(png, &why));
  // Nothing else is left beside them (the script was temporary).
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_.File("")))
    names.insert(entry.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"runs.db", "front.svg", "breakdown.png"}));
}

TEST_F(ReportTest, PlotRefusesAnUnknownExtensionAndSeveralModels) {
  Status s = WritePlot(runs_, FigureKind::kFront, LatencyStat::kMean, dir_.File("front.pdf"));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find(".svg or .png"), std::string::npos) << s.message();
  std::vector<RunRecord> two_models = runs_;
  two_models.back().config.model = "vgg16";
  s = WritePlot(two_models, FigureKind::kFront, LatencyStat::kMean, dir_.File("front.svg"));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("resnet18, vgg16"), std::string::npos) << s.message();
}

TEST_F(ReportTest, MissingGnuplotIsOneLineNamingThePackage) {
  ReportOptions options;
  options.output_dir = dir_.File("report");
  options.gnuplot = dir_.File("no-such-gnuplot");
  Result<ReportResult> report = WriteReport(runs_, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Status::Code::kNotFound);
  EXPECT_NE(report.status().message().find("gnuplot-nox"), std::string::npos)
      << report.status().message();
  EXPECT_EQ(report.status().message().find('\n'), std::string::npos);
}

TEST(GnuplotTest, ItsErrorIsOneLineNamingTheScriptLine) {
  TempDir dir;
  std::ofstream(dir.File("bad.gp")) << "set terminal svg\nset output 'x.svg'\nplot $nothing\n";
  const Status s = RunGnuplot("gnuplot", "bad.gp", dir.File(""));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kInternal);
  EXPECT_NE(s.message().find("\"bad.gp\" line 3"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
}

TEST(GnuplotTest, StoredNamesCannotRunShellCommands) {
  // gnuplot expands `backquotes` inside double-quoted strings; a model name
  // with one must reach the figure as text, not as a command.
  TempDir dir;
  const std::string marker = dir.File("pwned");
  std::vector<RunRecord> runs = {MakeRun("tcp", "none", {2}, 10, 100, false)};
  runs[0].id = 1;
  // Both ways in: a backquote in a string, a line break ending a comment.
  runs[0].config.model = "evil`touch " + marker + "`\"\nsystem('touch " + marker + "')";
  const Status s = WritePlot(runs, FigureKind::kFront, LatencyStat::kMean, dir.File("f.svg"));
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_NE(ReadAll(dir.File("f.svg")).find("evil`touch"), std::string::npos);
}

// Where chromium is, or "" when it is not installed.
std::string FindChromium() {
  const char* path = getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const std::string candidate = dir + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

TEST_F(ReportTest, ChromiumRendersThePageOfflineAndNotBlank) {
  const std::string chromium = FindChromium();
  if (chromium.empty())
    GTEST_SKIP() << "chromium not installed (Debian package chromium): page not rendered";
  ASSERT_TRUE(Report().ok());
  const std::string shot = dir_.File("shot.png");
  // No sandbox: tests may run as root, where Chromium refuses it. A proxy on
  // the discard port and a resolver that finds nothing: any fetch would fail.
  const std::string command = fmt::format(
      "timeout 120 '{}' --headless --no-sandbox --disable-gpu --no-first-run "
      "--user-data-dir='{}' --proxy-server=127.0.0.1:9 --host-resolver-rules='MAP * ~NOTFOUND' "
      "--screenshot='{}' --window-size=1200,900 'file://{}' > '{}' 2>&1",
      chromium, dir_.File("chromium-profile"), shot, dir_.File("report/index.html"),
      dir_.File("chromium.log"));
  const int rc = std::system(command.c_str());
  ASSERT_EQ(rc, 0) << command << "\n" << ReadAll(dir_.File("chromium.log"));

  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&image, shot.c_str())) << image.message;
  image.format = PNG_FORMAT_RGB;
  std::vector<png_byte> pixels(PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) << image.message;
  EXPECT_EQ(image.width, 1200u);
  EXPECT_EQ(image.height, 900u);
  std::set<uint32_t> colours;
  size_t ink = 0, warning_red = 0;
  for (size_t i = 0; i + 2 < pixels.size(); i += 3) {
    const int r = pixels[i], g = pixels[i + 1], b = pixels[i + 2];
    colours.insert(static_cast<uint32_t>(r << 16 | g << 8 | b));
    if (r < 235 || g < 235 || b < 235) ++ink;
    if (r > 180 && g < 120 && b < 110) ++warning_red;  // The accuracy warning's border and text.
  }
  const double ink_fraction = static_cast<double>(ink) / (image.width * image.height);
  EXPECT_GE(colours.size(), 64u) << "a blank or single-colour page";
  EXPECT_GE(ink_fraction, 0.03) << "almost nothing drawn";
  EXPECT_GE(warning_red, 200u) << "the accuracy warning is not visible at the top";
}

}  // namespace
}  // namespace paretopipe
