// Self-contained SHA-256 (FIPS 180-4), so the core needs no crypto library on
// any platform. Only used to fingerprint the measured artifact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mfbench {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  std::string hex_digest();  // finishes the hash; call once

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;  // bytes hashed
};

}  // namespace mfbench
