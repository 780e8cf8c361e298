#include <fieldsync/protocol/json_input.hpp>

namespace fieldsync::protocol {

bool is_valid_utf8(std::string_view text) noexcept {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (std::size_t k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        // Overlong forms, UTF-16 surrogates and code points past Unicode are all ill-formed.
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += len;
    }
    return true;
}

namespace {

// Nesting depth of a JSON text, counting brackets outside strings. Runs before the parser so
// that a deeply nested body costs one linear scan, not a deep recursion.
bool depth_within(std::string_view text, int max_depth) noexcept {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char ch : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (ch == '\\')
                escaped = true;
            else if (ch == '"')
                in_string = false;
            continue;
        }
        switch (ch) {
            case '"': in_string = true; break;
            case '{':
            case '[':
                if (++depth > max_depth) return false;
                break;
            case '}':
            case ']': --depth; break;
            default: break;
        }
    }
    return true;
}

}  // namespace

expected<json> parse_json(std::string_view body, int max_depth) {
    if (!is_valid_utf8(body)) return error{errc::bad_utf8, "the body is not valid UTF-8"};
    if (!depth_within(body, max_depth))
        return error{errc::too_deep, "JSON is nested deeper than " + std::to_string(max_depth) + " levels"};
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        // Parse again for the parser's own message (where it failed); only on the error path.
        try {
            const json again = json::parse(body);
            (void)again;
        } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
            return error{errc::bad_json, e.what()};
        }
        return error{errc::bad_json, "the body is not valid JSON"};
    }
    return doc;
}

}  // namespace fieldsync::protocol
