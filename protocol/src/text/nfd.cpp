#include <fieldsync/protocol/nfd.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace fieldsync::protocol {
namespace {

struct nfd_entry {
    char32_t cp;
    char32_t parts[3];
};

#include "nfd_table.inc"

unsigned ccc(char32_t c) {
    return c >= 0x0300 && c < 0x0370 ? k_ccc_0300[c - 0x0300] : 0;
}

bool decode(std::string_view s, std::vector<char32_t>& out) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        const int n = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
        if (n < 0) return false;
        if (n > 0 && i + static_cast<std::size_t>(n) >= s.size()) return false;
        char32_t c = n == 0 ? b : n == 1 ? (b & 0x1F) : n == 2 ? (b & 0x0F) : (b & 0x07);
        for (int k = 1; k <= n; ++k) {
            const auto cb = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if ((cb & 0xC0) != 0x80) return false;
            c = (c << 6) | (cb & 0x3F);
        }
        out.push_back(c);
        i += static_cast<std::size_t>(n) + 1;
    }
    return true;
}

void encode(char32_t c, std::string& out) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

}  // namespace

std::string to_nfd(std::string_view text) {
    // Pure ASCII is its own NFD: the common case costs one scan.
    if (std::all_of(text.begin(), text.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; }))
        return std::string(text);
    std::vector<char32_t> in;
    in.reserve(text.size());
    if (!decode(text, in)) return std::string(text);

    std::vector<char32_t> out;
    out.reserve(in.size() + 8);
    for (const char32_t c : in) {
        const auto* end = std::end(k_nfd);
        const auto* it = std::lower_bound(std::begin(k_nfd), end, c,
                                          [](const nfd_entry& e, char32_t v) { return e.cp < v; });
        if (it != end && it->cp == c) {
            for (const char32_t p : it->parts)
                if (p) out.push_back(p);
        } else {
            out.push_back(c);
        }
    }
    // Canonical ordering: within each run of combining marks, a stable sort by class.
    for (std::size_t i = 0; i < out.size();) {
        if (ccc(out[i]) == 0) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < out.size() && ccc(out[j]) != 0) ++j;
        std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                         [](char32_t a, char32_t b) { return ccc(a) < ccc(b); });
        i = j;
    }
    std::string result;
    result.reserve(text.size() + 8);
    for (const char32_t c : out) encode(c, result);
    return result;
}

}  // namespace fieldsync::protocol
