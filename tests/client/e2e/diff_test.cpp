// Pulled field diffs through a real server (SPEC.md, "Pulled field diffs"): replicas that hold
// a record get one-field edits of it as merge patches, end with exactly the server's heads, and
// a page with a diff against a version the replica does not hold is asked for again whole.

#include "e2e_support.hpp"
#include "replica_internal.hpp"

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;

namespace {

std::unique_ptr<client::replica> replica_diffs(live_server& server, temp_dir& dir, const std::string& name,
                                               bool diffs, std::int64_t page = 0, std::string token = {}) {
    client::replica_options o;
    o.path = dir.file(name + ".db");
    o.pull_diffs = diffs;
    o.tuning.pull_page_limit = page;
    auto r = client::replica::open(std::move(o));
    REQUIRE(r);
    ok((*r)->configure(server.url(), token.empty() ? server.add_device("Máy " + name) : token));
    return std::move(*r);
}

/// A member with a long note, so a one-field edit is a small part of the record.
json long_member(std::size_t i) {
    auto m = member(i);
    std::string notes;
    for (const auto& c : giong_trom()["concrete_commitments"]) notes += c.get<std::string>() + " ";
    m["notes"] = notes;
    return m;
}

void require_heads(live_server& server, client::replica& r, const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
        auto head = server.store().get("members", id);
        REQUIRE(head);
        REQUIRE(head->has_value());
        const auto local = ok(r.get("members", id));
        REQUIRE(local);
        INFO(id);
        CHECK(local->version == (*head)->version);
        CHECK(local->data == (*head)->data);
        CHECK(local->state == client::sync_state::synced);
    }
}

}  // namespace

TEST_CASE("one-field edits pulled as diffs leave the replica with the server's heads, in fewer bytes",
          "[client][e2e][diffs]") {
    live_server server;
    temp_dir dir;
    auto writer = replica_diffs(server, dir, "writer", true);
    auto with = replica_diffs(server, dir, "with", true);
    auto without = replica_diffs(server, dir, "without", false);

    std::vector<std::string> ids;
    for (std::size_t i = 0; i < 20; ++i) ids.push_back(ok(writer->put("members", long_member(i), {.id = "", .unit_id = "ap-3"})).id);
    ok(writer->sync());
    ok(with->sync());
    ok(without->sync());

    // Edits of every shape a diff must carry: a changed field (NFD text), a removed field, a
    // new field, a nested object, twice in a row (the diff spans two versions).
    const auto nfd_role = std::string("Bi\xCC\x81 thu\xCC\x9B chi bo\xCC\x82\xCC\xA3");
    for (std::size_t i = 0; i < ids.size(); ++i) {
        switch (i % 4) {
            case 0: ok(writer->patch("members", ids[i], {{"role", nfd_role}})); break;
            case 1: ok(writer->patch("members", ids[i], {{"role", nullptr}})); break;
            case 2: ok(writer->patch("members", ids[i], {{"joined", "2014-02-03"}})); break;
            case 3: ok(writer->patch("members", ids[i], {{"extra", {{"a", 1}, {"b", {{"c", "ồ"}}}}}})); break;
        }
    }
    ok(writer->sync());
    ok(writer->patch("members", ids[3], {{"extra", {{"b", {{"c", "ộ"}}}}}}));
    ok(writer->patch("members", ids[0], {{"name", "Nguyễn Văn Một"}}));
    ok(writer->sync());

    const auto a = ok(with->sync());
    const auto b = ok(without->sync());
    CHECK(a.pulled == 20);
    CHECK(b.pulled == 20);
    CHECK(a.refetched_pages == 0);
    require_heads(server, *with, ids);
    require_heads(server, *without, ids);
    // The figures are in ARCHITECTURE.md; here only that diffs are smaller at all.
    CHECK(a.bytes_received * 2 < b.bytes_received);
}

TEST_CASE("a page with a diff against a version the replica does not hold is pulled again whole",
          "[client][e2e][diffs]") {
    live_server server;
    temp_dir dir;
    auto writer = replica_diffs(server, dir, "writer", true);
    // A field device of hamlet 3: it sees the records of unit ap-3 only.
    auto field_token = server.store().add_device("Máy ấp 3", "ap-3", srv::device_role::field);
    REQUIRE(field_token);
    auto hamlet = replica_diffs(server, dir, "hamlet", true, 0, field_token->second);

    // (`elsewhere` first, so its version 1 lies before the cursor the hamlet will hold.)
    const auto elsewhere = ok(writer->put("members", long_member(2), {.id = "", .unit_id = "ap-4"})).id;
    const auto here = ok(writer->put("members", long_member(1), {.id = "", .unit_id = "ap-3"})).id;
    ok(writer->sync());
    ok(hamlet->sync());  // caught up: holds `here` at version 1, and nothing of `elsewhere`
    REQUIRE_FALSE(ok(hamlet->get("members", elsewhere)));

    // `elsewhere` moves into hamlet 3 with a one-field edit: the feed's version at the
    // hamlet's cursor is version 1, which the hamlet never held (it was out of its scope), so
    // the diff it is sent cannot be applied; `here` gets a diff it can apply.
    ok(writer->put("members", ok(writer->get("members", elsewhere))->data, {.id = elsewhere, .unit_id = "ap-3"}));
    ok(writer->patch("members", elsewhere, {{"role", "phó bí thư"}}));
    ok(writer->patch("members", here, {{"role", "bí thư"}}));
    ok(writer->sync());
    const auto report = ok(hamlet->sync());
    CHECK(report.refetched_pages == 1);
    CHECK(report.pulled == 2);
    require_heads(server, *hamlet, {here, elsewhere});
    CHECK(ok(hamlet->get("members", elsewhere))->data.at("role") == "phó bí thư");

    // The next one-field edit comes as a diff again and applies.
    ok(writer->patch("members", elsewhere, {{"joined", "2014-02-03"}}));
    ok(writer->sync());
    const auto next = ok(hamlet->sync());
    CHECK(next.refetched_pages == 0);
    require_heads(server, *hamlet, {here, elsewhere});
}

TEST_CASE("a replica paging through more than one page pulls whole, then diffs once caught up",
          "[client][e2e][diffs]") {
    live_server server;
    temp_dir dir;
    auto writer = replica_diffs(server, dir, "writer", true);
    auto reader = replica_diffs(server, dir, "reader", true, 2);
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < 3; ++i) ids.push_back(ok(writer->put("members", long_member(i), {.id = "", .unit_id = "ap-3"})).id);
    ok(writer->sync());
    ok(reader->sync());

    // Seven records created and then edited while the reader is away: their versions 1 lie
    // before cursors the reader will page through, but it never held them (their heads had
    // moved on by then). Diffs against them would not apply; the reader asks for diffs only on
    // the first page, whose cursor it was caught up at, and pulls the rest whole.
    for (std::size_t i = 0; i < 7; ++i) ids.push_back(ok(writer->put("members", long_member(i + 10), {.id = "", .unit_id = "ap-3"})).id);
    ok(writer->sync());
    for (std::size_t i = 3; i < ids.size(); ++i) ok(writer->patch("members", ids[i], {{"role", "bí thư"}}));
    ok(writer->patch("members", ids[0], {{"role", "bí thư"}}));
    ok(writer->sync());
    const auto r = ok(reader->sync());
    CHECK(r.refetched_pages == 0);
    require_heads(server, *reader, ids);
}
