// The report's small pieces: escaping for HTML and gnuplot, SVG made fit to
// sit inline, file names from model names, figure kinds.
#include <gtest/gtest.h>

#include <string>

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
  for (FigureKind kind :
       {FigureKind::kFront, FigureKind::kBreakdown, FigureKind::kBytes, FigureKind::kMoves}) {
    Result<FigureKind> parsed = ParseFigureKind(FigureKindName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  Result<FigureKind> bad = ParseFigureKind("pie");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("front, breakdown, bytes, moves"), std::string::npos);
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

}  // namespace
}  // namespace paretopipe
