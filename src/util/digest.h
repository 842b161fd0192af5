// SHA-256 of a file, hex-encoded: how a weights file is named across
// machines (the orchestrator sends the digest; a worker holding a file with
// that digest uses it instead of receiving the tensors). OpenSSL's libcrypto
// does the hashing.
#pragma once

#include <cstddef>
#include <string>

#include "util/status.h"

namespace paretopipe {

// Lower-case hex SHA-256 of the file at `path`; IoError naming the path.
Result<std::string> Sha256OfFile(const std::string& path);

// Lower-case hex SHA-256 of `size` bytes at `data` (an input set's tensor).
std::string Sha256OfBytes(const void* data, size_t size);

}  // namespace paretopipe
