// The replica's local side: edits, reads, queries, durability across reopen, the outbox.

#include "helpers.hpp"
#include "replica_internal.hpp"

#include <regex>
#include <set>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::sync_state;

TEST_CASE("ids are time-ordered UUIDv7 strings", "[client][ids]") {
    const std::regex shape("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    std::string prev;
    std::set<std::string> seen;
    for (int i = 0; i < 5000; ++i) {
        auto id = client::make_uuid_v7();
        REQUIRE(std::regex_match(id, shape));
        REQUIRE(id > prev);  // strictly increasing, also within one millisecond
        REQUIRE(seen.insert(id).second);
        prev = id;
    }
}

TEST_CASE("put, get, patch and remove are local and durable across reopen", "[client][local]") {
    temp_dir dir;
    const auto path = dir.file("replica.db");
    std::string id;
    const auto m = member(4);
    {
        auto r = open_replica(path);
        auto rec = ok(r->put("members", m, {.id = "", .unit_id = "ap-3"}));
        id = rec.id;
        CHECK(rec.state == sync_state::pending);
        CHECK(rec.version == 0);
        auto p = ok(r->patch("members", id, {{"role", "bí thư chi bộ"}, {"joined", "2001-05-19"}}));
        CHECK(p.data["role"] == "bí thư chi bộ");
        CHECK(p.data["name"] == m["name"]);
        CHECK(ok(r->pending_count()) == 1);  // a new record edited twice is one change
    }
    auto r = open_replica(path);
    auto got = ok(r->get("members", id));
    REQUIRE(got);
    CHECK(got->data["name"] == m["name"]);  // byte for byte, diacritics included
    CHECK(got->data["name"].get<std::string>() == m["name"].get<std::string>());
    CHECK(got->data["role"] == "bí thư chi bộ");
    CHECK(got->unit_id == "ap-3");
    CHECK(got->state == sync_state::pending);

    // Created and deleted before any sync: nothing is left to send.
    ok(r->remove("members", id));
    CHECK(ok(r->pending_count()) == 0);
    CHECK_FALSE(ok(r->get("members", id)));
}

TEST_CASE("invalid input is refused with the right error and changes nothing", "[client][local]") {
    temp_dir dir;
    auto r = open_replica(dir.file("r.db"));
    auto code = [](const auto& res) { return res ? errc::ok : static_cast<errc>(res.err().code.value()); };

    CHECK(code(r->put("members", member(1), {.id = "", .unit_id = ""})) == errc::invalid_argument);
    CHECK(code(r->put("members", member(1), {.id = "có dấu", .unit_id = "u"})) == errc::invalid_argument);
    CHECK(code(r->put("members", json::array(), {.id = "", .unit_id = "u"})) == errc::invalid_argument);
    CHECK(code(r->put("members", {{"cell", "Chi bộ ấp 1"}}, {.id = "", .unit_id = "u"})) == errc::schema_violation);
    CHECK(code(r->put("no_such_collection", {{"a", 1}}, {.id = "", .unit_id = "u"})) == errc::schema_violation);
    CHECK(code(r->put("members", {{"name", std::string("bad \xC3\x28 utf8")}, {"cell", "c"}}, {.id = "", .unit_id = "u"})) ==
          errc::invalid_utf8);
    CHECK(code(r->patch("members", "missing", {{"role", "x"}})) == errc::not_found);
    CHECK(code(r->remove("members", "missing")) == errc::not_found);
    CHECK(ok(r->pending_count()) == 0);
    auto err = r->sync();
    REQUIRE_FALSE(err);
    // The embedded build has no transport at all, which it reports first.
    CHECK(err.err().code ==
          client::make_error_code(client::has_http_transport() ? errc::not_configured : errc::unsupported));
    CHECK(std::string(err.err().code.category().name()) == "fieldsync.client");
}

TEST_CASE("list filters by unit and by a field value, Vietnamese text included", "[client][local][query]") {
    temp_dir dir;
    auto r = open_replica(dir.file("r.db"));
    const auto& d = giong_trom();
    for (std::size_t i = 0; i < 30; ++i) {
        auto m = member(i, d["office_cells"][i % 3].get<std::string>());
        m["joined"] = "2010-01-0" + std::to_string(1 + i % 9);
        ok(r->put("members", m, {.id = "m" + std::to_string(100 + i), .unit_id = i % 2 ? "xa-binh-hoa" : "xa-chau-binh"}));
    }
    CHECK(ok(r->list({.collection = "members"})).size() == 30);
    CHECK(ok(r->list({.collection = "members", .unit_id = "xa-binh-hoa"})).size() == 15);
    const auto cell = d["office_cells"][1].get<std::string>();  // "Chi bộ Tòa án huyện"
    auto by_cell = ok(r->list({.collection = "members", .field = "cell", .value = cell}));
    CHECK(by_cell.size() == 10);
    for (const auto& rec : by_cell) CHECK(rec.data["cell"] == cell);
    auto both = ok(r->list({.collection = "members", .unit_id = "xa-binh-hoa", .field = "/cell", .value = cell}));
    CHECK(both.size() == 5);
    CHECK(ok(r->list({.collection = "members", .limit = 7})).size() == 7);
    CHECK(ok(r->list({.collection = "registrations"})).empty());

    ok(r->remove("members", "m100"));
    CHECK(ok(r->list({.collection = "members"})).size() == 29);  // m100 never synced: gone
}

TEST_CASE("a newer file format is refused, not damaged", "[client][local][store]") {
    temp_dir dir;
    const auto path = dir.file("r.db");
    { auto r = open_replica(path); }
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    client::replica_options o;
    o.path = path;
    auto r = client::replica::open(o);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == client::make_error_code(errc::storage));
}

