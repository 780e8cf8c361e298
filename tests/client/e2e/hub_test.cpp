// Three tiers (issue 8, relay hub): a district server, a commune hub (fieldsync-server with an
// upstream: relay_hub.hpp) and field replicas of the commune's hamlet, all real: servers on
// ephemeral loopback ports, SQLite files in a temp dir, the fault proxy between hub and
// district to cut and spoil the link (seeded). ARCHITECTURE.md, "Relay hub", has the design.

#include "e2e_support.hpp"

#include "proxy/fault_proxy.hpp"
#include "relay_hub.hpp"
#include "test_certs.hpp"

#include <fieldsync/server/server.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

namespace fieldsync::test {
namespace {

namespace srv = fieldsync::server;
namespace proto = fieldsync::protocol;
using namespace std::chrono_literals;

// Waits (polling) for `pred`; a generous bound so a loaded CI machine does not fail the test,
// which asserts only on the outcome, never on the time taken.
template <class Pred>
bool eventually(Pred pred, std::chrono::seconds bound = 90s) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

std::uint64_t test_seed() {
    if (const char* s = std::getenv("FIELDSYNC_HUB_SEED")) return std::strtoull(s, nullptr, 10);
    return std::random_device{}() | 1u;
}

// One server (store + HTTP) on a temp file; reopened on the same file by restart().
class tier {
public:
    /// `tls`: serve HTTPS with this certificate and key (a district reached over the network).
    tier(const std::string& path, bool relay, std::optional<pem_files> tls = std::nullopt)
        : path_(path), relay_(relay), tls_(std::move(tls)) {
        open();
    }
    ~tier() { close(); }
    void open() {
        srv::store_options so;
        so.path = path_;
        so.relay = relay_;
        auto st = srv::open_sqlite_store(so);
        INFO((st ? std::string() : st.err().message));
        REQUIRE(st);
        store_ = std::move(*st);
        srv::server_options o;
        o.host = "127.0.0.1";
        o.port = port_;  // a restarted hub keeps its address, as the devices know it
        o.threads = 2;
        if (tls_) {
            o.tls_cert_file = tls_->cert;
            o.tls_key_file = tls_->key;
        }
        server_ = std::make_unique<srv::server>(o, *store_);
        auto port = server_->start();
        REQUIRE(port);
        port_ = *port;
    }
    void close() {
        if (server_) server_->stop();
        if (store_) store_->close();
        server_.reset();
        store_.reset();
    }
    srv::store& store() { return *store_; }
    std::uint16_t port() const { return port_; }
    std::string url() const { return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_); }

private:
    std::string path_;
    bool relay_;
    std::optional<pem_files> tls_;
    std::unique_ptr<srv::store> store_;
    std::unique_ptr<srv::server> server_;
    std::uint16_t port_ = 0;
};

// District "Giồng Trôm" > commune "Bình Hòa" > hamlet cells "ấp 3" and "ấp 5"; another commune
// "Châu Hòa" that the hub does not serve.
void load_tree(srv::store& st) {
    const std::vector<srv::unit> units = {
        {"giong-trom", "", "Huyện Giồng Trôm", "district", ""},
        {"binh-hoa", "giong-trom", "Xã Bình Hòa", "commune", ""},
        {"ap-3", "binh-hoa", "Chi bộ ấp 3", "cell", ""},
        {"ap-5", "binh-hoa", "Chi bộ ấp 5", "cell", ""},
        {"chau-hoa", "giong-trom", "Xã Châu Hòa", "commune", ""},
    };
    for (const auto& u : units) REQUIRE(st.put_unit(u));
}

// The three tiers. The hub's link to the district goes through a fault proxy that cut()
// removes and mend() puts back on the same port, with or without faults.
struct three_tiers {
    temp_dir dir;
    std::unique_ptr<tier> district;
    std::unique_ptr<tier> hub_tier;
    std::unique_ptr<tools::fault_proxy> link;
    std::uint16_t link_port = 0;
    std::string hub_token;       // the hub's device at the district (field, Bình Hòa)
    srv::device hub_device;
    srv::device reviewer;        // the district's reviewer
    std::unique_ptr<srv::relay_hub> hub;

