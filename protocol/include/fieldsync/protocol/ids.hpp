#pragma once
// Identifiers and numbers as the project writes and reads them: UUIDs (RFC 9562) made from
// random bits the caller supplies (the server's CSPRNG, a device's generator, a benchmark's
// seeded one), and whole numbers in decimal.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fieldsync::protocol {

using uuid_bytes = std::array<std::uint8_t, 16>;

/// Writes the 36 characters of the canonical form (lower-case hex, 8-4-4-4-12) to `out`.
void format_uuid(const uuid_bytes& b, char* out) noexcept;
std::string format_uuid(const uuid_bytes& b);

/// A version 4 UUID: the 16 random bytes with the version and variant bits set.
uuid_bytes uuid_v4(uuid_bytes random) noexcept;

/// Time-ordered version 7 UUIDs (RFC 9562, method 1): 48 bits of Unix milliseconds, then a
/// 12-bit counter within the millisecond, so the ids one maker makes are strictly increasing
/// even when many come in the same millisecond (a full counter borrows the next millisecond).
/// Ids near each other in time sit near each other in a B-tree. Not thread-safe: one maker
/// per thread, or a lock around it.
class uuid_v7_maker {
public:
    /// `now_ms`: the wall clock; `r1`, `r2`: fresh random bits (r1's low bits start the
    /// counter of a new millisecond, r2 fills rand_b).
    uuid_bytes next(std::uint64_t now_ms, std::uint64_t r1, std::uint64_t r2) noexcept;

private:
    std::uint64_t last_ms_ = 0;
    std::uint32_t counter_ = 0;
};

/// A whole number written in decimal digits only (no sign, no space, at most 19 digits, within
/// int64): cursors, versions and counts on the wire and in query strings.
std::optional<std::int64_t> parse_decimal(std::string_view s) noexcept;
/// A whole number as a person types it on a command line: an optional '-', then digits, with
/// ',' or '_' allowed between them ("1,000,000"); nullopt outside [min, max].
std::optional<std::int64_t> parse_integer(std::string_view s, std::int64_t min, std::int64_t max) noexcept;

}  // namespace fieldsync::protocol
