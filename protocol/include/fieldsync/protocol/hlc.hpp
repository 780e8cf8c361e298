#pragma once
// Hybrid logical clocks (SPEC.md, "Clocks"). On the wire an HLC is the string
// "<wall_ms>-<counter>", both decimal, e.g. "1764163200000-3". Ordering is by wall_ms, then
// counter; ties between writers are broken by the caller (device id, then change id).

#include <compare>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace fieldsync::protocol {

struct hlc {
    std::int64_t wall_ms = 0;
    std::uint32_t counter = 0;

    auto operator<=>(const hlc&) const = default;
    std::string to_string() const;
    /// Parses "<wall_ms>-<counter>"; nullopt on anything else (negative, overflow, junk).
    static std::optional<hlc> parse(std::string_view text);
};

/// A hybrid logical clock. Thread-safe. The wall clock is a seam so tests can skew it.
class hlc_clock {
public:
    using wall_fn = std::function<std::int64_t()>;  // milliseconds since the Unix epoch
    explicit hlc_clock(wall_fn wall = system_wall_ms);

    /// A new timestamp, greater than every one this clock has issued or observed.
    hlc now();
    /// Takes a remote timestamp into account (so later local stamps order after it).
    void observe(const hlc& remote);
    std::int64_t wall_ms() const { return wall_(); }

    static std::int64_t system_wall_ms();

private:
    wall_fn wall_;
    std::mutex mutex_;
    hlc last_;
};

}  // namespace fieldsync::protocol
