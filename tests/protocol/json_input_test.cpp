// parse_json on untrusted bodies: ill-formed UTF-8 is bad_utf8, nesting past the bound is
// too_deep, anything else the parser refuses is bad_json, in that order of checks.
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

#include <limits>
#include <string>

namespace fp = fieldsync::protocol;
using fp::json;

namespace {

fp::errc parse_code(std::string_view body, int depth = fp::tuning::max_json_depth) {
    const auto r = fp::parse_json(body, depth);
    return r ? fp::errc::ok : r.err().code;
}

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string nested_objects(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += "{\"k\":";
    s += "1";
    for (int i = 0; i < depth; ++i) s += "}";
    return s;
}

}  // namespace

TEST_CASE("well-formed UTF-8 at every length boundary is accepted", "[protocol][json][utf8]") {
    for (const char* ok : {"", "ascii", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
                           "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "Giồng Trôm", "Đảng bộ"}) {
        INFO(ok);
        CHECK(fp::is_valid_utf8(ok));
    }
    CHECK(fp::is_valid_utf8(std::string_view("nul\0inside", 10)));
}

TEST_CASE("ill-formed UTF-8 is refused", "[protocol][json][utf8]") {
    struct sample {
        const char* what;
        std::string bytes;
    };
    const sample samples[] = {
        {"overlong '/' in 2 bytes", "\xC0\xAF"},
        {"overlong NUL in 2 bytes", "\xC0\x80"},
        {"overlong 'A' (C1 lead)", "\xC1\x81"},
        {"overlong U+07FF in 3 bytes", "\xE0\x9F\xBF"},
        {"overlong U+FFFF in 4 bytes", "\xF0\x8F\xBF\xBF"},
        {"high surrogate U+D800", "\xED\xA0\x80"},
        {"low surrogate U+DFFF", "\xED\xBF\xBF"},
        {"CESU-8 pair", "\xED\xA0\xBD\xED\xB8\x80"},
        {"U+110000", "\xF4\x90\x80\x80"},
        {"F5 lead", "\xF5\x80\x80\x80"},
        {"5-byte form", "\xF8\x88\x80\x80\x80"},
        {"FE", "\xFE"},
        {"FF", "\xFF"},
        {"lone continuation", "\x80"},
        {"truncated 2-byte at end", "Gi\xE1\xBB"},
        {"truncated 2-byte lead at end", "\xC3"},
        {"truncated 4-byte", "\xF0\x9F\x98"},
        {"truncated then ASCII", "\xE1\xBB" "a"},
        {"Latin-1 'ồ' (not UTF-8)", "Gi\xF4ng"},
    };
    for (const auto& s : samples) {
        INFO(s.what);
        CHECK_FALSE(fp::is_valid_utf8(s.bytes));
        // Inside a JSON string, where a lenient parser would let it through.
        const std::string body = "{\"notes\":\"" + s.bytes + "\"}";
        const auto r = fp::parse_json(body, fp::tuning::max_json_depth);
        REQUIRE_FALSE(r);
        CHECK(r.err().code == fp::errc::bad_utf8);
        CHECK_THAT(r.err().message, Catch::Matchers::Contains("UTF-8"));
    }
}

TEST_CASE("depth is bounded, the bound itself is accepted", "[protocol][json]") {
    const int max = fp::tuning::max_json_depth;
    CHECK(parse_code(nested_arrays(max)) == fp::errc::ok);
    CHECK(parse_code(nested_arrays(max + 1)) == fp::errc::too_deep);
    CHECK(parse_code(nested_objects(max)) == fp::errc::ok);
    CHECK(parse_code(nested_objects(max + 1)) == fp::errc::too_deep);
    // A hostile body far deeper than any parser stack would take.
    CHECK(parse_code(nested_arrays(1'000'000)) == fp::errc::too_deep);
    CHECK(parse_code(std::string(1'000'000, '[')) == fp::errc::too_deep);
    // Depth, not count: many siblings at depth 2 are fine.
    std::string wide = "[";
    for (int i = 0; i < 10'000; ++i) wide += (i ? ",[]" : "[]");
    wide += "]";
    CHECK(parse_code(wide) == fp::errc::ok);

    const auto r = fp::parse_json(nested_arrays(max + 1), max);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.err().message, Catch::Matchers::Contains(std::to_string(max)));
    CHECK(parse_code(nested_arrays(3), 2) == fp::errc::too_deep);
}

TEST_CASE("brackets inside strings are not nesting", "[protocol][json]") {
    const std::string brackets(200, '[');
    CHECK(parse_code("{\"notes\":\"" + brackets + "\"}") == fp::errc::ok);
    CHECK(parse_code("{\"" + brackets + "\":\"" + std::string(200, '{') + "\"}") == fp::errc::ok);
    // An escaped quote does not end the string; an escaped backslash before a quote does.
    CHECK(parse_code("{\"notes\":\"say \\\"" + brackets + "\\\" loudly\"}") == fp::errc::ok);
    const auto r = fp::parse_json("[\"\\\\\"," + nested_arrays(40) + "]", fp::tuning::max_json_depth);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == fp::errc::too_deep);
    const auto parsed = fp::parse_json("{\"notes\":\"" + brackets + "\"}", 2);
    REQUIRE(parsed);
    CHECK((*parsed)["notes"] == brackets);
}