TEST_CASE("put_many stores all items in one transaction, or none", "[client][local]") {
    temp_dir dir;
    auto r = open_replica(dir.file("r.db"));
    std::vector<client::replica::put_item> items;
    for (std::size_t i = 0; i < 50; ++i) items.push_back({"members", member(i), {.id = "", .unit_id = "xa-luong-phu"}});
    auto stored = ok(r->put_many(items));
    REQUIRE(stored.size() == 50);
    CHECK(ok(r->pending_count()) == 50);
    CHECK(ok(r->get("members", stored[7].id))->data == member(7));

    items.clear();
    items.push_back({"members", member(60), {.id = "ok-1", .unit_id = "u"}});
    items.push_back({"members", member(61), {.id = "ok-2", .unit_id = "u"}});
    items.push_back({"members", {{"cell", "Chi bộ ấp 9"}}, {.id = "bad", .unit_id = "u"}});
    auto failed = r->put_many(items);
    REQUIRE_FALSE(failed);
    CHECK(failed.err().code == client::make_error_code(errc::schema_violation));
    CHECK(failed.err().message.rfind("item 2:", 0) == 0);
    CHECK_FALSE(ok(r->get("members", "ok-1")));
    CHECK(ok(r->pending_count()) == 50);
}

TEST_CASE("a field query finds text typed precomposed (NFC) or decomposed (NFD) alike", "[client][local][query][nfd]") {
    temp_dir dir;
    auto r = open_replica(dir.file("r.db"));
    const std::string nfc = "Nguy\xE1\xBB\x85n Th\xE1\xBB\x8B H\xE1\xBB\x93ng";            // Nguyễn Thị Hồng, precomposed
    const std::string nfd = "Nguye\xCC\x82\xCC\x83n Thi\xCC\xA3 Ho\xCC\x82\xCC\x80ng";   // the same, decomposed
    const std::string nfd_odd = "Nguye\xCC\x83\xCC\x82n Thi\xCC\xA3 Ho\xCC\x80\xCC\x82ng";  // marks out of order
    REQUIRE(nfc != nfd);
    ok(r->put("members", {{"name", nfc}, {"cell", "Chi bộ ấp 1"}}, {.id = "a", .unit_id = "u"}));
    ok(r->put("members", {{"name", nfd}, {"cell", "Chi bộ ấp 1"}}, {.id = "b", .unit_id = "u"}));
    ok(r->put("members", {{"name", "Nguyễn Thị Hương"}, {"cell", "Chi bộ ấp 1"}}, {.id = "c", .unit_id = "u"}));
    for (const auto& probe : {nfc, nfd}) {
        auto found = ok(r->list({.collection = "members", .field = "name", .value = probe}));
        REQUIRE(found.size() == 2);
        CHECK(found[0].data["name"] == nfc);  // stored bytes are kept as typed
        CHECK(found[1].data["name"] == nfd);
    }
    // Non-canonical mark order (o + grave + circumflex) is a different letter: not matched.
    CHECK(ok(r->list({.collection = "members", .field = "name", .value = nfd_odd})).empty());
    // Dot below (class 220) before or after the circumflex (230) is the same letter ộ.
    ok(r->put("members", {{"name", "C\xC3\xB4\xCC\xA3ng"}, {"cell", "x"}}, {.id = "d", .unit_id = "u"}));  // ô + dot below
    CHECK(ok(r->list({.collection = "members", .field = "name", .value = "C\xE1\xBB\x99ng"})).size() == 1);    // ộ
    CHECK(ok(r->list({.collection = "members", .field = "name", .value = "Co\xCC\xA3\xCC\x82ng"})).size() == 1);
}
