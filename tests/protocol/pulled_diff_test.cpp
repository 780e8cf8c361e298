// Pulled field diffs (SPEC.md, "Pulled field diffs"): the codec of a diffed pulled record,
// the request's "diffs", and merge_diff as the exact inverse of RFC 7396's merge patch.
#include <fieldsync/protocol/merge_patch.hpp>
#include <fieldsync/protocol/messages.hpp>

#include <catch2/catch.hpp>

#include <random>

namespace fp = fieldsync::protocol;
using fp::json;

TEST_CASE("a diffed pulled record carries base and diff instead of data", "[protocol][diffs]") {
    const fp::pulled_change p{"members", "m1", "ap-3", 4, false, json{{"role", "phó bí thư"}, {"notes", nullptr}}, 2};
    const auto j = fp::encode(p);
    CHECK_FALSE(j.contains("data"));
    CHECK(j.at("base") == 2);
    CHECK(j.at("diff") == p.data);
    const auto back = fp::decode_pulled_change(j);
    REQUIRE(back);
    CHECK(back->diff_base == 2);
    CHECK(back->data == p.data);

    const std::vector<std::pair<std::string, json>> broken_members = {
        {"base", 4}, {"base", 0}, {"base", "2"}, {"diff", json::array()}, {"deleted", true}};
    for (const auto& [key, value] : broken_members) {
        auto broken = j;
        broken[key] = value;
        INFO(broken.dump());
        CHECK_FALSE(fp::decode_pulled_change(broken));
    }
    auto no_base = j;
    no_base.erase("base");
    CHECK_FALSE(fp::decode_pulled_change(no_base));
}

TEST_CASE("a change-set asks for diffs with a boolean", "[protocol][diffs]") {
    CHECK_FALSE(fp::decode_change_set(json{{"cursor", "3"}})->diffs);
    CHECK(fp::decode_change_set(json{{"cursor", "3"}, {"diffs", true}})->diffs);
    CHECK_FALSE(fp::decode_change_set(json{{"cursor", "3"}, {"diffs", nullptr}})->diffs);
    const auto bad = fp::decode_change_set(json{{"cursor", "3"}, {"diffs", 1}});
    REQUIRE_FALSE(bad);
    CHECK(bad.err().code == fp::errc::bad_request);
}

TEST_CASE("merge_diff then merge_patch gives back the target record", "[protocol][diffs]") {
    std::mt19937_64 rng(20141126);
    const std::vector<json> values = {"Nguyễn", "Nguye\xCC\x82\xCC\x83n", 1, 2.5, true, json::array({"a", "ồ"}),
                                      json::object({{"x", 1}}), json::object({{"x", 2}, {"y", "ộ"}}), json::object()};
    auto random_record = [&] {
        json r = json::object();
        for (const char* k : {"name", "cell", "role", "notes", "extra"})
            if (rng() % 3 != 0) r[k] = values[rng() % values.size()];
        return r;
    };
    for (int i = 0; i < 2000; ++i) {
        const auto from = random_record();
        const auto to = random_record();
        auto rebuilt = from;
        rebuilt.merge_patch(fp::merge_diff(from, to));
        INFO(from.dump() << " -> " << to.dump());
        REQUIRE(rebuilt == to);
    }
    CHECK(fp::contains_null(json{{"a", {{"b", nullptr}}}}));
    CHECK_FALSE(fp::contains_null(json{{"a", {{"b", 1}}}}));
}
