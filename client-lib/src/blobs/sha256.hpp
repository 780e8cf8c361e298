#pragma once
// SHA-256 (FIPS 180-4), the name of a blob (SPEC.md, "Attachments"). The library's own: the
// client builds without OpenSSL in the embedded and WebAssembly builds, and hashing a 10 MiB
// photo needs no more than this.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace fieldsync::client::detail {

class sha256 {
public:
    sha256() noexcept;
    void update(std::string_view bytes) noexcept;
    /// The digest as 64 lowercase hex digits. Call once; the object is spent afterwards.
    std::string hex() noexcept;

    /// The digest of `bytes` in one call.
    static std::string of(std::string_view bytes);

private:
    void block(const unsigned char* p) noexcept;

    std::array<std::uint32_t, 8> h_;
    std::array<unsigned char, 64> buf_{};
    std::size_t used_ = 0;        // bytes in buf_
    std::uint64_t length_ = 0;    // bytes hashed so far
};

}  // namespace fieldsync::client::detail
