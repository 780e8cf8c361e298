// Vietnamese text round-trips byte for byte, precomposed (NFC) and decomposed (NFD), through
// every codec of the protocol. The texts are the project's own: minutes and notes as a cell
// secretary writes them (tests/data/vietnamese-texts.txt) and the demo data set's names
// (tools/demo/giong-trom.json), so the test sees what the field sees.
#include "protocol/vietnamese_nfd.hpp"

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/merge.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fp = fieldsync::protocol;
using fp::json;
using fieldsync::test::to_vietnamese_nfd;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string article() { return read_file(FIELDSYNC_SOURCE_DIR "/tests/data/vietnamese-texts.txt"); }
json names() { return json::parse(read_file(FIELDSYNC_SOURCE_DIR "/tools/demo/giong-trom.json")); }

// Every string value of a JSON document, depth first.
void collect_strings(const json& j, std::vector<std::string>& out) {
    if (j.is_string())
        out.push_back(j.get<std::string>());
    else if (j.is_structured())
        for (const auto& x : j) collect_strings(x, out);
}

std::vector<std::string> samples() {
    std::vector<std::string> texts;
    collect_strings(names(), texts);
    const std::string a = article();
    texts.push_back(a);
    std::istringstream lines(a);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) texts.push_back(line);
    return texts;
}

bool has_combining_mark(const std::string& s) {
    // U+0300..U+036F are encoded CC 80..CD AF.
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        const auto a = static_cast<unsigned char>(s[i]);
        const auto b = static_cast<unsigned char>(s[i + 1]);
        if ((a == 0xCC && b >= 0x80) || (a == 0xCD && b <= 0xAF)) return true;
    }
    return false;
}

// Pushes `text` through a change's whole wire path: encode, dump, parse_json, decode.
std::string through_change(const std::string& text) {
    fp::change c;
    c.change_id = "c-1";
    c.collection = "registrations";
    c.id = "reg-1";
    c.unit_id = "chi-bo-ap-3";
    c.op = fp::op_kind::put;
    c.data = {{"member", "mem-1"}, {"year", 2014}, {"commitments", {text}}, {"notes", text}};
    c.data[text] = text;  // as a key, too
    const std::string wire = fp::encode(c).dump();
    const auto parsed = fp::parse_json(wire, fp::tuning::max_json_depth);
    REQUIRE(parsed);
    const auto back = fp::decode_change(*parsed);
    REQUIRE_FALSE(back.rejected);
    CHECK(back.c.data[text] == text);
    CHECK(back.c.data["commitments"][0] == text);
    return back.c.data["notes"].get<std::string>();
}

// Through a pull response: encode, dump, parse_json, decode.
std::string through_pull(const std::string& text) {
    fp::sync_response r;
    r.changes.push_back({"members", "mem-1", "chi-bo-ap-3", 1, false, json{{"name", text}, {"cell", "chi-bo-ap-3"}}, {}});
    const auto parsed = fp::parse_json(fp::encode(r).dump(), fp::tuning::max_json_depth);
    REQUIRE(parsed);
    const auto back = fp::decode_sync_response(*parsed);
    REQUIRE(back);
    REQUIRE(back->changes.size() == 1);
    return back->changes[0].data["name"].get<std::string>();
}

}  // namespace

TEST_CASE("the test's Vietnamese texts are NFC and their NFD forms differ", "[protocol][utf8][vietnamese]") {
    const std::string a = article();
    REQUIRE(a.size() > 1000);
    CHECK(fp::is_valid_utf8(a));
    CHECK_FALSE(has_combining_mark(a));
    const std::string d = to_vietnamese_nfd(a);
    CHECK(fp::is_valid_utf8(d));
    CHECK(has_combining_mark(d));
    CHECK(d.size() > a.size());
    // Spot checks against the Unicode decompositions.
    CHECK(to_vietnamese_nfd("Giồng Trôm") == "Gio\xCC\x82\xCC\x80ng Tro\xCC\x82m");
    CHECK(to_vietnamese_nfd("Đảng") == "\xC4\x90" "a\xCC\x89ng");  // Đ has no decomposition
    CHECK(to_vietnamese_nfd("ộ") == "o\xCC\xA3\xCC\x82");
    CHECK(to_vietnamese_nfd("ở") == "o\xCC\x9B\xCC\x89");
    CHECK(to_vietnamese_nfd("plain ASCII") == "plain ASCII");
}

