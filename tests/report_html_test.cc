// The report's small pieces: escaping for HTML and gnuplot, SVG made fit to
// sit inline, file names from model names, figure kinds, and the planner's
// predictions set beside the measurements (figure and table, from runs made
// by hand).
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "report/figures.h"
#include "report/gnuplot.h"
#include "report/html.h"
#include "report/report.h"

namespace paretopipe {
namespace {

TEST(HtmlEscapeTest, EscapesEveryCharacterThatCouldOpenMarkupOrEndAnAttribute) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("delay=20ms,rate=5mbit ±"), "delay=20ms,rate=5mbit ±");
}

TEST(InlineSvgTest, PrefixesIdsAndTheirReferencesAndDropsTheProlog) {
  const std::string svg =
      "<?xml version=\"1.0\" encoding=\"utf-8\"  standalone=\"no\"?>\n"
      "<svg\n width=\"600\" height=\"400\">\n<title>Gnuplot</title>\n"
      "<defs><circle id='gpPt5' r='1'/><use xlink:href='#gpPt5' id='gpPt6'/></defs>\n"
      "<g id=\"gnuplot_canvas\" clip-path=\"url(#clip1)\"><rect gid='keep'/></g></svg>\n";
  const std::string out = InlineSvg(svg, "f2", "resnet18 <front>");
  EXPECT_EQ(
      out.rfind("<svg class=\"figure\" role=\"img\" aria-label=\"resnet18 &lt;front&gt;\"", 0), 0u)
      << out;
  EXPECT_EQ(out.find("<?xml"), std::string::npos);
  EXPECT_NE(out.find("<title>resnet18 &lt;front&gt;</title>"), std::string::npos);
  EXPECT_NE(out.find("id='f2-gpPt5'"), std::string::npos);
  EXPECT_NE(out.find("xlink:href='#f2-gpPt5' id='f2-gpPt6'"), std::string::npos);
  EXPECT_NE(out.find("id=\"f2-gnuplot_canvas\""), std::string::npos);
  EXPECT_NE(out.find("url(#f2-clip1)"), std::string::npos);
  EXPECT_NE(out.find("gid='keep'"), std::string::npos);
}

TEST(InlineSvgTest, TextWithoutAnSvgElementGivesNothing) {
  EXPECT_EQ(InlineSvg("<html></html>", "f1", "x"), "");
}

TEST(GnuplotQuotingTest, StringsAreSingleQuotedSoBackquotesAreNotRun) {
  EXPECT_EQ(GnuplotString("it's `rm -rf /`"), "'it''s `rm -rf /`'");
  EXPECT_EQ(GnuplotString("two\nlines\\"), "'two lines\\'");
}

TEST(GnuplotQuotingTest, DataFieldsCannotEndTheFieldOrTheLine) {
  EXPECT_EQ(GnuplotDataField("a \"b\"\nEOD"), "\"a 'b' EOD\"");
}

TEST(FileNamePartTest, KeepsSafeCharactersOnly) {
  EXPECT_EQ(FileNamePart("resnet18"), "resnet18");
  EXPECT_EQ(FileNamePart("../etc/passwd"), "_._etc_passwd");
  EXPECT_EQ(FileNamePart("mobile net v2.1"), "mobile_net_v2.1");
  EXPECT_EQ(FileNamePart(""), "_");
}