    three_tiers() {
        district = std::make_unique<tier>(dir.file("district.db"), false);
        load_tree(district->store());
        auto h = district->store().add_device("Máy chủ xã Bình Hòa", "binh-hoa", srv::device_role::field);
        REQUIRE(h);
        hub_device = h->first;
        hub_token = h->second;
        auto r = district->store().add_device("Ban Tổ chức huyện", "giong-trom", srv::device_role::reviewer);
        REQUIRE(r);
        reviewer = r->first;
        mend({});
        hub_tier = std::make_unique<tier>(dir.file("hub.db"), true);
        load_tree(hub_tier->store());
        start_hub();
    }
    ~three_tiers() {
        if (hub) hub->stop();
        hub.reset();
        hub_tier.reset();
        if (link) link->stop();
    }

    void start_hub() {
        srv::hub_options o;
        o.upstream_url = "http://127.0.0.1:" + std::to_string(link_port);
        o.upstream_token = hub_token;
        o.replica_path = dir.file("hub.db.upstream");
        o.poll_interval = 20ms;
        o.pull_interval = 100ms;
        o.retry_interval = 20ms;
        o.retry_cap = 200ms;
        auto h = srv::relay_hub::open(o, hub_tier->store());
        INFO((h ? std::string() : h.err().message));
        REQUIRE(h);
        hub = std::move(*h);
        hub->start();
    }
    // The hub process dies and comes back on the same files and port.
    void restart_hub() {
        hub->stop();
        hub.reset();
        hub_tier->close();
        hub_tier->open();
        start_hub();
    }

    void cut() {
        if (link) link->stop();
        link.reset();
    }
    void mend(tools::fault_options faults) {
        cut();
        faults.listen_port = link_port;
        faults.target_port = district->port();
        link = std::make_unique<tools::fault_proxy>(faults);
        link->start();
        link_port = link->port();
    }

    // A field device of the hub (a hamlet phone) with its replica.
    std::unique_ptr<client::replica> hamlet_device(const std::string& name, const std::string& unit = "ap-3") {
        auto d = hub_tier->store().add_device("Điện thoại " + name, unit, srv::device_role::field);
        REQUIRE(d);
        auto r = open_replica(dir.file(name + ".db"));
        ok(r->configure(hub_tier->url(), d->second));
        return r;
    }
    // A device of the district office, syncing with the district directly.
    std::unique_ptr<client::replica> district_device(const std::string& name) {
        auto d = district->store().add_device("Văn phòng " + name, "giong-trom", srv::device_role::field);
        REQUIRE(d);
        auto r = open_replica(dir.file(name + ".db"));
        ok(r->configure(district->url(), d->second));
        return r;
    }

    bool backlog_empty() {
        auto b = hub_tier->store().relay_backlog();
        return b && *b == 0;
    }
    std::int64_t hub_version(const std::string& c, const std::string& id) {
        auto h = hub_tier->store().get(c, id);
        return h && *h ? (*h)->version : 0;
    }
    std::int64_t district_version(const std::string& c, const std::string& id) {
        auto h = district->store().get(c, id);
        return h && *h ? (*h)->version : 0;
    }
    // The hub holds every record of the district's Bình Hòa subtree at the district's version.
    bool hub_mirrors_district() {
        auto page = district->store().pull(srv::scope{false, "/giong-trom/binh-hoa/"}, 0, 100000);
        REQUIRE(page);
        for (const auto& p : page->changes) {
            auto h = hub_tier->store().get(p.collection, p.id);
            REQUIRE(h);
            if (!*h || (*h)->version != p.version || (*h)->deleted != p.deleted) return false;
            if (!p.deleted && (*h)->data != p.data) return false;
        }
        return true;
    }
};

TEST_CASE("hub: edits made offline at a hamlet reach the district, and district edits reach the hamlet",
          "[hub][e2e]") {
    three_tiers t;
    auto an = t.hamlet_device("an");
    auto binh = t.hamlet_device("binh");

    // Offline at ấp 3: three members created (NFC and NFD spellings), one edited twice.
    const std::string nfd_name = "Nguye\xcc\x82\xcc\x83n Thi\xcc\xa3 Ly\xcc\x81";  // Nguyễn Thị Lý, decomposed
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto m = member(static_cast<std::size_t>(i));
        if (i == 2) m["name"] = nfd_name;
        ids.push_back(ok(an->put("members", m, {.unit_id = "ap-3"})).id);
    }
    ok(an->patch("members", ids[0], {{"notes", "Đã đăng ký học tập và làm theo tấm gương đạo đức Hồ Chí Minh"}}));
    ok(an->patch("members", ids[0], {{"role", "bí thư chi bộ"}}));

