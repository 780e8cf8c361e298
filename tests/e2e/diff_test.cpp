// Pulled field diffs on the wire (SPEC.md, "Pulled field diffs"): which heads travel as diffs,
// against which base, and which stay whole.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::e2e {

namespace {

json long_member(const std::string& name) {
    std::string notes;
    for (const auto& c : giong_trom()["concrete_commitments"]) notes += c.get<std::string>() + " ";
    return {{"name", name}, {"cell", "Chi bộ ấp 3 Bình Hòa"}, {"role", "đảng viên"}, {"notes", notes}};
}

const json& change_of(const json& page, const std::string& id) {
    for (const auto& c : page.at("changes"))
        if (c.at("id") == id) return c;
    FAIL("no change for " << id);
    static const json none;
    return none;
}

}  // namespace

TEST_CASE("a head the device holds an older version of comes as a merge patch against it", "[e2e][diffs]") {
    server_fixture f;
    const auto nfd = to_nfd("Nguyễn Thị Hồng");
    auto m1 = long_member("Trần Văn Ba");
    auto m2 = long_member(nfd);
    f.sync(batch("b1", {put_change("c1", "members", "m1", 0, m1), put_change("c2", "members", "m2", 0, m2)}));
    const auto cursor = f.sync({{"cursor", ""}}).at("cursor").get<std::string>();

    // m1: two edits after the cursor (the diff spans both); m2: a field set to null (no diff
    // can say that); m3: new after the cursor (nothing to diff against).
    f.sync(batch("b2", {patch_change("c3", "members", "m1", 1, {{"role", "bí thư"}})}));
    f.sync(batch("b3", {patch_change("c4", "members", "m1", 2, {{"role", nullptr}, {"joined", "2014-02-03"}})}));
    auto m2_null = m2;
    m2_null["role"] = nullptr;
    f.sync(batch("b4", {put_change("c5", "members", "m2", 1, m2_null)}));
    f.sync(batch("b5", {put_change("c6", "members", "m3", 0, long_member("Lê Văn Sáu"))}));

    const auto page = f.sync({{"cursor", cursor}, {"diffs", true}});
    const auto& c1 = change_of(page, "m1");
    CHECK(c1.at("version") == 3);
    CHECK(c1.at("base") == 1);
    CHECK_FALSE(c1.contains("data"));
    CHECK(c1.at("diff") == json{{"role", nullptr}, {"joined", "2014-02-03"}});
    auto rebuilt = m1;
    rebuilt.merge_patch(c1.at("diff"));
    auto head = f.store().get("members", "m1");
    REQUIRE(head);
    CHECK(rebuilt == (*head)->data);
    CHECK(change_of(page, "m2").at("data") == m2_null);
    CHECK_FALSE(change_of(page, "m2").contains("diff"));
    CHECK(change_of(page, "m3").contains("data"));

    // Without "diffs", from "", or with "diffs": false, every head is whole.
    for (const auto& body : {json{{"cursor", cursor}}, json{{"cursor", ""}, {"diffs", true}},
                             json{{"cursor", cursor}, {"diffs", false}}}) {
        const auto answer = f.sync(body);  // held: a range-for over a temporary's member dangles
        for (const auto& c : answer.at("changes")) {
            CHECK(c.contains("data"));
            CHECK_FALSE(c.contains("diff"));
        }
    }
    // "diffs" must be a boolean.
    const auto bad = f.post_sync({{"cursor", cursor}, {"diffs", "yes"}});
    CHECK(bad.status == 400);
    CHECK(bad.error_code() == "bad_request");
}

TEST_CASE("a deleted head or a deleted base travels whole", "[e2e][diffs]") {
    server_fixture f;
    f.sync(batch("b1", {put_change("c1", "members", "d1", 0, long_member("Võ Thị Bảy")),
                        put_change("c2", "members", "d2", 0, long_member("Phạm Văn Tám"))}));
    f.sync(batch("b2", {delete_change("c3", "members", "d2", 1)}));
    const auto cursor = f.sync({{"cursor", ""}}).at("cursor").get<std::string>();
    f.sync(batch("b3", {delete_change("c4", "members", "d1", 1)}));
    f.sync(batch("b4", {put_change("c5", "members", "d2", 2, long_member("Phạm Văn Tám"))}));
    const auto page = f.sync({{"cursor", cursor}, {"diffs", true}});
    CHECK(change_of(page, "d1").at("deleted") == true);
    CHECK(change_of(page, "d1").at("data").is_null());
    CHECK(change_of(page, "d2").at("data") == long_member("Phạm Văn Tám"));
    for (const auto& c : page.at("changes")) CHECK_FALSE(c.contains("diff"));
}

}  // namespace fieldsync::e2e
