// The fuzzers' inputs as regression tests (ARCHITECTURE.md, "Testing"). Every seed and
// every finding kept under tests/fuzz/corpus/<target>/ runs here through the same functions
// the fuzz targets drive, so the ordinary suite (and its ASan/UBSan run in CI) replays them
// without clang. A finding that was a bug gets a named TEST_CASE below as well.
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/merge.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fp = fieldsync::protocol;
using fp::json;

namespace {

std::vector<std::pair<std::string, std::string>> corpus(const std::string& target) {
    std::vector<std::pair<std::string, std::string>> out;
    const auto dir = std::filesystem::path(FIELDSYNC_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / target;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(e.path(), std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        out.emplace_back(e.path().filename().string(), s.str());
    }
    return out;
}

}  // namespace

TEST_CASE("fuzz corpus: change-set bodies decode without throwing and accepted changes round-trip",
          "[fuzz][messages]") {
    const auto files = corpus("fuzz_change_set");
    REQUIRE_FALSE(files.empty());
    for (const auto& [name, body] : files) {
        INFO(name);
        auto doc = fp::parse_json(body, fp::tuning::max_json_depth);
        if (!doc) continue;
        fp::expected<fp::change_set> cs = fp::error{fp::errc::bad_request, ""};
        REQUIRE_NOTHROW(cs = fp::decode_change_set(*doc));
        if (!cs) continue;
        for (const auto& e : cs->changes) {
            if (e.rejected) continue;
            const auto back = fp::decode_change(fp::encode(e.c));
            CHECK_FALSE(back.rejected);
            CHECK(back.c.change_id == e.c.change_id);
            CHECK(back.c.data == e.c.data);
            CHECK(back.c.base_version == e.c.base_version);
        }
    }
}

TEST_CASE("fuzz corpus: schema documents and records load and validate without throwing", "[fuzz][schema]") {
    const auto files = corpus("fuzz_schema");
    REQUIRE_FALSE(files.empty());
    for (const auto& [name, text] : files) {
        INFO(name);
        auto doc = fp::parse_json(text, fp::tuning::max_json_depth);
        if (!doc) continue;
        const json& schema_doc = doc->is_array() && !doc->empty() ? (*doc)[0] : *doc;
        REQUIRE_NOTHROW(fp::schema::from_json(schema_doc));
        const auto& s = fp::schema::default_schema();
        for (const auto& [cname, c] : s.collections()) REQUIRE_NOTHROW(s.validate(c, *doc));
    }
}

TEST_CASE("fuzz corpus: merge scenarios decide without throwing", "[fuzz][merge]") {
    const auto files = corpus("fuzz_merge");
    REQUIRE_FALSE(files.empty());
    for (const auto& [name, text] : files) {
        INFO(name);
        auto doc = fp::parse_json(text, 32);
        if (!doc || !doc->is_array() || doc->size() < 3) continue;
        const json& base = (*doc)[0];
        const json& head = (*doc)[1];
        const json& incoming = (*doc)[2];
        if (!base.is_object() || !head.is_object() || !incoming.is_object()) continue;
        fp::head_state h;
        h.version = 2;
        h.state = {false, head};
        fp::incoming_change in;
        in.base_version = 1;
        in.data = &incoming;
        for (const auto policy : {fp::merge_policy::review, fp::merge_policy::lww}) {
            fp::merge_outcome o;
            REQUIRE_NOTHROW(o = fp::decide(h, fp::version_state{false, base}, in, policy));
            if (policy == fp::merge_policy::review && o.kind == fp::merge_kind::conflict) CHECK_FALSE(o.collisions.empty());
        }
    }
}