    // The hub takes the changes and answers `queued`: nothing final yet, still pending.
    auto first = ok(an->sync());
    CHECK(first.queued == 3);
    CHECK(first.applied == 0);
    CHECK(ok(an->pending_count()) == 3);

    // The hub forwards them; the district applies each once, written by the hub's device
    // with the change_id the phone made.
    REQUIRE(eventually([&] { return t.backlog_empty(); }));
    for (const auto& id : ids) {
        auto h = t.district->store().history("members", id);
        REQUIRE(h);
        REQUIRE(h->size() == 1);
        CHECK((*h)[0].device_id == t.hub_device.id);
    }
    auto stored = t.district->store().get("members", ids[2]);
    REQUIRE(stored);
    REQUIRE(*stored);
    CHECK((*stored)->data["name"] == nfd_name);  // byte for byte: NFD stays NFD
    CHECK((*stored)->data["role"] == "đảng viên");
    CHECK(t.district->store().get("members", ids[0]).value()->data["role"] == "bí thư chi bộ");

    // The phone's next sync gets the district's answers and versions.
    auto second = ok(an->sync());
    CHECK(second.applied == 3);
    CHECK(ok(an->pending_count()) == 0);
    for (const auto& id : ids) {
        auto rec = ok(an->get("members", id));
        REQUIRE(rec);
        CHECK(rec->state == client::sync_state::synced);
        CHECK(rec->version == t.district_version("members", id));
    }

    // The district edits one; the hub pulls it and both phones of the hamlet get it, at the
    // district's version.
    auto office = t.district_device("huyen");
    ok(office->sync());
    ok(office->patch("members", ids[1], {{"notes", "Huyện ủy đã kiểm tra: cam kết cụ thể, rõ ràng"}}));
    ok(office->sync());
    REQUIRE(t.district_version("members", ids[1]) == 2);
    REQUIRE(eventually([&] { return t.hub_version("members", ids[1]) == 2; }));
    ok(an->sync());
    ok(binh->sync());
    for (auto* r : {an.get(), binh.get()}) {
        auto rec = ok(r->get("members", ids[1]));
        REQUIRE(rec);
        CHECK(rec->version == 2);
        CHECK(rec->data["notes"] == "Huyện ủy đã kiểm tra: cam kết cụ thể, rõ ràng");
    }
    CHECK(ok(binh->get("members", ids[2]))->data["name"] == nfd_name);

    // A version means the same record at both tiers: an edit from version 2 made at the
    // hamlet fast-forwards at the district to 3.
    ok(binh->patch("members", ids[1], {{"joined", "1998-05-19"}}));
    CHECK(ok(binh->sync()).queued == 1);
    REQUIRE(eventually([&] { return t.backlog_empty(); }));
    auto third = ok(binh->sync());
    CHECK(third.applied == 1);
    CHECK(t.district_version("members", ids[1]) == 3);
    auto rec = t.district->store().get("members", ids[1]).value();
    CHECK(rec->data["notes"] == "Huyện ủy đã kiểm tra: cam kết cụ thể, rõ ràng");
    CHECK(rec->data["joined"] == "1998-05-19");
    REQUIRE(eventually([&] { return t.hub_mirrors_district(); }));
    ok(an->sync());
    CHECK(ok(an->get("members", ids[1]))->version == 3);

    // The hub decided nothing itself: no version of its own, no conflict.
    CHECK(t.hub_tier->store().conflicts("", 100, 0)->empty());
    for (const auto& id : ids) {
        auto h = t.hub_tier->store().history("members", id);
        REQUIRE(h);
        for (const auto& v : *h) CHECK(v.how == "mirrored");
    }
}

