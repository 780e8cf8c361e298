// A central store restored from an older backup (issue 7, "Operations"): replicas notice the
// new incarnation and send again what the restored store lost, so no acknowledged edit is
// lost. The backup and the restore are made by the fieldsync-admin binary, in another process,
// the backup while the server serves.

#include "e2e_support.hpp"

#include <cstdlib>
#include <map>

using namespace fieldsync;
using namespace fieldsync::test;

namespace {

const std::string k_admin = std::string(FIELDSYNC_BINARY_DIR) + "/tools/fieldsync-admin";

// A store file served by a real server that can be stopped and started again on the same file.
class restartable_server {
public:
    explicit restartable_server(std::string db) : db_(std::move(db)) { start(); }
    ~restartable_server() { stop(); }

    void start() {
        srv::store_options so;
        so.path = db_;
        auto st = srv::open_sqlite_store(so);
        INFO((st ? std::string() : st.err().message));
        REQUIRE(st);
        store_ = std::move(*st);
        srv::server_options o;
        o.threads = 2;
        o.port = port_;  // the same port again, so replicas keep their configured URL
        o.log = [](std::string_view) {};
        server_ = std::make_unique<srv::server>(o, *store_);
        auto port = server_->start();
        INFO((port ? std::string() : port.err().message));
        REQUIRE(port);
        port_ = *port;
    }
    void stop() {
        if (server_) server_->stop();
        if (store_) store_->close();
        server_.reset();
        store_.reset();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    srv::store& store() { return *store_; }
    std::string add_device(const std::string& name) {
        auto d = store_->add_device(name, "xa-binh-hoa", srv::device_role::field);
        REQUIRE(d);
        return d->second;
    }

private:
    std::string db_;
    std::uint16_t port_ = 0;
    std::unique_ptr<srv::store> store_;
    std::unique_ptr<srv::server> server_;
};

int run(const std::string& command) {
    INFO(command);
    return std::system(command.c_str());
}

json person(const std::string& name, const std::string& notes) {
    return {{"name", name}, {"cell", "Chi bộ ấp 3"}, {"notes", notes}};
}

// change_id -> history entries carrying it, over every record of `ids`.
std::map<std::string, int> change_ids_in_history(srv::store& st, const std::vector<std::string>& ids) {
    std::map<std::string, int> out;
    for (const auto& id : ids) {
        auto h = st.history("members", id);
        REQUIRE(h);
        for (const auto& e : *h) ++out[e.change_id];
    }
    return out;
}

}  // namespace

// (A and B are all in the store once each, the replica re-snapshots, and a second replica converges.)
TEST_CASE("after a restore from an older backup the replica resends what the store lost", "[client][e2e][restore]") {
    REQUIRE(std::filesystem::exists(k_admin));
    temp_dir dir;
    const auto db = dir.file("central.db");
    const auto backup = dir.file("backup-ngay-1.db");
    restartable_server server(db);
    const auto incarnation_before = server.store().incarnation();
    REQUIRE(incarnation_before.size() == 32);

    auto a = open_replica(dir.file("a.db"));
    ok(a->configure(server.url(), server.add_device("Máy chi bộ ấp 3")));

    // Edits A: two new records and an edit, synced.
    const std::string nfd = "Nguye\u0302\u0303n Thi\u0323 Thu Ha\u0300";  // "Nguyễn Thị Thu Hà", decomposed (NFD)
    const auto m1 = ok(a->put("members", person("Trần Văn Bảy", "vào Đảng năm 2010"), {.id = "", .unit_id = "xa-binh-hoa"})).id;
    const auto m2 = ok(a->put("members", person(nfd, "chuyển sinh hoạt từ xã Bình Hòa"), {.id = "", .unit_id = "xa-binh-hoa"})).id;
    ok(a->sync());
    ok(a->patch("members", m1, {{"role", "chi ủy viên"}}));
    CHECK(ok(a->sync()).applied == 1);

    // The backup, taken by another process while the server serves.
    REQUIRE(run(k_admin + " --db " + db + " backup " + backup) == 0);
    CHECK(run(k_admin + " --db " + db + " backup " + backup + " 2>/dev/null") != 0);  // never overwrites

    // Edits B, acknowledged by the server after the backup: lost by the restore.
    ok(a->patch("members", m1, {{"notes", "được khen thưởng năm 2024"}}));
    ok(a->remove("members", m2));
    const auto m3 = ok(a->put("members", person("Lê Văn Tám", "đảng viên mới"), {.id = "", .unit_id = "xa-binh-hoa"})).id;
    const auto b = ok(a->sync());
    CHECK(b.applied == 3);
    const std::vector<std::string> ids = {m1, m2, m3};
    const auto answered = change_ids_in_history(server.store(), ids);
    CHECK(answered.size() == 6);

    // Another phone adds a member after the backup, A pulls it, and that phone is lost: the
    // restore loses its record for good. A must not keep a copy the store no longer has.
    std::string lost_id;
    {
        auto x = open_replica(dir.file("x.db"));
        ok(x->configure(server.url(), server.add_device("Máy bị mất")));
        lost_id = ok(x->put("members", person("Phạm Thị Mười", "máy đã mất"), {.id = "", .unit_id = "xa-binh-hoa"})).id;
        ok(x->sync());
    }
    ok(a->sync());
    REQUIRE(ok(a->get("members", lost_id)));

    // Server stopped, the backup restored (by the tool), server started on the restored file.
    server.stop();
    REQUIRE(run(k_admin + " restore " + backup + " --db " + db) == 0);
    server.start();
    CHECK(server.store().incarnation() != incarnation_before);
    CHECK(change_ids_in_history(server.store(), ids).size() == 3);  // B is gone
    {
        auto lost = server.store().get("members", m3);
        REQUIRE(lost);
        CHECK_FALSE(lost->has_value());
    }

    // The replica's next sync notices the new incarnation, sends everything again and
    // re-snapshots (what only the lost phone had is dropped).
    const auto again = ok(a->sync());
    CHECK(again.resent == 6);
    CHECK_FALSE(ok(a->get("members", lost_id)));

    // A and B are all there, each change exactly once, at the versions first answered.
    const auto now = change_ids_in_history(server.store(), ids);
    CHECK(now == answered);
    for (const auto& [cid, n] : now) CHECK(n == 1);
    auto h1 = server.store().get("members", m1);
    REQUIRE(h1);
    REQUIRE(h1->has_value());
    CHECK((*h1)->version == 3);
    CHECK((*h1)->data["role"] == "chi ủy viên");
    CHECK((*h1)->data["notes"] == "được khen thưởng năm 2024");
    auto h2 = server.store().get("members", m2);
    REQUIRE(h2);
    REQUIRE(h2->has_value());
    CHECK((*h2)->deleted);
    auto h3 = server.store().get("members", m3);
    REQUIRE(h3);
    REQUIRE(h3->has_value());
    CHECK((*h3)->data["name"] == "Lê Văn Tám");

    // The replica itself converged on the restored store, and a second replica does too.
    require_converged(server.store(), *a, {"members"});
    auto c = open_replica(dir.file("c.db"));
    ok(c->configure(server.url(), server.add_device("Máy huyện ủy")));
    ok(c->sync());
    require_converged(server.store(), *c, {"members"});
    CHECK(ok(c->get("members", m2))->deleted);
    CHECK(ok(c->get("members", m2))->version == 2);
    CHECK(ok(c->get("members", m1))->data["name"] == "Trần Văn Bảy");
    auto named = ok(c->list({.collection = "members"}));
    CHECK(named.size() == 2);

    // Syncing again sends nothing more and changes nothing.
    const auto quiet = ok(a->sync());
    CHECK(quiet.resent == 0);
    CHECK(quiet.pushed == 0);
    CHECK(change_ids_in_history(server.store(), ids) == answered);
}
