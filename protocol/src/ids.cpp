#include <fieldsync/protocol/ids.hpp>

#include <charconv>

namespace fieldsync::protocol {

void format_uuid(const uuid_bytes& b, char* out) noexcept {
    static constexpr char k_hex[] = "0123456789abcdef";
    std::size_t o = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = k_hex[b[i] >> 4];
        out[o++] = k_hex[b[i] & 0xF];
    }
}

std::string format_uuid(const uuid_bytes& b) {
    std::string s(36, '0');
    format_uuid(b, s.data());
    return s;
}

namespace {
void set_variant(uuid_bytes& b) noexcept { b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80); }
}  // namespace

uuid_bytes uuid_v4(uuid_bytes b) noexcept {
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0F) | 0x40);
    set_variant(b);
    return b;
}

uuid_bytes uuid_v7_maker::next(std::uint64_t now_ms, std::uint64_t r1, std::uint64_t r2) noexcept {
    if (now_ms > last_ms_) {
        last_ms_ = now_ms;
        counter_ = static_cast<std::uint32_t>(r1 & 0x3FF);  // start low: room to count up
    } else if (++counter_ > 0xFFF) {
        ++last_ms_;  // the counter is exhausted: borrow the next millisecond
        counter_ = 0;
    }
    uuid_bytes b{};
    for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(last_ms_ >> (40 - 8 * i));
    b[6] = static_cast<std::uint8_t>(0x70 | ((counter_ >> 8) & 0x0F));
    b[7] = static_cast<std::uint8_t>(counter_ & 0xFF);
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(r2 >> (56 - 8 * i));
    set_variant(b);
    return b;
}

std::optional<std::int64_t> parse_decimal(std::string_view s) noexcept {
    if (s.empty() || s.size() > 19) return std::nullopt;
    for (const char c : s)
        if (c < '0' || c > '9') return std::nullopt;
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<std::int64_t> parse_integer(std::string_view s, std::int64_t min, std::int64_t max) noexcept {
    char digits[24];
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool separator = (c == ',' || c == '_') && n > 0 && digits[n - 1] != '-' && i + 1 < s.size();
        if (separator) continue;
        if (n == sizeof digits) return std::nullopt;
        digits[n++] = c;
    }
    if (n == 0) return std::nullopt;
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(digits, digits + n, v);
    if (ec != std::errc() || p != digits + n || v < min || v > max) return std::nullopt;
    return v;
}

}  // namespace fieldsync::protocol