TEST_CASE("hub: a conflict between a hamlet and the district is reviewed once, at the district, and resolved "
          "everywhere",
          "[hub][e2e]") {
    three_tiers t;
    auto an = t.hamlet_device("an");
    auto binh = t.hamlet_device("binh");
    auto office = t.district_device("huyen");

    const auto id = ok(an->put("members", member(4), {.unit_id = "ap-3"})).id;
    ok(an->sync());
    REQUIRE(eventually([&] { return t.backlog_empty(); }));
    ok(an->sync());
    ok(binh->sync());
    ok(office->sync());
    REQUIRE(ok(office->get("members", id)));

    // Both sides change the same field from version 1: the district first.
    ok(office->patch("members", id, {{"notes", "Huyện: chuyển sinh hoạt về chi bộ ấp 5"}}));
    ok(office->sync());
    ok(an->patch("members", id, {{"notes", "Ấp 3: đã hoàn thành nhiệm vụ năm 2014"}}));
    CHECK(ok(an->sync()).queued == 1);
    REQUIRE(eventually([&] { return t.backlog_empty(); }));

    // One conflict, at the district, holding the phone's change; none at the hub.
    auto open = t.district->store().conflicts("open", 100, 0);
    REQUIRE(open);
    REQUIRE(open->size() == 1);
    const auto conflict = open->front();
    CHECK(conflict.record_id == id);
    CHECK(conflict.device_id == t.hub_device.id);
    CHECK(conflict.incoming["notes"] == "Ấp 3: đã hoàn thành nhiệm vụ năm 2014");
    CHECK(t.hub_tier->store().conflicts("", 100, 0)->empty());

    // The phone learns it is held for review (the district's conflict id); syncing again,
    // and the hub forwarding again after a restart, do not open a second one.
    auto answered = ok(an->sync());
    CHECK(answered.conflicts == 1);
    auto held = ok(an->get("members", id));
    REQUIRE(held);
    CHECK(held->state == client::sync_state::conflict);
    CHECK(held->conflict_id == conflict.id);
    ok(an->sync());
    t.restart_hub();
    ok(an->sync());
    REQUIRE(eventually([&] { return t.hub->status().rounds >= 2; }));
    CHECK(t.district->store().conflicts("", 100, 0)->size() == 1);

    // The district's reviewer takes the hamlet's text; the resolution flows down through the
    // hub to both phones of the hamlet.
    srv::resolution res;
    res.how = srv::resolution::choice::take_incoming;
    res.head_version = conflict.head_version;
    res.note = "Giữ ý kiến của chi bộ ấp 3";
    auto closed = t.district->store().resolve(t.reviewer, conflict.id, res);
    INFO((closed ? std::string() : closed.err().message));
    REQUIRE(closed);
    const auto resolved_version = t.district_version("members", id);
    REQUIRE(resolved_version == 3);
    REQUIRE(eventually([&] { return t.hub_version("members", id) == resolved_version; }));
    ok(an->sync());
    ok(binh->sync());
    ok(office->sync());
    for (auto* r : {an.get(), binh.get(), office.get()}) {
        auto rec = ok(r->get("members", id));
        REQUIRE(rec);
        CHECK(rec->state == client::sync_state::synced);
        CHECK(rec->version == resolved_version);
        CHECK(rec->data["notes"] == "Ấp 3: đã hoàn thành nhiệm vụ năm 2014");
    }
    CHECK(t.district->store().conflicts("open", 100, 0)->empty());
}

