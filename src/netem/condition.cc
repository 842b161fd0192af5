#include "netem/condition.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <utility>
#include <vector>

namespace paretopipe {
namespace {

// Splits "200ms" into 200 and "ms". Fails without a number.
bool SplitNumber(const std::string& text, double* value, std::string* unit) {
  size_t used = 0;
  try {
    *value = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  if (!std::isfinite(*value) || *value < 0) return false;
  *unit = text.substr(used);
  std::transform(unit->begin(), unit->end(), unit->begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return true;
}

Result<std::chrono::microseconds> ParseTime(const std::string& key, const std::string& text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit)) {
    return Status::InvalidArgument(fmt::format("--net {}={}: not a time (e.g. 200ms)", key, text));
  }
  double us = 0;
  if (unit == "us") {
    us = v;
  } else if (unit == "ms") {
    us = v * 1e3;
  } else if (unit == "s") {
    us = v * 1e6;
  } else {
    return Status::InvalidArgument(
        fmt::format("--net {}={}: give a unit: us, ms or s (e.g. 200ms)", key, text));
  }
  if (us > 60e6) {
    return Status::InvalidArgument(fmt::format("--net {}={}: more than 60 s", key, text));
  }
  return std::chrono::microseconds(static_cast<int64_t>(std::llround(us)));
}

Result<int64_t> ParseRate(const std::string& text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit)) {
    return Status::InvalidArgument(fmt::format("--net rate={}: not a rate (e.g. 5mbit)", text));
  }
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"bit", 1}, {"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name) {
      const double bits = v * scale;
      if (bits < 8000 || bits > 100e9) {
        return Status::InvalidArgument(
            fmt::format("--net rate={}: must be within 8kbit..100gbit", text));
      }
      return static_cast<int64_t>(std::llround(bits));
    }
  }
  if (unit.size() >= 3 && unit.compare(unit.size() - 3, 3, "bps") == 0) {
    return Status::InvalidArgument(fmt::format(
        "--net rate={}: tc reads '{}' as bytes per second; write bits, e.g. rate=5mbit", text,
        unit));
  }
  return Status::InvalidArgument(
      fmt::format("--net rate={}: give a unit: bit, kbit, mbit or gbit (e.g. 5mbit)", text));
}

Result<int64_t> ParseSize(const std::string& text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit)) {
    return Status::InvalidArgument(fmt::format("--net burst={}: not a size (e.g. 32kbit)", text));
  }
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"", 1}, {"b", 1}, {"kb", 1024}, {"mb", 1024 * 1024}, {"kbit", 1000 / 8.0},
      {"mbit", 1e6 / 8}};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name) {
      const double bytes = v * scale;
      if (bytes < 64 || bytes > (1 << 30)) {
        return Status::InvalidArgument(
            fmt::format("--net burst={}: must be within 64 bytes..1 GiB", text));
      }
      return static_cast<int64_t>(std::llround(bytes));
    }
  }
  return Status::InvalidArgument(
      fmt::format("--net burst={}: give a unit: b, kb, mb, kbit or mbit", text));
}

Result<double> ParsePercent(const std::string& text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit) || (unit != "%" && !unit.empty()) || v > 100) {
    return Status::InvalidArgument(
        fmt::format("--net loss={}: not a percentage within 0..100 (e.g. 0.5%)", text));
  }
  return v;
}

// The shortest text that reads back as `v`, as tc is given it too.
std::string Number(double v) { return fmt::format("{}", v); }

}  // namespace

Result<NetCondition> ParseNetCondition(const std::string& text) {
  NetCondition c;
  if (text == "none") return c;
  if (text.empty()) return Status::InvalidArgument("--net: empty condition (write none)");
  std::stringstream in(text);
  std::string item;
  std::vector<std::string> seen;
  while (std::getline(in, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(fmt::format(
          "--net '{}': '{}' is not key=value (keys: delay, jitter, loss, rate, burst, dir)", text,
          item));
    }
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return Status::InvalidArgument(fmt::format("--net '{}': '{}' given twice", text, key));
    }
    seen.push_back(key);
    if (key == "delay") {
      PP_ASSIGN_OR_RETURN(c.delay, ParseTime(key, value));
    } else if (key == "jitter") {
      PP_ASSIGN_OR_RETURN(c.jitter, ParseTime(key, value));
    } else if (key == "loss") {
      PP_ASSIGN_OR_RETURN(c.loss_percent, ParsePercent(value));
    } else if (key == "rate") {
      PP_ASSIGN_OR_RETURN(c.rate_bits_per_s, ParseRate(value));
    } else if (key == "burst") {
      PP_ASSIGN_OR_RETURN(c.burst_bytes, ParseSize(value));
    } else if (key == "dir") {
      if (value != "forward" && value != "both") {
        return Status::InvalidArgument(
            fmt::format("--net dir={}: must be forward or both", value));
      }
      c.forward_only = value == "forward";
    } else {
      return Status::InvalidArgument(fmt::format(
          "--net '{}': unknown key '{}' (keys: delay, jitter, loss, rate, burst, dir)", text, key));
    }
  }
  if (c.jitter > c.delay) {
    return Status::InvalidArgument(fmt::format(
        "--net '{}': jitter {} exceeds the delay {}; a packet cannot leave before it was sent",
        text, TcTime(c.jitter), TcTime(c.delay)));
  }
  if (c.burst_bytes > 0 && c.rate_bits_per_s == 0) {
    return Status::InvalidArgument(fmt::format("--net '{}': burst needs a rate", text));
  }
  return c;
}

std::string TcTime(std::chrono::microseconds t) {
  const int64_t us = t.count();
  if (us % 1000000 == 0 && us != 0) return fmt::format("{}s", us / 1000000);
  if (us % 1000 == 0) return fmt::format("{}ms", us / 1000);
  return fmt::format("{}us", us);
}

std::string TcRate(int64_t bits_per_s) {
  if (bits_per_s % 1000000000 == 0) return fmt::format("{}gbit", bits_per_s / 1000000000);
  if (bits_per_s % 1000000 == 0) return fmt::format("{}mbit", bits_per_s / 1000000);
  if (bits_per_s % 1000 == 0) return fmt::format("{}kbit", bits_per_s / 1000);
  return fmt::format("{}bit", bits_per_s);
}

std::string FormatNetCondition(const NetCondition& c) {
  std::vector<std::string> parts;
  if (c.delay.count() > 0) parts.push_back("delay=" + TcTime(c.delay));
  if (c.jitter.count() > 0) parts.push_back("jitter=" + TcTime(c.jitter));
  if (c.loss_percent > 0) parts.push_back("loss=" + Number(c.loss_percent) + "%");
  if (c.rate_bits_per_s > 0) parts.push_back("rate=" + TcRate(c.rate_bits_per_s));
  if (c.burst_bytes > 0) parts.push_back(fmt::format("burst={}b", c.burst_bytes));
  if (c.forward_only && !c.none()) parts.push_back("dir=forward");
  if (parts.empty()) return "none";
  return fmt::format("{}", fmt::join(parts, ","));
}

int64_t EffectiveBurstBytes(const NetCondition& c, int64_t min_bytes) {
  if (c.burst_bytes > 0) return std::max(c.burst_bytes, min_bytes);
  return std::max(c.rate_bits_per_s / 8 / 100, min_bytes);
}

}  // namespace paretopipe
