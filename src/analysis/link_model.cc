#include "analysis/link_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "netem/condition.h"

namespace paretopipe {
namespace {

// The reason of a ParseNetCondition error about "--net KEY=VALUE: reason",
// without that prefix, so that it can be said of our own key.
std::string Reason(const Status& status, const std::string& net_item) {
  const std::string prefix = "--net " + net_item + ": ";
  const std::string& message = status.message();
  if (message.compare(0, prefix.size(), prefix) == 0) return message.substr(prefix.size());
  return message;
}

// `value` as a time in ms, through --net's parser (units us, ms, s).
Result<double> ParseTimeMs(const std::string& spec, const std::string& key,
                           const std::string& value) {
  Result<NetCondition> c = ParseNetCondition("delay=" + value);
  if (!c.ok()) {
    return Status::InvalidArgument(fmt::format("link '{}': {}={}: {}", spec, key, value,
                                               Reason(c.status(), "delay=" + value)));
  }
  return static_cast<double>(c->delay.count()) / 1e3;
}

// `value` as a rate in bits/s through --net's parser; "unlimited" is 0.
Result<double> ParseRateBitsPerS(const std::string& spec, const std::string& value) {
  if (value == "unlimited") return 0.0;
  Result<NetCondition> c = ParseNetCondition("rate=" + value);
  if (!c.ok()) {
    return Status::InvalidArgument(
        fmt::format("link '{}': rate={}: {}", spec, value, Reason(c.status(), "rate=" + value)));
  }
  return static_cast<double>(c->rate_bits_per_s);
}

// The shortest text of `v` to 4 significant digits.
std::string Short(double v) { return fmt::format("{:.4g}", v); }

}  // namespace

double LinkModel::TransferMs(int64_t bytes) const {
  if (rate_bits_per_s <= 0) return overhead_ms;
  return overhead_ms + static_cast<double>(bytes) * 8.0 * 1000.0 / rate_bits_per_s;
}

bool LinkModel::operator==(const LinkModel& other) const {
  return overhead_ms == other.overhead_ms && rate_bits_per_s == other.rate_bits_per_s &&
         delay_ms == other.delay_ms;
}

Result<LinkModel> ParseLinkSpec(const std::string& spec) {
  LinkModel link;
  if (spec == "none") return link;
  if (spec.empty()) return Status::InvalidArgument("link '': empty (e.g. rtt=40ms,rate=20mbit)");
  std::stringstream in(spec);
  std::string item;
  std::vector<std::string> seen;
  while (std::getline(in, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(fmt::format(
          "link '{}': '{}' is not key=value (keys: rtt, delay, rate, overhead)", spec, item));
    }
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    for (const std::string& other : seen) {
      if (other == key) {
        return Status::InvalidArgument(fmt::format("link '{}': '{}' given twice", spec, key));
      }
      if ((key == "rtt" && other == "delay") || (key == "delay" && other == "rtt")) {
        return Status::InvalidArgument(
            fmt::format("link '{}': give rtt (round trip) or delay (one way), not both", spec));
      }
    }
    seen.push_back(key);
    if (key == "rtt") {
      PP_ASSIGN_OR_RETURN(const double rtt_ms, ParseTimeMs(spec, key, value));
      link.delay_ms = rtt_ms / 2;
    } else if (key == "delay") {
      PP_ASSIGN_OR_RETURN(link.delay_ms, ParseTimeMs(spec, key, value));
    } else if (key == "overhead") {
      PP_ASSIGN_OR_RETURN(link.overhead_ms, ParseTimeMs(spec, key, value));
    } else if (key == "rate") {
      PP_ASSIGN_OR_RETURN(link.rate_bits_per_s, ParseRateBitsPerS(spec, value));
    } else {
      return Status::InvalidArgument(
          fmt::format("link '{}': unknown key '{}' (keys: rtt, delay, rate, overhead)", spec, key));
    }
  }
  // getline drops a trailing empty item; "rtt=40ms," is a typo worth naming.
  if (spec.back() == ',') {
    return Status::InvalidArgument(fmt::format("link '{}': ends with a comma", spec));
  }
  return link;
}

Result<LinkModel> ParseLinkFile(const std::string& text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(fmt::format("link file {}: not a JSON object", source));
  }
  if (!j.contains("format") || j["format"] != "paretopipe.link") {
    return Status::InvalidArgument(fmt::format(
        "link file {}: not a link file (\"format\" is not \"paretopipe.link\")", source));
  }
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"] != 1) {
    return Status::InvalidArgument(
        fmt::format("link file {}: version {} is not one this build reads (1)", source,
                    j.contains("version") ? j["version"].dump() : "(missing)"));
  }
  LinkModel link;
  const std::pair<const char*, double*> fields[] = {{"overhead_ms", &link.overhead_ms},
                                                    {"rate_bits_per_s", &link.rate_bits_per_s},
                                                    {"delay_ms", &link.delay_ms}};
  for (const auto& [key, out] : fields) {
    if (!j.contains(key) || !j[key].is_number()) {
      return Status::InvalidArgument(
          fmt::format("link file {}: \"{}\" is missing or not a number", source, key));
    }
    *out = j[key].get<double>();
    if (!std::isfinite(*out) || *out < 0) {
      return Status::InvalidArgument(fmt::format(
          "link file {}: \"{}\" is {}; it must be finite and >= 0", source, key, j[key].dump()));
    }
  }
  return link;
}

