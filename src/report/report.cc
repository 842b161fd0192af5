#include "report/report.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "report/gnuplot.h"
#include "report/html.h"

namespace paretopipe {

namespace fs = std::filesystem;

std::string FileNamePart(const std::string& model) {
  std::string out;
  for (char c : model) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || (c == '.' && !out.empty());
    out += keep ? c : '_';
  }
  return out.empty() ? "_" : out;
}

namespace {

Status WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!(out << text) || !(out.flush()))
    return Status::IoError(fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
  return Status::Ok();
}

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::IoError(fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// gnuplot's hypertext points call gnuplot_svg.showHypertext, which the
// report page defines; an .svg file opened on its own would raise an error
// on every hover. This fallback draws the text beside the pointer instead
// (the page's own definition, later in the page, replaces it).
constexpr const char* kStandaloneTooltips = R"(<script type="text/javascript"><![CDATA[
var gnuplot_svg = window.gnuplot_svg || {
  showHypertext: function (evt, text) {
    var svg = evt.target.ownerSVGElement, tip = svg.querySelector('.pp-tip');
    if (!tip) {
      tip = document.createElementNS('http://www.w3.org/2000/svg', 'text');
      tip.setAttribute('class', 'pp-tip');
      tip.setAttribute('font-size', '12');
      svg.appendChild(tip);
    }
    var p = svg.createSVGPoint();
    p.x = evt.clientX; p.y = evt.clientY;
    p = p.matrixTransform(svg.getScreenCTM().inverse());
    tip.setAttribute('x', p.x + 10); tip.setAttribute('y', p.y - 10);
    tip.textContent = text.replace(/\n/g, '  ');
    tip.style.display = '';
  },
  hideHypertext: function () {
    var tips = document.querySelectorAll('.pp-tip');
    for (var i = 0; i < tips.length; ++i) tips[i].style.display = 'none';
  }
};
]]></script>
)";

// Adds kStandaloneTooltips to the SVG file at `path`, after its <svg> tag.
Status AddStandaloneTooltips(const fs::path& path) {
  PP_ASSIGN_OR_RETURN(std::string svg, ReadFile(path));
  const size_t open = svg.find("<svg");
  const size_t end = open == std::string::npos ? open : svg.find('>', open);
  if (end == std::string::npos) {
    return Status::Internal(fmt::format("{}: gnuplot wrote no <svg> element", path.string()));
  }
  svg.insert(end + 1, std::string("\n") + kStandaloneTooltips);
  return WriteFile(path, svg);
}

std::vector<std::string> ModelsOf(const std::vector<RunRecord>& runs) {
  std::vector<std::string> models;
  for (const RunRecord& r : runs) {
    if (std::find(models.begin(), models.end(), r.config.model) == models.end())
      models.push_back(r.config.model);
  }
  return models;
}

std::string Caption(FigureKind kind, LatencyStat stat) {
  switch (kind) {
    case FigureKind::kFront:
      return fmt::format(
          "Latency ({}, mean across repeats) against throughput, one point per finished run, "
          "labelled with its cuts; the Pareto front drawn through its runs, the knee circled; "
          "bars: 95% confidence intervals. Hover over a point for its run.",
          LatencyStatName(stat));
    case FigureKind::kBreakdown:
      return "Per run, a batch's way through the pipeline: each stage's compute "
             "(compute_ms_mean), each hop's transfer (hop_ms_mean less its queue) and the "
             "queueing before each later stage (queue_ms_mean plus the hop's queue), stacked in "
             "pipeline order; the diamond is the measured latency_ms_mean.";
    case FigureKind::kBytes:
      return "Activation bytes sent across each cut per batch (the hop's bytes_per_frame), "
             "whatever the other cuts, backend or network.";
    case FigureKind::kMoves:
      return "The fronts of each network condition overlaid per backend, and of each backend "
             "per condition, on one scale.";
    case FigureKind::kPrediction:
      return "Each run the planner predicted: its measured latency (mean) and throughput "
             "(filled, with 95% confidence intervals) and the planner's prediction (hollow), "
             "joined by a line; colour and shape give its role (front, control, validate). "
             "Dashed: the predicted front; solid: the measured front, both among these runs. "
             "MAPE: mean absolute percentage error of the predictions.";
  }
  return "";
}

}  // namespace

