#include <fieldsync/protocol/json_input.hpp>

namespace fieldsync::protocol {

namespace {

// Length of the well-formed UTF-8 sequence at text[i], or 0 if the bytes there are ill-formed.
std::size_t sequence_length(std::string_view text, std::size_t i) noexcept {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    const unsigned char c = s[i];
    if (c < 0x80) return 1;
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
        return 0;
    }
    if (i + len > n) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((s[i + k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past Unicode are all ill-formed.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

// The parser's message quotes the bytes it last read, which may end inside a multi-byte
// character; error messages travel as JSON strings, so each ill-formed byte becomes U+FFFD.
std::string valid_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        if (const auto len = sequence_length(text, i)) {
            out.append(text.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
    for (std::size_t i = 0; i < text.size();) {
        const auto len = sequence_length(text, i);
        if (len == 0) return false;
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
            return error{errc::bad_json, valid_utf8(e.what())};
        }
        return error{errc::bad_json, "the body is not valid JSON"};
    }
    return doc;
}

}  // namespace fieldsync::protocol