TEST_CASE("syntax errors are bad_json with the parser's position", "[protocol][json]") {
    for (const char* bad : {"", " ", "{", "}", "[1,2", "{\"a\":1,}", "[1,]", "{a:1}", "{'a':1}", "{\"a\" 1}",
                            "{} {}", "[] x", "nul", "tru", "01", "1.", ".5", "+1", "\"unterminated", "\"tab\tin\"",
                            "{\"a\":NaN}", "{\"a\":Infinity}", "/* c */ {}", "]]]]"}) {
        INFO(bad);
        const auto r = fp::parse_json(bad, fp::tuning::max_json_depth);
        REQUIRE_FALSE(r);
        CHECK(r.err().code == fp::errc::bad_json);
        CHECK_FALSE(r.err().message.empty());
    }
    const auto r = fp::parse_json("{\"a\":1,}", fp::tuning::max_json_depth);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.err().message, Catch::Matchers::Contains("column"));
}

TEST_CASE("an escaped lone surrogate is refused", "[protocol][json][utf8]") {
    // \uD800 would decode to ill-formed UTF-8; the parser refuses the escape.
    for (const char* bad : {R"({"a":"\uD800"})", R"({"a":"\uDC00"})", R"({"a":"\uD800\u0041"})"}) {
        INFO(bad);
        const auto r = fp::parse_json(bad, fp::tuning::max_json_depth);
        REQUIRE_FALSE(r);
        CHECK(r.err().code == fp::errc::bad_json);
    }
    const auto pair = fp::parse_json(R"({"a":"\uD83D\uDE00"})", fp::tuning::max_json_depth);
    REQUIRE(pair);
    CHECK((*pair)["a"] == "\xF0\x9F\x98\x80");
}

TEST_CASE("checks run in order: UTF-8, then depth, then syntax", "[protocol][json]") {
    // Deep and ill-formed UTF-8: bad_utf8.
    CHECK(parse_code(nested_arrays(100) + "\xC0\xAF") == fp::errc::bad_utf8);
    // Deep and a syntax error: too_deep.
    CHECK(parse_code(std::string(100, '[') + "}") == fp::errc::too_deep);
}

TEST_CASE("valid documents parse to their values", "[protocol][json]") {
    const auto r = fp::parse_json(R"({"batch_id":"b-1","changes":[],"cursor":"","limit":500,"x":[1.5,true,null]})",
                                  fp::tuning::max_json_depth);
    REQUIRE(r);
    CHECK((*r)["batch_id"] == "b-1");
    CHECK((*r)["limit"] == 500);
    CHECK((*r)["x"] == json::array({1.5, true, nullptr}));
    // A UTF-8 byte order mark is not JSON text but is tolerated, as most HTTP clients may send it.
    const auto bom = fp::parse_json("\xEF\xBB\xBF{\"a\":1}", fp::tuning::max_json_depth);
    CHECK((bom ? fp::errc::ok : bom.err().code) == fp::errc::ok);
}

TEST_CASE("numbers and members behave as SPEC.md's Transport section says", "[protocol][json][spec]") {
    const auto r = fp::parse_json(R"({"b":1,"a":2,"b":3,"big":18446744073709551615,"small":-9223372036854775808,
        "huge":123456789012345678901234567890})",
                                  fp::tuning::max_json_depth);
    REQUIRE(r);
    CHECK((*r)["b"] == 3);  // a repeated member: the last one counts
    CHECK((*r)["big"].get<std::uint64_t>() == 18446744073709551615ULL);
    CHECK((*r)["small"].get<std::int64_t>() == std::numeric_limits<std::int64_t>::min());
    CHECK((*r)["huge"].is_number_float());
    CHECK(r->dump().rfind(R"({"a":2,"b":3,)", 0) == 0);  // members come back sorted by name
    CHECK(parse_code(R"({"x":1e400})") == fp::errc::bad_json);
    CHECK(parse_code(R"({"x":-1e400})") == fp::errc::bad_json);
}

TEST_CASE("a bad_json message is valid UTF-8 even when the input is cut mid-character", "[protocol][json][utf8]") {
    // The parser quotes the bytes it last read; "trué" stops after the first byte of 'é'.
    for (const std::string& body : {std::string("tru\xC3\xA9"), std::string("{\"a\":n\xC3\xA9}"), std::string("\xE1\xBB\x93"),
                                   std::string("[1, Gi\xE1\xBB\x93ng]")}) {
        INFO(body);
        const auto r = fp::parse_json(body, fp::tuning::max_json_depth);
        REQUIRE_FALSE(r);
        CHECK(r.err().code == fp::errc::bad_json);
        CHECK(fp::is_valid_utf8(r.err().message));
        // So the error encodes to a wire body without throwing.
        CHECK_NOTHROW(json{{"error", {{"code", "bad_json"}, {"message", r.err().message}}}}.dump());
    }
}