TEST_CASE("hub: a hub cut off for a while queues, then catches up without loss or duplicates", "[hub][e2e][cut]") {
    const auto seed = test_seed();
    INFO("seed " << seed << " (FIELDSYNC_HUB_SEED=" << seed << " replays the edits and the link faults)");
    std::mt19937_64 rng(seed);
    three_tiers t;
    auto an = t.hamlet_device("an");
    auto chi = t.hamlet_device("chi", "ap-5");
    auto office = t.district_device("huyen");

    // The link goes down. The phones go on working and syncing with the hub.
    t.cut();
    std::vector<std::pair<client::replica*, std::string>> records;
    const int creates = 40;
    for (int i = 0; i < creates; ++i) {
        auto* r = (i % 2 == 0) ? an.get() : chi.get();
        auto m = member(static_cast<std::size_t>(i), i % 2 == 0 ? "Chi bộ ấp 3" : "Chi bộ ấp 5");
        records.emplace_back(r, ok(r->put("members", m, {.unit_id = i % 2 == 0 ? "ap-3" : "ap-5"})).id);
        if (rng() % 3 == 0) ok(r->sync());
    }
    int edits = 0;
    for (int round = 0; round < 4; ++round) {
        for (auto& [r, id] : records) {
            if (rng() % 4 != 0) continue;
            ok(r->patch("members", id, {{"notes", "Lần sửa " + std::to_string(round) + ": họp tổ Đảng ở ấp, bàn việc"}}));
            ++edits;
        }
        ok(an->sync());
        ok(chi->sync());
    }
    // The district works meanwhile on records of its own in the commune.
    std::vector<std::string> district_ids;
    for (int i = 0; i < 5; ++i)
        district_ids.push_back(ok(office->put("members", member(100 + i, "Chi bộ ấp 5"), {.unit_id = "ap-5"})).id);
    ok(office->sync());

    // Nothing reached the district; everything waits at the hub, once.
    CHECK(t.district->store().pull(0, 10000)->changes.size() == district_ids.size());
    REQUIRE(eventually([&] { return t.hub->status().failed_rounds > 0; }));
    CHECK_FALSE(t.hub->status().link_up);
    const auto backlog = *t.hub_tier->store().relay_backlog();
    CHECK(backlog >= creates);
    CHECK(ok(an->pending_count()) + ok(chi->pending_count()) > 0);

    // The link comes back, bad at first: connections reset after a few KiB and answers cut
    // short, so forwarding stops mid-way again and again. Then it heals.
    tools::fault_options bad;
    bad.seed = seed;
    bad.reset_after_bytes = 3000 + rng() % 6000;
    bad.truncate_probability = 0.4;
    bad.truncate_within = 2000;
    t.mend(bad);
    std::this_thread::sleep_for(1s);  // let the hub try its luck on the bad link
    t.mend({});
    REQUIRE(eventually([&] { return t.backlog_empty(); }));
    REQUIRE(eventually([&] { return t.hub_mirrors_district(); }));

    // The phones settle: every change answered, nothing pending. An edit made on top of a
    // queued create leaves the phone once the create's answer has given it its base, so it
    // takes a few syncs (and the hub's rounds between them).
    REQUIRE(eventually([&] {
        ok(an->sync());
        ok(chi->sync());
        return ok(an->pending_count()) == 0 && ok(chi->pending_count()) == 0;
    }));

    // No loss: each record at the district holds the phone's last content; no duplicates:
    // each change once in history, so the version is 1 + the edits the record had.
    std::set<std::string> change_ids;
    for (auto& [r, id] : records) {
        auto local = ok(r->get("members", id));
        REQUIRE(local);
        auto head = t.district->store().get("members", id);
        REQUIRE(head);
        REQUIRE(*head);
        INFO("record " << id);
        CHECK((*head)->data == local->data);
        CHECK(local->version == (*head)->version);
        CHECK(local->state == client::sync_state::synced);
        auto h = t.district->store().history("members", id);
        REQUIRE(h);
        for (const auto& v : *h) {
            CHECK(v.device_id == t.hub_device.id);
            CHECK(change_ids.insert(v.change_id).second);  // never twice
        }
        CHECK(static_cast<std::int64_t>(h->size()) == (*head)->version);
    }
    // The phones' edits of one record between two syncs travel as one change, so the count of
    // versions is at most creates + edits.
    CHECK(change_ids.size() >= static_cast<std::size_t>(creates));
    CHECK(change_ids.size() <= static_cast<std::size_t>(creates + edits));
    CHECK(t.district->store().conflicts("", 100, 0)->empty());

    // The district's own records reached both phones of the commune that see them.
    ok(chi->sync());
    for (const auto& id : district_ids) CHECK(ok(chi->get("members", id)));
    CHECK_FALSE(ok(an->get("members", district_ids[0])));  // ấp 5 is not in ấp 3's scope
}