Result<ReportResult> WriteReport(const std::vector<RunRecord>& runs, const ReportOptions& options) {
  if (runs.empty()) return Status::InvalidArgument("no runs to report");
  const fs::path dir = options.output_dir.empty() ? fs::path(".") : fs::path(options.output_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));

  ReportResult result;
  PageContent page;
  page.source = options.source;
  page.latency = options.latency;
  page.accuracy_disagreements = FindAccuracyDisagreements(runs);
  result.accuracy_disagreements = page.accuracy_disagreements;

  std::set<std::string> used_names;
  int figure_number = 0;
  for (const std::string& model : ModelsOf(runs)) {
    // Two models may map to one file name part ("a b", "a_b"): number the second.
    std::string part = FileNamePart(model);
    for (int n = 2; !used_names.insert(part).second; ++n)
      part = fmt::format("{}-{}", FileNamePart(model), n);
    PageModel section;
    section.model = model;
    for (FigureKind kind : {FigureKind::kFront, FigureKind::kPrediction, FigureKind::kMoves,
                            FigureKind::kBreakdown, FigureKind::kBytes}) {
      std::optional<Figure> figure = BuildFigure(kind, runs, model, options.latency);
      if (!figure) continue;
      const std::string base = fmt::format("{}-{}", FigureKindName(kind), part);
      PageFigure shown;
      shown.kind = kind;
      shown.svg_file = base + ".svg";
      shown.png_file = base + ".png";
      shown.script_file = base + ".gp";
      shown.caption = Caption(kind, options.latency);
      PP_RETURN_IF_ERROR(WriteFile(dir / shown.script_file,
                                   GnuplotScript(*figure, shown.svg_file, shown.png_file)));
      PP_RETURN_IF_ERROR(RunGnuplot(options.gnuplot, shown.script_file, dir.string()));
      PP_ASSIGN_OR_RETURN(const std::string svg, ReadFile(dir / shown.svg_file));
      PP_RETURN_IF_ERROR(AddStandaloneTooltips(dir / shown.svg_file));
      shown.svg_inline = InlineSvg(svg, fmt::format("f{}", ++figure_number), figure->title);
      if (shown.svg_inline.empty())
        return Status::Internal(fmt::format("{}: gnuplot wrote no <svg> element", shown.svg_file));
      for (const std::string* f : {&shown.svg_file, &shown.png_file, &shown.script_file})
        result.files.push_back((dir / *f).string());
      section.figures.push_back(std::move(shown));
      ++result.figures;
    }
    page.models.push_back(std::move(section));
  }
  result.index_html = (dir / "index.html").string();
  PP_RETURN_IF_ERROR(WriteFile(result.index_html, RenderReportPage(runs, page)));
  result.files.push_back(result.index_html);
  return result;
}

Status WritePlot(const std::vector<RunRecord>& runs, FigureKind kind, LatencyStat stat,
                 const std::string& path, const std::string& gnuplot) {
  const fs::path out(path);
  const std::string extension = out.extension().string();
  if (extension != ".svg" && extension != ".png") {
    return Status::InvalidArgument(fmt::format(
        "{}: the output must end in .svg or .png (the format follows the extension)", path));
  }
  const std::vector<std::string> models = ModelsOf(runs);
  if (models.size() != 1) {
    std::string list;
    for (const std::string& m : models) list += (list.empty() ? "" : ", ") + m;
    return Status::InvalidArgument(
        models.empty() ? std::string("no runs to plot")
                       : fmt::format("runs of several models ({}); choose one with --model", list));
  }
  std::optional<Figure> figure = BuildFigure(kind, runs, models[0], stat);
  if (!figure) {
    switch (kind) {
      case FigureKind::kMoves:
        return Status::NotFound(
            fmt::format("nothing to draw: the moves figure needs finished runs of {} under two "
                        "network conditions or on two backends",
                        models[0]));
      case FigureKind::kPrediction:
        return Status::NotFound(fmt::format(
            "nothing to draw: no finished run of {} has a prediction (sweep --plan-first or "
            "validate --save store them)",
            models[0]));
      default:
        return Status::NotFound(
            fmt::format("nothing to draw: no finished run of {} with valid metrics", models[0]));
    }
  }
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return Status::NotFound(fmt::format("{}: no directory {}", path, dir.string()));
  const std::string name = out.filename().string();
  const std::string script =
      GnuplotScript(*figure, extension == ".svg" ? name : "", extension == ".png" ? name : "");
  std::string temp = (dir / ".paretopipe-plot-XXXXXX.gp").string();
  const int fd = mkstemps(temp.data(), 3);
  if (fd < 0)
    return Status::IoError(
        fmt::format("cannot make a script file in {}: {}", dir.string(), std::strerror(errno)));
  close(fd);
  Status status = WriteFile(temp, script);
  if (status.ok()) status = RunGnuplot(gnuplot, fs::path(temp).filename().string(), dir.string());
  fs::remove(temp, ec);
  if (status.ok() && extension == ".svg") status = AddStandaloneTooltips(out);
  return status;
}

}  // namespace paretopipe
