#include "report/html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "analysis/plan_first.h"
#include "report/fronts.h"

namespace paretopipe {

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string InlineSvg(std::string_view svg, const std::string& id_prefix,
                      const std::string& title) {
  const size_t start = svg.find("<svg");
  if (start == std::string_view::npos) return "";
  svg.remove_prefix(start);
  // gnuplot writes ids and references as id='x', xlink:href='#x' and
  // url(#x), quoted either way; an attribute name counts only after white
  // space, so that e.g. "gid=" is left alone.
  const std::string prefix = id_prefix + "-";
  std::string out;
  out.reserve(svg.size() + 4096);
  size_t i = 0;
  auto at = [&](std::string_view token) { return svg.substr(i, token.size()) == token; };
  while (i < svg.size()) {
    const bool after_space = i > 0 && std::isspace(static_cast<unsigned char>(svg[i - 1]));
    if (after_space && (at("id='") || at("id=\""))) {
      out.append(svg.substr(i, 4)).append(prefix);
      i += 4;
    } else if (at("href='#") || at("href=\"#")) {
      out.append(svg.substr(i, 7)).append(prefix);
      i += 7;
    } else if (at("url(#")) {
      out.append("url(#").append(prefix);
      i += 5;
    } else {
      out += svg[i++];
    }
  }
  const std::string gnuplot_title = "<title>Gnuplot</title>";
  if (size_t t = out.find(gnuplot_title); t != std::string::npos)
    out.replace(t, gnuplot_title.size(), "<title>" + HtmlEscape(title) + "</title>");
  out.insert(4, fmt::format(" class=\"figure\" role=\"img\" aria-label=\"{}\"", HtmlEscape(title)));
  return out;
}

namespace {

// Holds the figures' tooltips (gnuplot's SVG calls gnuplot_svg.showHypertext
// on its hypertext points) and sorts the run table. Inline: the page must
// open offline.
constexpr const char* kScript = R"JS(
var gnuplot_svg = {
  showHypertext: function (evt, text) {
    var tip = document.getElementById('tip');
    tip.textContent = text;
    tip.style.left = (evt.pageX + 14) + 'px';
    tip.style.top = (evt.pageY + 14) + 'px';
    tip.style.display = 'block';
  },
  hideHypertext: function () { document.getElementById('tip').style.display = 'none'; }
};
(function () {
  var table = document.getElementById('runs');
  if (!table) return;
  var heads = table.tHead.rows[0].cells;
  function key(cell) {
    var v = cell.getAttribute('data-sort');
    if (v === null) v = cell.textContent.trim();
    var n = parseFloat(v);
    return (v !== '' && isFinite(v)) ? n : v.toLowerCase();
  }
  Array.prototype.forEach.call(heads, function (th, column) {
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[column]), y = key(b.cells[column]);
        var order;
        if (typeof x === 'number' && typeof y === 'number') order = x - y;
        else if (typeof x === 'number') order = -1;   // Numbers before text ("-").
        else if (typeof y === 'number') order = 1;
        else order = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? order : -order;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
)JS";

constexpr const char* kStyle = R"CSS(
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 1.5em 2em; color: #1a1a1a;
       background: #ffffff; font-size: 14px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #d0d0d0; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
.warning { background: #fde8e8; border: 2px solid #c0392b; color: #7b1d12; padding: 0.8em 1.2em;
           margin: 1em 0; border-radius: 4px; }
.warning strong { color: #c0392b; }
table.summary td, table.summary th { text-align: left; padding: 0.15em 1em 0.15em 0;
                                     vertical-align: top; }
figure { margin: 1.2em 0; }
svg.figure { max-width: 100%; height: auto; border: 1px solid #eeeeee; }
figcaption { color: #444444; margin-top: 0.3em; }
.scroll { overflow-x: auto; }
table.runs { border-collapse: collapse; font-size: 12.5px; }
table.runs th { position: sticky; top: 0; background: #f0f0f0; cursor: pointer;
                border-bottom: 2px solid #bbbbbb; padding: 0.35em 0.5em; text-align: left;
                white-space: nowrap; }
table.runs th[aria-sort=ascending]::after { content: " \25B2"; }
table.runs th[aria-sort=descending]::after { content: " \25BC"; }
table.runs td { border-bottom: 1px solid #e4e4e4; padding: 0.3em 0.5em; vertical-align: top;
                white-space: nowrap; }
table.runs td.wrap { white-space: normal; min-width: 14em; max-width: 36em; }
table.runs td.num { text-align: right; white-space: nowrap; }
table.runs tr.failed td { color: #8a8a8a; }
table.runs td.flag { background: #f8c9c4; color: #7b1d12; font-weight: bold; }
table.runs tr.front td:first-child { border-left: 4px solid #0072B2; }
table.runs tr.knee td:first-child { border-left: 4px solid #D55E00; }
table.predictions { border-collapse: collapse; font-size: 12.5px; }
table.predictions th { background: #f0f0f0; border-bottom: 1px solid #bbbbbb;
                       padding: 0.3em 0.5em; text-align: center; white-space: nowrap; }
table.predictions td { border-bottom: 1px solid #e4e4e4; padding: 0.25em 0.5em;
                       white-space: nowrap; }
table.predictions td.num { text-align: right; }
.small { color: #666666; font-size: 0.9em; }
#tip { position: absolute; display: none; background: #ffffe8; border: 1px solid #999999;
       padding: 0.3em 0.5em; white-space: pre; font-size: 12px; pointer-events: none; }
)CSS";

std::string Fixed(double v, int decimals) { return fmt::format("{:.{}f}", v, decimals); }

// "12.34 ± 0.56" (half the 95% interval), or the mean alone with one repeat.
std::string WithInterval(const Estimate& e, int decimals) {
  if (!e.ci_low || !e.ci_high) return Fixed(e.mean, decimals);
  return fmt::format("{} ± {}", Fixed(e.mean, decimals),
                     Fixed((*e.ci_high - *e.ci_low) / 2, decimals));
}

std::string Join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

template <typename T>
void AddUnique(std::vector<T>* v, const T& item) {
  if (std::find(v->begin(), v->end(), item) == v->end()) v->push_back(item);
}

std::string PlaceText(const ParetoResult& p, const RunRecord& r) {
  if (r.status != "ok") return "failed";
  if (!IsPlottable(p.point)) return "no valid metrics";
  if (p.on_front) return p.knee ? "front, knee" : "front";
  if (p.duplicate) return fmt::format("duplicate of #{}", p.duplicate_of);
  return fmt::format("dominated ({})", p.dominated_by);
}

std::string AccuracyWarning(const std::vector<RunRecord>& runs,
                            const std::vector<AccuracyDisagreement>& disagreements) {
  if (disagreements.empty()) return "";
  std::map<int64_t, const RunRecord*> by_id;
  for (const RunRecord& r : runs) by_id[r.id] = &r;
  std::vector<std::string> ids, items;
  for (const AccuracyDisagreement& d : disagreements) {
    ids.push_back(fmt::format("#{}", d.run_id));
    const RunRecord& r = *by_id.at(d.run_id);
    const double images = static_cast<double>(d.group.images);
    std::string expected =
        d.expected_correct >= 0
            ? fmt::format("{} other run{} of the group got {}% ({} correct)", d.agreeing_runs,
                          d.agreeing_runs == 1 ? "" : "s",
                          Fixed(100.0 * d.expected_correct / images, 2), d.expected_correct)
            : "no value is shared by most of the group";
    std::vector<std::string> group;
    for (int64_t id : d.group_run_ids) group.push_back(fmt::format("#{}", id));
    items.push_back(fmt::format(
        "<li>run #{} ({}, cuts {}, backend {}, network {}): {}% top-1 ({} of {} images); {}. "
        "Group: runs {} (same model, seed, weights {}, {} classes, input {}).</li>",
        d.run_id, HtmlEscape(r.config.model), HtmlEscape(CutLabel(r)), HtmlEscape(r.config.backend),
        HtmlEscape(r.config.net), Fixed(100.0 * d.correct / images, 2), d.correct, d.group.images,
        expected, Join(group, ", "),
        HtmlEscape(d.group.weights_digest.empty() ? "seeded"
                                                  : d.group.weights_digest.substr(0, 12)),
        d.group.num_classes,
        HtmlEscape(d.group.input_digest.empty() ? r.config.input
                                                : d.group.input_digest.substr(0, 12))));
  }
  return fmt::format(
      "<div class=\"warning\" id=\"accuracy-warning\"><strong>Accuracy differs between runs that "
      "must agree: runs {}.</strong> Runs of the same model and weights on the same images must "
      "classify them identically wherever the model is cut; a difference points at a broken "
      "split, a corrupted transfer or a mixed-up input.<ul>{}</ul></div>\n",
      Join(ids, ", "), Join(items, "\n"));
}

std::string Summary(const std::vector<RunRecord>& runs, const PageContent& content) {
  std::vector<std::string> models, backends, nets, hosts, sweeps, inputs;
  std::map<std::string, int> runs_per_model;
  int failed = 0;
  std::string first_at, last_at;
  for (const RunRecord& r : runs) {
    AddUnique(&models, r.config.model);
    ++runs_per_model[r.config.model];
    AddUnique(&backends, r.config.backend);
    AddUnique(&nets, r.config.net_emulation.empty() || r.config.net_emulation == "none"
                         ? r.config.net
                         : fmt::format("{} ({})", r.config.net, r.config.net_emulation));
    if (!r.config.sweep_id.empty()) AddUnique(&sweeps, r.config.sweep_id);
    AddUnique(&inputs, r.config.input.empty() ? std::string("synthetic") : r.config.input);
    for (const StageEnvironment& e : r.environment) {
      AddUnique(&hosts, fmt::format("{} ({}, {} logical CPUs, {}, LibTorch {}{})", e.hostname,
                                    e.cpu_model, e.logical_cpus, e.arch, e.libtorch_version,
                                    e.device_name.empty() ? "" : ", " + e.device_name));
    }
    if (r.status != "ok") ++failed;
    if (!r.started_at_utc.empty()) {
      if (first_at.empty() || r.started_at_utc < first_at) first_at = r.started_at_utc;
      if (last_at.empty() || r.started_at_utc > last_at) last_at = r.started_at_utc;
    }
  }
  auto escaped = [](const std::vector<std::string>& items) {
    std::vector<std::string> out;
    for (const std::string& s : items) out.push_back(HtmlEscape(s));
    return out;
  };
  std::vector<std::string> model_counts;
  for (const std::string& m : models)
    model_counts.push_back(fmt::format("{} ({} runs)", HtmlEscape(m), runs_per_model[m]));
  std::string rows;
  auto row = [&](const std::string& name, const std::string& value) {
    rows += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", name, value);
  };
  row("database", HtmlEscape(content.source));
  row("models", Join(model_counts, ", "));
  row("runs",
      fmt::format("{} ({} finished, {} failed)", runs.size(), runs.size() - failed, failed));
  row("backends", Join(escaped(backends), ", "));
  row("network conditions", Join(escaped(nets), ", "));
  row("hosts", Join(escaped(hosts), "<br>"));
  row("input", Join(escaped(inputs), "<br>"));
  if (!sweeps.empty()) row("sweeps", Join(escaped(sweeps), ", "));
  if (!first_at.empty())
    row("started", fmt::format("{} to {} (UTC)", HtmlEscape(first_at), HtmlEscape(last_at)));
  row("latency", fmt::format("the {} of each repeat's per-batch latencies, mean across repeats "
                             "(docs/metrics.md)",
                             LatencyStatName(content.latency)));
  return "<table class=\"summary\">\n" + rows + "</table>\n";
}

// The fronts and knees of one model, in words.
std::string FrontsInWords(const std::vector<RunGroup>& groups, const std::string& model) {
  std::string items;
  for (const RunGroup& g : groups) {
    if (g.model != model) continue;
    std::map<int64_t, const RunRecord*> by_id;
    for (const RunRecord* r : g.runs) by_id[r->id] = r;
    std::vector<std::string> front;
    const ParetoResult* knee = nullptr;
    int failed = 0;
    for (const ParetoResult& p : g.ranked) {
      if (p.on_front)
        front.push_back(fmt::format("{} (#{})", HtmlEscape(p.point.label), p.point.run_id));
      if (p.knee) knee = &p;
      if (by_id.at(p.point.run_id)->status != "ok") ++failed;
    }
    std::string knee_text;
    if (knee) {
      knee_text =
          fmt::format("<strong>knee: cuts {} (run #{}), {} ms, {} images/s</strong>",
                      HtmlEscape(knee->point.label), knee->point.run_id,
                      Fixed(knee->point.latency_ms, 2), Fixed(knee->point.throughput_ips, 1));
    } else if (front.empty()) {
      knee_text = "no finished run";
    } else {
      knee_text = front.size() == 2 ? "no knee (a front of two points has none)"
                                    : "no knee (the front is a straight line)";
    }
    items += fmt::format(
        "<li>backend {}, network {}: {} run{}{}; front by latency: cuts {}; {}</li>\n",
        HtmlEscape(g.backend), HtmlEscape(g.net), g.runs.size(), g.runs.size() == 1 ? "" : "s",
        failed ? fmt::format(" ({} failed)", failed) : "", front.empty() ? "-" : Join(front, ", "),
        knee_text);
  }
  return "<ul class=\"fronts\">\n" + items + "</ul>\n";
}

std::string StagesCell(const RunRecord& r) {
  std::vector<std::string> lines;
  for (const StageEnvironment& e : r.environment) {
    std::string line =
        fmt::format("{}: {} ({}, {} CPUs), {} thread{}", e.stage + 1, HtmlEscape(e.hostname),
                    HtmlEscape(e.cpu_model), e.logical_cpus, e.threads, e.threads == 1 ? "" : "s");
    if (e.device != "cpu") {
      line += ", " + HtmlEscape(e.device);
      if (!e.device_name.empty()) line += " (" + HtmlEscape(e.device_name) + ")";
    }
    if (!e.limits.empty()) line += ", limits " + HtmlEscape(e.limits);
    lines.push_back(line);
  }
  if (lines.empty()) {
    for (size_t s = 0; s < r.config.workers.size(); ++s)
      lines.push_back(fmt::format("{}: {}", s + 1, HtmlEscape(r.config.workers[s])));
  }
  return Join(lines, "<br>");
}

std::string NetCell(const RunRecord& r) {
  std::string cell = HtmlEscape(r.config.net);
  if (!r.config.net_emulation.empty() && r.config.net_emulation != "none")
    cell += fmt::format(" <span class=\"small\">({})</span>", HtmlEscape(r.config.net_emulation));
  if (!r.links.empty()) {
    // The slowest hop bounds the pipeline.
    double rtt = 0, mbit = -1;
    for (const LinkMeasurement& l : r.links) {
      rtt = std::max(rtt, l.rtt_ms_median);
      mbit = mbit < 0 ? l.bandwidth_mbit : std::min(mbit, l.bandwidth_mbit);
    }
    cell += fmt::format("<br><span class=\"small\">measured {} ms rtt, {} Mbit/s</span>",
                        Fixed(rtt, 2), Fixed(mbit, 1));
  }
  return cell;
}

std::string RunTable(const std::vector<RunRecord>& runs, const std::vector<RunGroup>& groups,
                     const PageContent& content) {
  std::map<int64_t, ParetoResult> place;
  for (const RunGroup& g : groups) {
    for (const ParetoResult& p : g.ranked) place[p.point.run_id] = p;
  }
  std::map<int64_t, const AccuracyDisagreement*> flagged;
  for (const AccuracyDisagreement& d : content.accuracy_disagreements) flagged[d.run_id] = &d;
  const bool any_accuracy = std::any_of(runs.begin(), runs.end(),
                                        [](const RunRecord& r) { return r.accuracy.has_value(); });
  const std::string stat = LatencyStatName(content.latency);

  std::string head = fmt::format(
      "<tr><th>run</th><th>model</th><th>cuts</th><th>backend</th><th>network</th>"
      "<th>batch</th><th>threads</th><th>latency {} ms (95% CI)</th><th>p95 ms</th>"
      "<th>throughput img/s (95% CI)</th><th>repeats</th><th>pareto</th>{}<th>status</th>"
      "<th>stages: host, CPU, threads, GPU, limits</th><th>started (UTC)</th><th>sweep</th></tr>",
      stat, any_accuracy ? "<th>top-1 %</th>" : "");
  std::string body;
  for (const RunRecord& r : runs) {
    const ParetoResult& p = place[r.id];
    const bool ok = r.status == "ok";
    std::string row_class = !ok ? "failed" : p.on_front ? (p.knee ? "knee" : "front") : "";
    const Estimate& latency = LatencyEstimate(r, content.latency);
    std::string cells;
    auto cell = [&](const std::string& html) { cells += "<td>" + html + "</td>"; };
    auto num = [&](const std::string& text, double sort_key) {
      cells += fmt::format("<td class=\"num\" data-sort=\"{}\">{}</td>",
                           fmt::format("{:.9g}", sort_key), text);
    };
    auto no_num = [&]() { cells += "<td class=\"num\" data-sort=\"\">-</td>"; };
    num(fmt::format("{}", r.id), static_cast<double>(r.id));
    cell(HtmlEscape(r.config.model));
    cell(HtmlEscape(CutLabel(r)));
    cell(HtmlEscape(r.config.backend));
    cell(NetCell(r));
    num(fmt::format("{}", r.config.batch_size), static_cast<double>(r.config.batch_size));
    num(fmt::format("{}", r.config.threads), r.config.threads);
    if (ok) {
      num(WithInterval(latency, 2), latency.mean);
      num(Fixed(r.latency_ms_p95.mean, 2), r.latency_ms_p95.mean);
      num(WithInterval(r.throughput_ips, 1), r.throughput_ips.mean);
    } else {
      no_num();
      no_num();
      no_num();
    }
    num(fmt::format("{}", r.repeats.size()), static_cast<double>(r.repeats.size()));
    cell(HtmlEscape(PlaceText(p, r)));
    if (any_accuracy) {
      if (!r.accuracy) {
        no_num();
      } else {
        const std::string text = fmt::format("{} <span class=\"small\">({}/{})</span>",
                                             Fixed(100 * r.accuracy->top1(), 2),
                                             r.accuracy->correct, r.accuracy->images);
        auto f = flagged.find(r.id);
        if (f == flagged.end()) {
          num(text, 100 * r.accuracy->top1());
        } else {
          cells += fmt::format(
              "<td class=\"num flag\" data-sort=\"{:.9g}\" title=\"differs from the other runs of "
              "its group (see the warning at the top)\">&#9888; {}</td>",
              100 * r.accuracy->top1(), text);
        }
      }
    }
    cells += "<td class=\"wrap\">" + (ok ? std::string("ok") : "failed: " + HtmlEscape(r.error)) +
             "</td>";
    cell(StagesCell(r));
    cell(HtmlEscape(r.started_at_utc));
    cell(HtmlEscape(r.config.sweep_id));
    body += fmt::format("<tr id=\"run-{}\"{}>{}</tr>\n", r.id,
                        row_class.empty() ? "" : fmt::format(" class=\"{}\"", row_class), cells);
  }
  return fmt::format(
      "<div class=\"scroll\"><table class=\"runs\" id=\"runs\">\n<thead>{}</thead>\n<tbody>\n{}"
      "</tbody>\n</table></div>\n",
      head, body);
}

// "cuts 5 (#12)", "cuts 5 (#12) and cuts 7 (#13)", "cuts 5 (#12), cuts 7 (#13) and ...".
std::string RunList(const std::vector<const PredictedRun*>& runs) {
  std::vector<std::string> items;
  for (const PredictedRun* p : runs)
    items.push_back(fmt::format("cuts {} (#{})", HtmlEscape(p->measured.label), p->run->id));
  if (items.size() < 2) return Join(items, "");
  const std::string last = items.back();
  items.pop_back();
  return Join(items, ", ") + " and " + last;
}

// Whether a control run (predicted dominated) beat the predicted front: no
// other run of the group that is not a control measured better on both
// metrics (JudgePlanFirst, as the sweep judges it). If one did, the
// predicted front missed a run worth having.
std::string ControlVerdict(const PredictionGroup& g) {
  std::vector<PlanFirstMeasurement> measured;
  std::vector<const PredictedRun*> controls;
  for (size_t i = 0; i < g.runs.size(); ++i) {
    const PredictedRun& p = g.runs[i];
    measured.push_back({i, p.role == "control", p.measured.latency_ms, p.measured.throughput_ips});
    if (p.role == "control") controls.push_back(&p);
  }
  if (controls.empty()) return "no control run was measured";
  std::vector<const PredictedRun*> beat;
  for (size_t i : JudgePlanFirst(measured).beating_controls) beat.push_back(&g.runs[i]);
  if (beat.empty()) {
    return controls.size() == 1
               ? "no control beat the predicted front (a run predicted on or near it measured "
                 "better than the control run)"
               : fmt::format(
                     "no control beat the predicted front (each of its {} control runs is beaten "
                     "by a run predicted on or near it)",
                     controls.size());
  }
  return fmt::format(
      "control run{} {} beat the predicted front: no run predicted on or near it measured better "
      "on both metrics",
      beat.size() == 1 ? "" : "s", RunList(beat));
}

std::string Percent(double fraction) { return fmt::format("{:+.1f}", 100 * fraction); }

// The predicted runs of `model` against their measurements: a table, the
// errors and, per backend and network, the control runs' verdict.
std::string PredictionTable(const std::vector<RunRecord>& runs, const std::string& model) {
  const std::vector<PredictionGroup> groups = GroupPredictions(runs, model);
  if (groups.empty()) return "";
  const bool several = groups.size() > 1;
  // Two header rows: the quantity over its predicted, measured and error columns.
  std::string head = "<tr><th rowspan=\"2\">run</th><th rowspan=\"2\">cuts</th>";
  if (several) head += "<th rowspan=\"2\">backend</th><th rowspan=\"2\">network</th>";
  head +=
      "<th rowspan=\"2\">role</th><th colspan=\"3\">latency, mean (ms)</th>"
      "<th colspan=\"3\">throughput (images/s)</th></tr>\n<tr>"
      "<th>predicted</th><th>measured</th><th>error %</th>"
      "<th>predicted</th><th>measured</th><th>error %</th></tr>";
  std::string body, verdicts;
  for (const PredictionGroup& g : groups) {
    for (const PredictedRun& p : g.runs) {
      std::string cells = fmt::format("<td><a href=\"#run-{0}\">#{0}</a></td><td>{1}</td>",
                                      p.run->id, HtmlEscape(p.measured.label));
      if (several)
        cells += fmt::format("<td>{}</td><td>{}</td>", HtmlEscape(g.backend), HtmlEscape(g.net));
      cells += fmt::format(
          "<td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
          "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
          HtmlEscape(p.role.empty() ? "-" : p.role), Fixed(p.predicted.latency_ms, 2),
          Fixed(p.measured.latency_ms, 2), Percent(p.latency_error),
          Fixed(p.predicted.throughput_ips, 1), Fixed(p.measured.throughput_ips, 1),
          Percent(p.throughput_error));
      body += "<tr>" + cells + "</tr>\n";
    }
    const PredictionErrors e = MeanAbsolutePercentageErrors({g});
    verdicts += fmt::format(
        "<li>backend {}, network {}: {} run{}, latency MAPE {:.1f}%, throughput MAPE {:.1f}%; "
        "{}</li>\n",
        HtmlEscape(g.backend), HtmlEscape(g.net), e.runs, e.runs == 1 ? "" : "s",
        e.latency_mape_pct, e.throughput_mape_pct, ControlVerdict(g));
  }
  const PredictionErrors all = MeanAbsolutePercentageErrors(groups);
  return fmt::format(
      "<div class=\"scroll\"><table class=\"predictions\">\n<thead>{}</thead>\n<tbody>\n{}"
      "</tbody>\n</table></div>\n"
      "<p>Predicted against measured over {} run{}: latency MAPE {:.1f}%, throughput MAPE "
      "{:.1f}% (error: predicted less measured, over measured).</p>\n"
      "<ul class=\"predictions\">\n{}</ul>\n",
      head, body, all.runs, all.runs == 1 ? "" : "s", all.latency_mape_pct, all.throughput_mape_pct,
      verdicts);
}

std::string FigureHtml(const PageFigure& f) {
  std::vector<std::string> links;
  if (!f.svg_file.empty())
    links.push_back(fmt::format("<a href=\"{0}\">{0}</a>", HtmlEscape(f.svg_file)));
  if (!f.png_file.empty())
    links.push_back(fmt::format("<a href=\"{0}\">{0}</a>", HtmlEscape(f.png_file)));
  if (!f.script_file.empty())
    links.push_back(
        fmt::format("gnuplot script <a href=\"{0}\">{0}</a>", HtmlEscape(f.script_file)));
  return fmt::format(
      "<figure>\n{}\n<figcaption>{} <span class=\"small\">{}</span></figcaption>\n"
      "</figure>\n",
      f.svg_inline, HtmlEscape(f.caption), Join(links, " · "));
}

}  // namespace

std::string RenderReportPage(const std::vector<RunRecord>& runs, const PageContent& content) {
  const std::vector<RunGroup> groups = GroupRuns(runs, content.latency);
  std::vector<std::string> names;
  for (const PageModel& m : content.models) names.push_back(m.model);
  const std::string title = "ParetoPipe report" + (names.empty() ? "" : ": " + Join(names, ", "));

  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
      HtmlEscape(title), kStyle, HtmlEscape(title));
  html += AccuracyWarning(runs, content.accuracy_disagreements);
  html += Summary(runs, content);
  std::string contents;
  for (size_t i = 0; i < content.models.size(); ++i)
    contents +=
        fmt::format("<a href=\"#model-{}\">{}</a> · ", i + 1, HtmlEscape(content.models[i].model));
  html += fmt::format("<p>{}<a href=\"#run-table\">every run</a></p>\n", contents);
  for (size_t i = 0; i < content.models.size(); ++i) {
    const PageModel& m = content.models[i];
    html += fmt::format("<h2 id=\"model-{}\">{}</h2>\n<h3>Pareto fronts</h3>\n", i + 1,
                        HtmlEscape(m.model));
    html += FrontsInWords(groups, m.model);
    if (m.figures.empty()) html += "<p>No finished run to draw.</p>\n";
    for (const PageFigure& f : m.figures) {
      html += FigureHtml(f);
      if (f.kind == FigureKind::kPrediction) html += PredictionTable(runs, m.model);
    }
  }
  html +=
      "<h2 id=\"run-table\">Every run</h2>\n<p class=\"small\">Click a column header to sort. "
      "A blue left edge marks a run on its front, orange the knee.</p>\n";
  html += RunTable(runs, groups, content);
  html += fmt::format("<div id=\"tip\"></div>\n<script>{}</script>\n</body>\n</html>\n", kScript);
  return html;
}

}  // namespace paretopipe