TEST_CASE("hub: a hub restarted in the middle of forwarding loses nothing and applies nothing twice",
          "[hub][e2e][restart]") {
    const auto seed = test_seed();
    INFO("seed " << seed);
    three_tiers t;
    auto an = t.hamlet_device("an");

    t.cut();
    std::vector<std::string> ids;
    for (int i = 0; i < 30; ++i)
        ids.push_back(ok(an->put("members", member(static_cast<std::size_t>(200 + i)), {.unit_id = "ap-3"})).id);
    CHECK(ok(an->sync()).queued == 30);
    REQUIRE(eventually([&] { return t.hub->status().failed_rounds > 0; }));

    // Every answer from the district is cut short: the district applies the hub's change-set,
    // the hub never learns it. Then the hub dies and comes back on the same files.
    tools::fault_options lossy;
    lossy.seed = seed;
    lossy.truncate_probability = 1.0;
    lossy.truncate_within = 200;
    t.mend(lossy);
    // (The hub's first change-set may hold only some of the 30: its replica makes change-sets
    // smaller after failures, and the failed rounds of the cut came first.)
    REQUIRE(eventually([&] {
        return std::any_of(ids.begin(), ids.end(), [&](const std::string& id) {
            return t.district_version("members", id) == 1;
        });
    }));
    CHECK(*t.hub_tier->store().relay_backlog() == 30);
    t.restart_hub();
    t.mend({});
    REQUIRE(eventually([&] { return t.backlog_empty(); }));

    auto answered = ok(an->sync());
    CHECK(answered.applied == 30);
    CHECK(ok(an->pending_count()) == 0);
    for (const auto& id : ids) {
        auto h = t.district->store().history("members", id);
        REQUIRE(h);
        CHECK(h->size() == 1);  // once, not twice
        CHECK(ok(an->get("members", id))->version == 1);
    }
    REQUIRE(eventually([&] { return t.hub_mirrors_district(); }));
}

}  // namespace
}  // namespace fieldsync::test

namespace fieldsync::test {

TEST_CASE("hub: an https upstream is trusted through the hub's CA file and refused with another CA",
          "[hub][e2e][tls]") {
    temp_dir dir;
    std::filesystem::create_directories(dir.path() / "district-ca");
    std::filesystem::create_directories(dir.path() / "stranger-ca");
    test_ca ca((dir.path() / "district-ca").string(), "Sở Nội vụ Bến Tre (thử nghiệm)");
    test_ca stranger((dir.path() / "stranger-ca").string(), "Một CA lạ");
    tier district(dir.file("district.db"), false, ca.issue("district", "IP:127.0.0.1"));
    load_tree(district.store());
    auto hub_device = district.store().add_device("Máy chủ xã Bình Hòa", "binh-hoa", srv::device_role::field);
    REQUIRE(hub_device);
    tier commune(dir.file("hub.db"), true);
    load_tree(commune.store());

    // A hamlet phone's change, queued at the hub.
    auto d = commune.store().add_device("Điện thoại ấp 3", "ap-3", srv::device_role::field);
    REQUIRE(d);
    auto phone = open_replica(dir.file("phone.db"));
    ok(phone->configure(commune.url(), d->second));
    const auto id = ok(phone->put("members", member(7), {.unit_id = "ap-3"})).id;
    CHECK(ok(phone->sync()).queued == 1);

    auto open_hub = [&](const std::string& ca_file) {
        srv::hub_options o;
        o.upstream_url = district.url();
        o.upstream_token = hub_device->second;
        o.replica_path = dir.file("hub.db.upstream");
        o.upstream_ca_file = ca_file;
        auto h = srv::relay_hub::open(o, commune.store());
        INFO((h ? std::string() : h.err().message));
        REQUIRE(h);
        return std::move(*h);
    };
    {
        // A CA that did not sign the district's certificate: the round fails on the
        // certificate and nothing reaches the district.
        auto hub = open_hub(stranger.cert_file());
        const auto failed = hub->round();
        REQUIRE(failed);
        CHECK_THAT(failed->message, Catch::Contains("certificate"));
        auto head = district.store().get("members", id);
        REQUIRE(head);
        CHECK_FALSE(head->has_value());
    }
    {
        auto hub = open_hub(ca.cert_file());
        const auto failed = hub->round();
        INFO((failed ? failed->message : std::string()));
        CHECK_FALSE(failed);
        auto head = district.store().get("members", id);
        REQUIRE(head);
        REQUIRE(head->has_value());
        CHECK((*head)->data["name"] == member(7)["name"]);
    }
    auto answered = ok(phone->sync());
    CHECK(answered.applied == 1);
    CHECK(ok(phone->pending_count()) == 0);
}

}  // namespace fieldsync::test
