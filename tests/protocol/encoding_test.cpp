// parse_cbor refuses what parse_json refuses (depth, UTF-8, malformed input) without
// recursing, and gunzip stops at its cap.

#include <fieldsync/protocol/encoding.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

namespace fieldsync::protocol {
namespace {

const json k_sample = {{"cursor", "12"},
                       {"limit", 500},
                       {"changes", json::array({{{"id", "a"}, {"data", {{"name", "Lê Văn Tám"}, {"age", 41},
                                                                         {"score", 2.5}, {"ok", true},
                                                                         {"none", nullptr}, {"tags", {"x", "y"}}}}}})}};

TEST_CASE("CBOR round-trips the JSON value model", "[protocol][cbor]") {
    const auto bytes = to_cbor(k_sample);
    CHECK(bytes.size() < k_sample.dump().size());
    const auto back = parse_cbor(bytes, tuning::max_json_depth);
    REQUIRE(back);
    CHECK(*back == k_sample);
}

TEST_CASE("CBOR nesting is bounded before the recursive decoder runs", "[protocol][cbor]") {
    auto nested = [](int levels, char open) {
        std::string s(static_cast<std::size_t>(levels), open);
        s += '\xF6';
        return s;
    };
    CHECK(parse_cbor(nested(tuning::max_json_depth, '\x81'), tuning::max_json_depth));
    CHECK(parse_cbor(nested(tuning::max_json_depth + 1, '\x81'), tuning::max_json_depth).err().code == errc::too_deep);
    // Indefinite-length arrays count the same, and a million levels cost one linear scan.
    CHECK(parse_cbor(nested(1'000'000, '\x9F'), tuning::max_json_depth).err().code == errc::too_deep);
}

TEST_CASE("CBOR that JSON cannot carry, or that lies about its size, is refused", "[protocol][cbor]") {
    const std::vector<std::string> bad = {
        "",                                     // empty
        std::string("\x9A\xFF\xFF\xFF\xFF", 5), // 4 billion items in 5 bytes
        std::string("\x7A\xFF\xFF\xFF\xFF", 5), // a 4 GB text string
        std::string("\x42\x01\x02", 3),         // byte string
        std::string("\xC0\x60", 2),             // tag 0
        std::string("\xF7", 1),                 // undefined
        std::string("\xF0", 1),                 // simple value 16
        std::string("\xFA\x7F\xC0\x00\x00", 5), // NaN
        std::string("\xA1\x01\xF6", 3),         // integer map key
        std::string("\x9F\x01", 2),             // indefinite array without break
        std::string("\xFF", 1),                 // break outside a container
        std::string("\xBF\x61\x61\xFF", 4),     // indefinite map: key without value
        std::string("\x7F\x61\x61\xFF", 4),     // chunked text (not accepted)
        std::string("\x01\x02", 2),             // two top-level items
        std::string("\x1C", 1),                 // reserved additional information
    };
    for (const auto& b : bad) {
        INFO("bytes: " << json(json::binary_t(std::vector<std::uint8_t>(b.begin(), b.end()))).dump());
        const auto r = parse_cbor(b, tuning::max_json_depth);
        REQUIRE_FALSE(r);
        CHECK(r.err().code == errc::bad_json);
    }
    CHECK(parse_cbor(std::string("\x62\xC0\xAF", 3), tuning::max_json_depth).err().code == errc::bad_utf8);
    CHECK(parse_cbor(std::string("\x62\xED\xA0", 3), tuning::max_json_depth).err().code == errc::bad_utf8);
    // Indefinite containers with their break are fine.
    const auto ok = parse_cbor(std::string("\xBF\x61\x61\x9F\x01\x02\xFF\xFF", 8), tuning::max_json_depth);
    REQUIRE(ok);
    CHECK(*ok == json{{"a", {1, 2}}});
}

#if FIELDSYNC_HAVE_ZLIB
TEST_CASE("gunzip inflates one member and stops at its cap", "[protocol][gzip]") {
    const std::string text(200'000, 'x');
    const auto z = gzip(text);
    CHECK(z.size() < 2'000);
    std::string out;
    CHECK(gunzip(z, text.size(), out) == gunzip_status::ok);
    CHECK(out == text);
    CHECK(gunzip(z, text.size() - 1, out) == gunzip_status::too_large);
    CHECK(out.empty());
    CHECK(gunzip(z.substr(0, z.size() - 4), 1 << 20, out) == gunzip_status::malformed);
    CHECK(gunzip(z + z, 1 << 20, out) == gunzip_status::malformed);
    CHECK(gunzip("not gzip", 1 << 20, out) == gunzip_status::malformed);
    CHECK(gunzip("", 1 << 20, out) == gunzip_status::malformed);
}
#endif

}  // namespace
}  // namespace fieldsync::protocol
