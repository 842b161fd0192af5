// Secret files, nonces and HMAC-SHA256 proofs (util/auth.h).
#include "util/auth.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace paretopipe {
namespace {

std::string Hex(const unsigned char* bytes, size_t length) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (size_t i = 0; i < length; ++i) {
    out += hex[bytes[i] >> 4];
    out += hex[bytes[i] & 15];
  }
  return out;
}

}  // namespace

Result<std::string> ReadSecretFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return Status::IoError(fmt::format("token file {}: {}", path, std::strerror(errno)));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Status::InvalidArgument(
        fmt::format("token file {} is accessible by group or others (mode {:o}): chmod 600 {}",
                    path, st.st_mode & 0777, path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("token file {}: cannot open it", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string secret = ss.str();
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    return Status::InvalidArgument(
        fmt::format("token file {} is empty: it must hold a secret", path));
  }
  return secret;
}

Result<std::string> WriteSecretFile(const std::string& secret) {
  const char* tmp = std::getenv("TMPDIR");
  std::string path = fmt::format("{}/paretopipe-token-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  // mkstemp creates the file 0600 and fails if the name exists: nobody can
  // have opened it before us.
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    return Status::IoError(fmt::format("token file {}: {}", path, std::strerror(errno)));
  }
  const char* p = secret.data();
  size_t left = secret.size();
  while (left > 0) {
    const ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      close(fd);
      unlink(path.c_str());
      return Status::IoError(fmt::format("token file {}: {}", path, std::strerror(error)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  close(fd);
  return path;
}

Result<std::string> RandomHex(size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
    return Status::Internal("OpenSSL's random generator failed (not seeded?)");
  }
  return Hex(buffer.data(), buffer.size());
}

std::string AuthProof(const std::string& secret, AuthSide side, const AuthTranscript& t) {
  // Newlines separate the fields; none can contain one (roles are known
  // words, nonces hex), so no two transcripts encode alike.
  const std::string message = fmt::format("paretopipe-auth-v1\n{}\n{}\n{}\n{}\n{}",
                                          side == AuthSide::kWorker ? "worker" : "client", t.role,
                                          t.run_id, t.client_nonce, t.worker_nonce);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  return Hex(mac, length);
}

bool ProofsEqual(const std::string& a, const std::string& b) {
  // The length of a proof is public (64 hex characters): only the content
  // must not leak through timing.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace paretopipe
