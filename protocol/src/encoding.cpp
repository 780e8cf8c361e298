#include <fieldsync/protocol/encoding.hpp>
#include <fieldsync/protocol/json_input.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if FIELDSYNC_HAVE_ZLIB
#include <zlib.h>
#endif

namespace fieldsync::protocol {

namespace {

enum class scan { ok, malformed, too_deep, bad_utf8 };

// One container being read: items still expected (definite length), or open until a break
// (indefinite). Maps count keys and values as separate items.
struct frame {
    std::uint64_t remaining = 0;
    bool indefinite = false;
    bool map = false;
    std::uint64_t seen = 0;   // items read so far, for the key/value pairing of indefinite maps
};

// Walks the CBOR item structure with an explicit stack, so the prescan itself never recurses,
// and checks everything nlohmann's recursive decoder would otherwise meet first.
scan prescan_cbor(std::string_view body, int max_depth) {
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    const std::size_t n = body.size();
    std::size_t i = 0;
    std::vector<frame> stack;
    bool top_done = false;

    auto read_uint = [&](unsigned ai, std::uint64_t& v) -> bool {
        if (ai < 24) {
            v = ai;
            return true;
        }
        std::size_t len = ai == 24 ? 1 : ai == 25 ? 2 : ai == 26 ? 4 : ai == 27 ? 8 : 0;
        if (len == 0 || i + len > n) return false;
        v = 0;
        for (std::size_t k = 0; k < len; ++k) v = (v << 8) | p[i + k];
        i += len;
        return true;
    };
    // An item finished: count it against its container, closing containers that are full.
    auto complete = [&] {
        while (!stack.empty()) {
            auto& f = stack.back();
            ++f.seen;
            if (f.indefinite) return;
            if (--f.remaining > 0) return;
            stack.pop_back();
        }
        top_done = true;
    };
    // Map keys must be text strings (JSON object keys).
    auto expecting_key = [&] {
        return !stack.empty() && stack.back().map && stack.back().seen % 2 == 0;
    };

    while (i < n) {
        if (top_done) return scan::malformed;  // bytes after the one top-level item
        const unsigned char head = p[i++];
        const unsigned major = head >> 5;
        const unsigned ai = head & 0x1F;
        if (expecting_key() && major != 3 && head != 0xFF) return scan::malformed;
        switch (major) {
            case 0:
            case 1: {
                std::uint64_t v;
                if (ai == 31 || !read_uint(ai, v)) return scan::malformed;
                complete();
                break;
            }
            case 3: {
                std::uint64_t len;
                if (ai == 31 || !read_uint(ai, len)) return scan::malformed;  // no chunked strings
                if (len > n - i) return scan::malformed;
                if (!is_valid_utf8(std::string_view(body.data() + i, static_cast<std::size_t>(len))))
                    return scan::bad_utf8;
                i += static_cast<std::size_t>(len);
                complete();
                break;
            }
            case 4:
            case 5: {
                frame f;
                f.map = major == 5;
                if (ai == 31) {
                    f.indefinite = true;
                } else {
                    std::uint64_t count;
                    if (!read_uint(ai, count)) return scan::malformed;
                    // Every item takes at least one byte: a count beyond the bytes left is a lie
                    // that would otherwise make the decoder reserve memory for it.
                    if (count > n - i || (f.map && count > (n - i) / 2)) return scan::malformed;
                    f.remaining = f.map ? count * 2 : count;
                }
                if (static_cast<int>(stack.size()) + 1 > max_depth) return scan::too_deep;
                if (!f.indefinite && f.remaining == 0)
                    complete();
                else
                    stack.push_back(f);
                break;
            }
            case 7: {
                if (ai == 31) {  // break: closes the innermost indefinite container
                    if (stack.empty() || !stack.back().indefinite) return scan::malformed;
                    if (stack.back().map && stack.back().seen % 2 != 0) return scan::malformed;
                    stack.pop_back();
                    complete();
                    break;
                }
                if (ai == 20 || ai == 21 || ai == 22) {  // false, true, null
                    complete();
                    break;
                }
                const std::size_t len = ai == 25 ? 2 : ai == 26 ? 4 : ai == 27 ? 8 : 0;
                if (len == 0 || i + len > n) return scan::malformed;  // undefined, simple values
                std::uint64_t bits = 0;
                for (std::size_t k = 0; k < len; ++k) bits = (bits << 8) | p[i + k];
                i += len;
                // JSON has no NaN or infinity; stored records are JSON text.
                bool finite;
                if (len == 2) {
                    finite = ((bits >> 10) & 0x1F) != 0x1F;
                } else if (len == 4) {
                    finite = ((bits >> 23) & 0xFF) != 0xFF;
                } else {
                    finite = ((bits >> 52) & 0x7FF) != 0x7FF;
                }
                if (!finite) return scan::malformed;
                complete();
                break;
            }
            default:  // 2: byte strings, 6: tags. Neither has a JSON form.
                return scan::malformed;
        }
    }
    return top_done ? scan::ok : scan::malformed;
}

}  // namespace

expected<json> parse_cbor(std::string_view body, int max_depth) {
    switch (prescan_cbor(body, max_depth)) {
        case scan::ok: break;
        case scan::too_deep:
            return error{errc::too_deep, "CBOR is nested deeper than " + std::to_string(max_depth) + " levels"};
        case scan::bad_utf8: return error{errc::bad_utf8, "a CBOR text string is not valid UTF-8"};
        case scan::malformed: return error{errc::bad_json, "the body is not well-formed CBOR of JSON values"};
    }
    json doc = json::from_cbor(body.begin(), body.end(), /*strict=*/true, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return error{errc::bad_json, "the body is not well-formed CBOR"};
    return doc;
}

std::string to_cbor(const json& value) {
    std::string out;
    json::to_cbor(value, out);
    return out;
}

#if FIELDSYNC_HAVE_ZLIB

namespace {
// windowBits 15 (the largest window) + 16: gzip framing rather than zlib's.
constexpr int k_gzip_window_bits = 15 + 16;
constexpr std::size_t k_chunk = 16 * 1024;
}  // namespace

std::string gzip(std::string_view data) {
    z_stream z{};
    // Level 6 (zlib's default): within a few percent of level 9 on JSON at a third of its CPU.
    if (deflateInit2(&z, 6, Z_DEFLATED, k_gzip_window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::bad_alloc();
    std::string out;
    out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 32);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::bad_alloc();  // the bound above makes this unreachable
    return out;
}

gunzip_status gunzip(std::string_view data, std::size_t max_output, std::string& out) {
    out.clear();
    z_stream z{};
    if (inflateInit2(&z, k_gzip_window_bits) != Z_OK) throw std::bad_alloc();
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    char chunk[k_chunk];
    gunzip_status status = gunzip_status::malformed;
    for (;;) {
        z.next_out = reinterpret_cast<Bytef*>(chunk);
        z.avail_out = sizeof chunk;
        const int rc = inflate(&z, Z_NO_FLUSH);
        const std::size_t got = sizeof chunk - z.avail_out;
        if (out.size() + got > max_output) {
            status = gunzip_status::too_large;
            break;
        }
        out.append(chunk, got);
        if (rc == Z_STREAM_END) {
            status = z.avail_in == 0 ? gunzip_status::ok : gunzip_status::malformed;
            break;
        }
        if (rc != Z_OK) break;                          // data error, truncated, no memory
        if (z.avail_in == 0 && got == 0) break;         // input ended before the stream did
    }
    inflateEnd(&z);
    if (status != gunzip_status::ok) out.clear();
    return status;
}

#endif

}  // namespace fieldsync::protocol