TEST(FigureKindTest, ParsesItsNamesAndRefusesOthers) {
  for (FigureKind kind : {FigureKind::kFront, FigureKind::kBreakdown, FigureKind::kBytes,
                          FigureKind::kMoves, FigureKind::kPrediction}) {
    Result<FigureKind> parsed = ParseFigureKind(FigureKindName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(AllFigureKinds().size(), 5u);
  Result<FigureKind> bad = ParseFigureKind("pie");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("front, breakdown, bytes, moves, prediction"),
            std::string::npos)
      << bad.status().message();
}

TEST(FigureTest, NothingToDrawWithoutFinishedRunsOrWithOneConditionForMoves) {
  RunRecord failed;
  failed.id = 1;
  failed.config.model = "resnet18";
  failed.status = "failed";
  EXPECT_FALSE(BuildFigure(FigureKind::kFront, {failed}, "resnet18", LatencyStat::kMean));
  RunRecord ok = failed;
  ok.status = "ok";
  ok.latency_ms_mean.mean = 10;
  ok.throughput_ips.mean = 100;
  EXPECT_TRUE(BuildFigure(FigureKind::kFront, {ok}, "resnet18", LatencyStat::kMean));
  EXPECT_FALSE(BuildFigure(FigureKind::kFront, {ok}, "vgg16", LatencyStat::kMean));
  EXPECT_FALSE(BuildFigure(FigureKind::kMoves, {ok}, "resnet18", LatencyStat::kMean));
}

// A finished run of mobilenet_v2 that the planner predicted.
RunRecord PredictedRun(int64_t id, std::vector<int> cuts, const std::string& role,
                       double measured_ms, double measured_ips, double predicted_ms,
                       double predicted_ips) {
  RunRecord r;
  r.id = id;
  r.config.model = "mobilenet_v2";
  r.config.cuts = std::move(cuts);
  r.latency_ms_mean.mean = measured_ms;
  r.latency_ms_mean.ci_low = measured_ms * 0.97;
  r.latency_ms_mean.ci_high = measured_ms * 1.03;
  r.latency_ms_mean.n = 3;
  r.throughput_ips.mean = measured_ips;
  r.throughput_ips.n = 3;
  RunPrediction p;
  p.latency_ms = predicted_ms;
  p.throughput_ips = predicted_ips;
  p.role = role;
  r.prediction = p;
  return r;
}

// Cuts 2 and 4 predicted on the front; cut 5 a control, predicted dominated
// by cut 4 (slower and fewer images/s), measured between cuts 2 and 4: it is
// on the measured front. Cut 7, a control, is dominated as predicted.
std::vector<RunRecord> PredictedRuns() {
  return {
      PredictedRun(1, {2}, "front", 10, 100, 11, 95),
      PredictedRun(2, {4}, "front", 14, 160, 13, 170),
      PredictedRun(3, {5}, "control", 12, 150, 15, 120),
      PredictedRun(4, {7}, "control", 16, 140, 17, 150),
  };
}

// The rows of every data block of a gnuplot script, by block name ("$links_1").
std::map<std::string, std::vector<std::string>> DataBlocks(const std::string& script) {
  std::map<std::string, std::vector<std::string>> blocks;
  std::istringstream in(script);
  std::string line, current;
  while (std::getline(in, line)) {
    const size_t heredoc = line.find(" << EOD");
    if (!line.empty() && line[0] == '$' && heredoc != std::string::npos) {
      current = line.substr(0, heredoc);
      blocks[current];
    } else if (line == "EOD") {
      current.clear();
    } else if (!current.empty()) {
      blocks[current].push_back(line);
    }
  }
  return blocks;
}

// The first `n` fields of each row: "latency throughput run_id".
std::vector<std::string> Leading(const std::vector<std::string>& rows, int n) {
  std::vector<std::string> out;
  for (const std::string& row : rows) {
    std::istringstream fields(row);
    std::string field, kept;
    for (int i = 0; i < n && fields >> field; ++i) kept += (i ? " " : "") + field;
    out.push_back(kept);
  }
  return out;
}

TEST(PredictionFigureTest, NothingToDrawWithoutAPrediction) {
  std::vector<RunRecord> runs = PredictedRuns();
  for (RunRecord& r : runs) r.prediction.reset();
  EXPECT_FALSE(BuildFigure(FigureKind::kPrediction, runs, "mobilenet_v2", LatencyStat::kMean));
  // A failed run's prediction has no measurement to meet.
  runs = {PredictedRuns()[0]};
  runs[0].status = "failed";
  EXPECT_FALSE(BuildFigure(FigureKind::kPrediction, runs, "mobilenet_v2", LatencyStat::kMean));
  EXPECT_TRUE(
      BuildFigure(FigureKind::kPrediction, PredictedRuns(), "mobilenet_v2", LatencyStat::kMean));
  EXPECT_FALSE(
      BuildFigure(FigureKind::kPrediction, PredictedRuns(), "resnet18", LatencyStat::kMean));
}

TEST(PredictionFigureTest, DrawsEachRunMeasuredAndPredictedByRole) {
  std::vector<RunRecord> runs = PredictedRuns();
  runs.push_back(runs[0]);  // A run without a prediction is not drawn.
  runs.back().id = 5;
  runs.back().prediction.reset();
  const auto figure =
      BuildFigure(FigureKind::kPrediction, runs, "mobilenet_v2", LatencyStat::kMean);
  ASSERT_TRUE(figure);
  EXPECT_EQ(figure->panels, 1);
  const auto blocks = DataBlocks(figure->data);
  EXPECT_EQ(Leading(blocks.at("$measured_1_front"), 3),
            (std::vector<std::string>{"10 100 1", "14 160 2"}));
  EXPECT_EQ(Leading(blocks.at("$predicted_1_front"), 3),
            (std::vector<std::string>{"11 95 1", "13 170 2"}));
  EXPECT_EQ(Leading(blocks.at("$measured_1_control"), 3),
            (std::vector<std::string>{"12 150 3", "16 140 4"}));
  EXPECT_EQ(Leading(blocks.at("$predicted_1_control"), 3),
            (std::vector<std::string>{"15 120 3", "17 150 4"}));
  EXPECT_EQ(blocks.count("$measured_1_validate"), 0u);
  // From each predicted point to its measured one.
  EXPECT_EQ(Leading(blocks.at("$links_1"), 4).front(), "11 95 -1 5");
  // Filled measured points, hollow predicted ones, in the role's colour.
  EXPECT_NE(figure->commands.find("$measured_1_control using 1:2:(ht($3, strcol(4), strcol(5), "
                                  "$1, $2)) with labels hypertext point pt 9"),
            std::string::npos)
      << figure->commands;
  EXPECT_NE(figure->commands.find("$predicted_1_control using 1:2:(ht($3, strcol(4), strcol(5), "
                                  "$1, $2)) with labels hypertext point pt 8"),
            std::string::npos);
  EXPECT_NE(figure->commands.find("$links_1 using 1:2:3:4:5 with vectors nohead"),
            std::string::npos);
}

TEST(PredictionFigureTest, DrawsThePredictedFrontDashedAndTheMeasuredFrontSolid) {
  const auto figure =
      BuildFigure(FigureKind::kPrediction, PredictedRuns(), "mobilenet_v2", LatencyStat::kMean);
  ASSERT_TRUE(figure);
  const auto blocks = DataBlocks(figure->data);
  // Predicted: 11 ms 95/s, 13 ms 170/s; 15 ms 120/s and 17 ms 150/s are dominated.
  EXPECT_EQ(Leading(blocks.at("$pareto_predicted_1"), 3),
            (std::vector<std::string>{"11 95 1", "13 170 2"}));
  // Measured: the control at cut 5 is between cuts 2 and 4.
  EXPECT_EQ(Leading(blocks.at("$pareto_measured_1"), 3),
            (std::vector<std::string>{"10 100 1", "12 150 3", "14 160 2"}));
  EXPECT_NE(figure->commands.find("$pareto_predicted_1 using 1:2 with steps lw 1.5 dt 2"),
            std::string::npos);
  EXPECT_NE(figure->commands.find("$pareto_measured_1 using 1:2 with steps lw 2 lc"),
            std::string::npos);
}

TEST(PredictionFigureTest, TitleGivesTheMeanAbsolutePercentageErrors) {
  // Latency 10% too high, then 10% too low; throughput 5% too low, then right.
  const std::vector<RunRecord> runs = {
      PredictedRun(1, {2}, "front", 100, 100, 110, 95),
      PredictedRun(2, {4}, "validate", 100, 200, 90, 200),
  };
  const auto figure =
      BuildFigure(FigureKind::kPrediction, runs, "mobilenet_v2", LatencyStat::kMean);
  ASSERT_TRUE(figure);
  EXPECT_EQ(figure->title,
            "mobilenet_v2: predicted (hollow) vs measured (filled), latency MAPE 10.0%, "
            "throughput MAPE 2.5%");
}

TEST(PredictionFigureTest, APanelPerBackendAndNetworkAsTheFrontFigureHas) {
  std::vector<RunRecord> runs = PredictedRuns();
  runs[2].config.net = "delay=20ms";
  runs[3].config.net = "delay=20ms";
  const auto figure =
      BuildFigure(FigureKind::kPrediction, runs, "mobilenet_v2", LatencyStat::kMean);
  ASSERT_TRUE(figure);
  EXPECT_EQ(figure->panels, 2);
  const auto blocks = DataBlocks(figure->data);
  EXPECT_EQ(Leading(blocks.at("$measured_2_control"), 3),
            (std::vector<std::string>{"12 150 3", "16 140 4"}));
  EXPECT_NE(figure->commands.find("set title 'backend tcp, network delay=20ms'"),
            std::string::npos);
}

// The page with one figure of `kind` for mobilenet_v2.
std::string PageWith(const std::vector<RunRecord>& runs, FigureKind kind) {
  PageContent content;
  PageModel model;
  model.model = "mobilenet_v2";
  PageFigure figure;
  figure.kind = kind;
  figure.svg_inline = "<svg></svg>";
  model.figures.push_back(figure);
  content.models.push_back(model);
  return RenderReportPage(runs, content);
}

TEST(PredictionTableTest, ListsEachPredictionBesideItsMeasurementWithTheErrors) {
  const std::vector<RunRecord> runs = {
      PredictedRun(1, {2}, "front", 100, 100, 110, 95),
      PredictedRun(2, {4}, "validate", 100, 200, 90, 200),
  };
  const std::string html = PageWith(runs, FigureKind::kPrediction);
  EXPECT_NE(html.find("<td><a href=\"#run-1\">#1</a></td><td>2</td><td>front</td>"
                      "<td class=\"num\">110.00</td><td class=\"num\">100.00</td>"
                      "<td class=\"num\">+10.0</td><td class=\"num\">95.0</td>"
                      "<td class=\"num\">100.0</td><td class=\"num\">-5.0</td>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<td class=\"num\">-10.0</td>"), std::string::npos);
  EXPECT_NE(html.find("over 2 runs: latency MAPE 10.0%, throughput MAPE 2.5%"), std::string::npos);
  EXPECT_NE(html.find("no control run was measured"), std::string::npos);
}

TEST(PredictionTableTest, NamesAControlRunThatLandedOnTheMeasuredFront) {
  const std::string html = PageWith(PredictedRuns(), FigureKind::kPrediction);
  EXPECT_NE(html.find("control run cuts 5 (#3) beat the predicted front: no run predicted on or "
                      "near it measured better on both metrics"),
            std::string::npos)
      << html;
  EXPECT_EQ(html.find("no control beat"), std::string::npos);
}

TEST(PredictionTableTest, SaysNoControlBeatThePredictedFrontWhenNoneDid) {
  std::vector<RunRecord> runs = PredictedRuns();
  runs[2].latency_ms_mean.mean = 15;  // Cut 5 now measured dominated by cut 4 (14 ms, 160/s).
  const std::string html = PageWith(runs, FigureKind::kPrediction);
  EXPECT_NE(html.find("no control beat the predicted front (each of its 2 control runs is "
                      "beaten by a run predicted on or near it)"),
            std::string::npos)
      << html;
  EXPECT_EQ(html.find("beat the predicted front:"), std::string::npos);
}

TEST(PredictionTableTest, NoTableWithoutThePredictionFigure) {
  const std::string html = PageWith(PredictedRuns(), FigureKind::kFront);
  EXPECT_EQ(html.find("class=\"predictions\""), std::string::npos);
  EXPECT_EQ(html.find("MAPE"), std::string::npos);
}

}  // namespace
}  // namespace paretopipe
