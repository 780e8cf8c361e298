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
                                               bool diffs, std::int64_t page = 0) {
    client::replica_options o;
    o.path = dir.file(name + ".db");
    o.pull_diffs = diffs;
    o.tuning.pull_page_limit = page;
    auto r = client::replica::open(std::move(o));
    REQUIRE(r);
    ok((*r)->configure(server.url(), server.add_device("Máy " + name)));
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
    auto behind = replica_diffs(server, dir, "behind", true, 2);

    const auto r = ok(writer->put("members", long_member(1), {.id = "", .unit_id = "ap-3"})).id;
    ok(writer->sync());
    ok(behind->sync());  // holds r at version 1

    // The writer adds records, so `behind` has pages to go through; `behind` edits r and stops
    // right after its push is answered: it holds r at version 2 (its own), its cursor is
    // still before version 2.
    std::vector<std::string> others;
    for (std::size_t i = 0; i < 6; ++i) others.push_back(ok(writer->put("members", long_member(i + 10), {.id = "", .unit_id = "ap-3"})).id);
    ok(writer->sync());
    ok(behind->patch("members", r, {{"role", "phó bí thư"}}));
    client::replica_test_access::set_after_commit(*behind, [](std::int64_t n) { return n < 2; });
    const auto stopped = behind->sync();
    REQUIRE_FALSE(stopped);
    CHECK(stopped.err().code == errc::cancelled);
    client::replica_test_access::set_after_commit(*behind, nullptr);
    CHECK(ok(behind->get("members", r))->version == 2);

    // Another device edits r: the server diffs version 3 against version 1 (what the cursor
    // says `behind` holds); `behind` holds version 2, so it must not apply that diff.
    ok(writer->sync());
    ok(writer->patch("members", r, {{"joined", "2014-02-03"}}));
    ok(writer->sync());
    const auto report = ok(behind->sync());
    CHECK(report.refetched_pages == 1);
    others.push_back(r);
    require_heads(server, *behind, others);
    const auto head = ok(behind->get("members", r));
    CHECK(head->data.at("role") == "phó bí thư");
    CHECK(head->data.at("joined") == "2014-02-03");
}
