// Every run as one flat row, for pandas and spreadsheets.
//
// Owns: the flat column layout of a run (docs/store.md lists the columns).
// Must not touch: the store's SQL, models.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "metrics/run_record.h"

namespace paretopipe {

// Column names, in order: the run's fields, its across-repeat estimates (and
// repeats_n, the repeats they are over), the environment of stage 1, then
// per-stage columns stage1_*, stage2_*, ... up to the largest stage count
// among `runs`; runs with fewer stages leave them empty.
std::vector<std::string> ExportColumns(const std::vector<RunRecord>& runs);

// RFC 4180 CSV: header line, one line per run, each ended by CRLF; fields with
// a comma, quote or line break quoted. Doubles in the shortest text that reads
// back as the same value; absent values are empty.
std::string RunsToCsv(const std::vector<RunRecord>& runs);

// A JSON array of objects with the same columns, in the same order (numbers
// as numbers, absent values as null), ending with a newline.
std::string RunsToJson(const std::vector<RunRecord>& runs);

}  // namespace paretopipe