TEST_CASE("Vietnamese text round-trips byte for byte in NFC and NFD", "[protocol][utf8][vietnamese]") {
    const auto texts = samples();
    REQUIRE(texts.size() > 50);
    std::size_t decomposed = 0;
    for (const auto& nfc : texts) {
        const std::string nfd = to_vietnamese_nfd(nfc);
        if (nfd != nfc) ++decomposed;
        for (const auto* form : {&nfc, &nfd}) {
            INFO((form == &nfc ? "NFC: " : "NFD: ") << form->substr(0, 80));
            CHECK(through_change(*form) == *form);
            CHECK(through_pull(*form) == *form);
        }
    }
    CHECK(decomposed > 40);
}

TEST_CASE("the whole name list round-trips through parse and dump unchanged", "[protocol][utf8][vietnamese]") {
    const std::string text = read_file(FIELDSYNC_SOURCE_DIR "/tools/demo/giong-trom.json");
    for (const std::string& form : {text, to_vietnamese_nfd(text)}) {
        const auto parsed = fp::parse_json(form, fp::tuning::max_json_depth);
        REQUIRE(parsed);
        const auto again = fp::parse_json(parsed->dump(), fp::tuning::max_json_depth);
        REQUIRE(again);
        CHECK(*again == *parsed);
        // No \u escapes: the dump carries the UTF-8 bytes themselves.
        CHECK(parsed->dump().find("\\u") == std::string::npos);
        std::vector<std::string> before, after;
        collect_strings(*parsed, before);
        collect_strings(*again, after);
        CHECK(before == after);
    }
}

TEST_CASE("JSON unicode escapes (backslash-u) decode to the same bytes as the literal text", "[protocol][utf8][vietnamese]") {
    const auto nfc = fp::parse_json(R"({"n":"Gi\u1ed3ng Tr\u00f4m"})", fp::tuning::max_json_depth);
    REQUIRE(nfc);
    CHECK((*nfc)["n"] == "Giồng Trôm");
    const auto nfd = fp::parse_json(R"({"n":"Gio\u0302\u0300ng Tro\u0302m"})", fp::tuning::max_json_depth);
    REQUIRE(nfd);
    CHECK((*nfd)["n"] == to_vietnamese_nfd("Giồng Trôm"));
}

TEST_CASE("the protocol keeps NFC and NFD as distinct bytes", "[protocol][utf8][vietnamese][merge]") {
    // Normalisation is the app's business (search, duplicate checks); the protocol must not
    // rewrite a member's text, so a change from one form to the other is a change.
    const json base = {{"name", "Nguyễn Thị Thủy"}, {"cell", "chi-bo-ap-3"}};
    json head_data = base;
    head_data["name"] = to_vietnamese_nfd("Nguyễn Thị Thủy");
    json incoming = base;
    incoming["name"] = "Nguyễn Thị Thúy";
    std::vector<std::string> collisions;
    fp::merge3(base, head_data, incoming, fp::prefer::head, collisions);
    CHECK(collisions == std::vector<std::string>{"/name"});
}

TEST_CASE("max_length counts UTF-8 bytes, so NFD text is longer", "[protocol][utf8][vietnamese][schema]") {
    const auto doc = json::parse(R"({"collections":{"members":{"fields":{"name":{"type":"string","max_length":22}}}}})");
    const auto s = fp::schema::from_json(doc);
    REQUIRE(s);
    const auto* members = s->find("members");
    REQUIRE(members);
    const std::string nfc = "Nguyễn Thị Thủy";  // 21 bytes NFC, 23 NFD
    REQUIRE(nfc.size() == 21);
    CHECK_FALSE(s->validate(*members, json{{"name", nfc}}));
    const auto err = s->validate(*members, json{{"name", to_vietnamese_nfd(nfc)}});
    REQUIRE(err);
    CHECK(err->code == fp::errc::schema_violation);
}
