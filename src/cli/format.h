// Number formatting for the CLI's tables: presentation only, no arithmetic
// that a number's definition depends on. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace paretopipe::cli {

// 12845056 -> "12,845,056".
std::string WithCommas(int64_t value);

// 300774272 -> "300.8M"; for MACs and parameter counts in tables.
std::string Short(double value);

// {8, 32, 112, 112} -> "8x32x112x112".
std::string ShapeText(const std::vector<int64_t>& shape);

}  // namespace paretopipe::cli