Result<LinkModel> ReadLinkFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("link file {}: cannot read it", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseLinkFile(text.str(), path);
}

std::string DescribeLinkModel(const LinkModel& link) {
  if (link == LinkModel{}) return "none";
  std::vector<std::string> parts;
  if (link.delay_ms > 0) parts.push_back("rtt=" + Short(2 * link.delay_ms) + "ms");
  parts.push_back(link.rate_bits_per_s > 0 ? "rate=" + Short(link.rate_bits_per_s / 1e6) + "mbit"
                                           : "rate=unlimited");
  if (link.overhead_ms > 0) parts.push_back("overhead=" + Short(link.overhead_ms) + "ms");
  return fmt::format("{}", fmt::join(parts, ","));
}

Result<LinkFit> FitLinkModel(const std::vector<int64_t>& bytes, const std::vector<double>& rtt_ms,
                             double overhead_ms) {
  if (bytes.size() != rtt_ms.size()) {
    return Status::InvalidArgument("link fit: as many sizes as round trips are needed");
  }
  if (!(overhead_ms >= 0) || !std::isfinite(overhead_ms)) {
    return Status::InvalidArgument("link fit: the overhead must be a finite number >= 0");
  }
  std::map<int64_t, std::vector<double>> by_size;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] < 0 || !(rtt_ms[i] > 0) || !std::isfinite(rtt_ms[i])) {
      return Status::InvalidArgument(
          fmt::format("link fit: sample {}: {} bytes in {} ms", i, bytes[i], rtt_ms[i]));
    }
    by_size[bytes[i]].push_back(rtt_ms[i]);
  }
  if (by_size.size() < 2) return Status::InvalidArgument("link fit: two sizes or more are needed");
  std::vector<double> x, y;
  for (auto& [size, rtts] : by_size) {
    std::sort(rtts.begin(), rtts.end());
    const size_t n = rtts.size();
    x.push_back(static_cast<double>(size));
    y.push_back(n % 2 ? rtts[n / 2] : (rtts[n / 2 - 1] + rtts[n / 2]) / 2);
  }
  // Weighted least squares, weights 1 / y^2.
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = 1 / (y[i] * y[i]);
    sw += w;
    sx += w * x[i];
    sy += w * y[i];
    sxx += w * x[i] * x[i];
    sxy += w * x[i] * y[i];
  }
  const double det = sw * sxx - sx * sx;
  double slope = det > 0 ? (sw * sxy - sx * sy) / det : 0;
  double intercept = det > 0 ? (sy - slope * sx) / sw : sy / sw;
  if (slope <= 0) {  // No cost per byte measurable: an unlimited rate.
    slope = 0;
    intercept = sy / sw;
  }
  LinkFit fit;
  fit.sizes = static_cast<int>(x.size());
  fit.samples = static_cast<int>(bytes.size());
  fit.intercept_ms = intercept;
  fit.slope_ms_per_mbyte = slope * 1e6;
  fit.model.rate_bits_per_s = slope > 0 ? 8 * 1000 / slope : 0;
  fit.model.overhead_ms = overhead_ms;
  fit.model.delay_ms = std::max(0.0, intercept / 2 - overhead_ms);
  double squares = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double residual = y[i] - (intercept + slope * x[i]);
    squares += residual * residual;
    fit.max_relative_residual = std::max(fit.max_relative_residual, std::abs(residual) / y[i]);
  }
  fit.rms_residual_ms = std::sqrt(squares / x.size());
  return fit;
}

std::string LinkFileText(const LinkFit& fit, const std::string& measured,
                         const std::string& backend) {
  const nlohmann::json j = {
      {"format", "paretopipe.link"},
      {"version", 1},
      {"overhead_ms", fit.model.overhead_ms},
      {"rate_bits_per_s", fit.model.rate_bits_per_s},
      {"delay_ms", fit.model.delay_ms},
      {"fit",
       {{"measured", measured},
        {"backend", backend},
        {"model", "rtt = 2 * (overhead + delay) + bytes * 8 / rate (weighted least squares)"},
        {"sizes", fit.sizes},
        {"samples", fit.samples},
        {"intercept_ms", fit.intercept_ms},
        {"slope_ms_per_mbyte", fit.slope_ms_per_mbyte},
        {"rms_residual_ms", fit.rms_residual_ms},
        {"max_relative_residual", fit.max_relative_residual}}}};
  return j.dump(2) + "\n";
}

}  // namespace paretopipe
