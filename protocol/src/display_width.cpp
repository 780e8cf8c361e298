#include <fieldsync/protocol/display_width.hpp>

#include <algorithm>
#include <iterator>

namespace fieldsync::protocol {

namespace {

struct range {
    char32_t lo, hi;
};

// Zero-width: combining marks (Mn, Me) of the scripts our data holds and the general
// combining blocks, plus format characters that print nothing.
constexpr range k_zero[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
    {0x05C4, 0x05C5}, {0x05C7, 0x05C7}, {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0670, 0x0670},
    {0x06D6, 0x06DC}, {0x06DF, 0x06E4}, {0x06E7, 0x06E8}, {0x06EA, 0x06ED}, {0x0E31, 0x0E31},
    {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x0EB1, 0x0EB1}, {0x0EB4, 0x0EBC}, {0x0EC8, 0x0ECD},
    {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064},
    {0x20D0, 0x20FF}, {0x302A, 0x302D}, {0x3099, 0x309A}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
};

// Wide and fullwidth (East Asian Width W and F), after Markus Kuhn's wcwidth.
constexpr range k_wide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},   {0x23F0, 0x23F0},
    {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},   {0x2648, 0x2653},   {0x267F, 0x267F},
    {0x2693, 0x2693},   {0x26A1, 0x26A1},   {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},
    {0x26CE, 0x26CE},   {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},   {0x2728, 0x2728},
    {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},   {0x2757, 0x2757},   {0x2795, 0x2797},
    {0x27B0, 0x27B0},   {0x27BF, 0x27BF},   {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},
    {0x2E80, 0x3029},   {0x302E, 0x303E},   {0x3041, 0x3098},   {0x309B, 0x33FF},   {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
    {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4},
    {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E},
    {0x1F191, 0x1F19A}, {0x1F200, 0x1F251}, {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB},
    {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

template <std::size_t N>
bool in(const range (&table)[N], char32_t cp) noexcept {
    const auto it = std::upper_bound(std::begin(table), std::end(table), cp,
                                     [](char32_t c, const range& r) { return c < r.lo; });
    return it != std::begin(table) && cp <= std::prev(it)->hi;
}

// Decodes one code point at `s[i]`; `len` receives the bytes used (1 for an ill-formed byte,
// which decodes as U+FFFD).
char32_t decode(std::string_view s, std::size_t i, std::size_t& len) noexcept {
    const auto b0 = static_cast<unsigned char>(s[i]);
    len = 1;
    if (b0 < 0x80) return b0;
    std::size_t n = 0;
    char32_t cp = 0, min = 0;
    if ((b0 & 0xE0) == 0xC0) n = 1, cp = b0 & 0x1F, min = 0x80;
    else if ((b0 & 0xF0) == 0xE0) n = 2, cp = b0 & 0x0F, min = 0x800;
    else if ((b0 & 0xF8) == 0xF0) n = 3, cp = b0 & 0x07, min = 0x10000;
    else return 0xFFFD;
    if (i + n >= s.size()) return 0xFFFD;  // truncated at the end
    for (std::size_t k = 1; k <= n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xFFFD;
    len = n + 1;
    return cp;
}

}  // namespace

int code_point_width(char32_t cp) noexcept {
    if (cp == 0) return 0;
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) return 0;
    if (in(k_zero, cp)) return 0;
    if (in(k_wide, cp)) return 2;
    return 1;
}

std::size_t display_width(std::string_view utf8) noexcept {
    std::size_t w = 0;
    for (std::size_t i = 0, len = 0; i < utf8.size(); i += len) w += static_cast<std::size_t>(code_point_width(decode(utf8, i, len)));
    return w;
}

std::vector<std::string> wrap_to_width(std::string_view utf8, std::size_t columns) {
    std::vector<std::string> lines(1);
    std::size_t used = 0;
    for (std::size_t i = 0, len = 0; i < utf8.size(); i += len) {
        const char32_t cp = decode(utf8, i, len);
        if (cp == '\n') {
            lines.emplace_back();
            used = 0;
            continue;
        }
        const auto w = static_cast<std::size_t>(code_point_width(cp));
        // A zero-width mark stays on the line of the letter it modifies.
        if (w > 0 && used > 0 && used + w > columns) {
            lines.emplace_back();
            used = 0;
        }
        lines.back().append(utf8.substr(i, len));
        used += w;
    }
    return lines;
}

std::string pad_to_width(std::string_view utf8, std::size_t columns) {
    std::string out(utf8);
    const auto w = display_width(utf8);
    if (w < columns) out.append(columns - w, ' ');
    return out;
}

}  // namespace fieldsync::protocol
