// fieldsync-hub-bench: how fast a relay hub catches up after a long cut (ARCHITECTURE.md,
// "Relay hub"). A district server and a commune hub (both in this process, on loopback
// ports, SQLite files in a temp dir; the hub's link through the fault proxy); the link is
// cut while D hamlet devices push N new member records to the hub (answered `queued`); then
// the link comes back and the bench times:
//   - forwarding: until the district has answered every queued change (hub backlog 0);
//   - settling: until every device has its final answers (a sync that leaves nothing pending);
//   - mirroring down: M records the district then writes, until the hub has them all.
//
//   fieldsync-hub-bench [--changes N] [--devices D] [--district-writes M] [--seed S]
//
// A benchmark, not a test: it prints figures and asserts nothing.

#include "bench_support.hpp"
#include "proxy/fault_proxy.hpp"
#include "relay_hub.hpp"

#include <fieldsync/client/replica.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace client = fieldsync::client;
namespace srv = fieldsync::server;
using fieldsync::tools::fault_options;
using fieldsync::tools::fault_proxy;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

using fieldsync::bench::die;
using fieldsync::bench::need;

json member(std::mt19937_64& rng, const std::string& cell) {
    static const char* family[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ"};
    static const char* middle[] = {"Văn", "Thị", "Hữu", "Ngọc", "Minh", "Thanh", "Đức", "Thu"};
    static const char* given[] = {"Hoa", "Tám", "Lan", "Dũng", "Hương", "Phúc", "Tâm", "Bình", "Sơn", "Mai"};
    auto pick = [&](auto& list) { return list[rng() % std::size(list)]; };
    return {{"name", std::string(pick(family)) + " " + pick(middle) + " " + pick(given)},
            {"cell", cell},
            {"role", "đảng viên"},
            {"notes", "Đăng ký học tập và làm theo tấm gương đạo đức Hồ Chí Minh năm 2014"}};
}

struct node {
    std::unique_ptr<srv::store> store;
    std::unique_ptr<srv::server> server;
    std::uint16_t port = 0;
    node(const std::string& path, bool relay) {
        srv::store_options so;
        so.path = path;
        so.relay = relay;
        store = need(srv::open_sqlite_store(so), "open store");
        srv::server_options o;
        o.threads = 2;
        server = std::make_unique<srv::server>(o, *store);
        port = need(server->start(), "start server");
    }
    ~node() {
        server->stop();
        store->close();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
    long changes = 5000, devices = 10, district_writes = 2000;
    std::uint64_t seed = 20141126;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto num = [&]() -> long {
            if (i + 1 >= argc) die(a + " needs a number");
            return std::stol(argv[++i]);
        };
        if (a == "--changes") changes = num();
        else if (a == "--devices") devices = num();
        else if (a == "--district-writes") district_writes = num();
        else if (a == "--seed") seed = static_cast<std::uint64_t>(num());
        else die("unknown argument '" + a + "' (--changes N --devices D --district-writes M --seed S)");
    }
    if (changes < 1 || devices < 1 || district_writes < 0) die("counts must be positive");

    const auto dir = fs::temp_directory_path() / ("fieldsync-hub-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::mt19937_64 rng(seed);
    {
        node district((dir / "district.db").string(), false);
        node hub_node((dir / "hub.db").string(), true);
        for (auto* st : {district.store.get(), hub_node.store.get()}) {
            need(st->put_unit({"giong-trom", "", "Huyện Giồng Trôm", "district", ""}), "unit");
            need(st->put_unit({"binh-hoa", "giong-trom", "Xã Bình Hòa", "commune", ""}), "unit");
            for (long d = 0; d < devices; ++d)
                need(st->put_unit({"ap-" + std::to_string(d), "binh-hoa", "Chi bộ ấp " + std::to_string(d), "cell", ""}),
                     "unit");
        }
        const auto hub_token = need(district.store->add_device("Máy chủ xã", "binh-hoa", srv::device_role::field), "device").second;

        fault_options lo;
        lo.target_port = district.port;
        auto link = std::make_unique<fault_proxy>(lo);
        link->start();
        const auto link_port = link->port();
        srv::hub_options ho;
        ho.upstream_url = link->url();
        ho.upstream_token = hub_token;
        ho.replica_path = (dir / "hub.db.upstream").string();
        ho.poll_interval = std::chrono::milliseconds(20);
        ho.pull_interval = std::chrono::milliseconds(200);
        ho.retry_interval = std::chrono::milliseconds(20);
        ho.retry_cap = std::chrono::milliseconds(100);
        auto hub = need(srv::relay_hub::open(ho, *hub_node.store), "open hub");
        hub->start();

        // The cut: the hamlets work and sync with the hub alone.
        link->stop();
        link.reset();
        std::vector<std::unique_ptr<client::replica>> phones;
        for (long d = 0; d < devices; ++d) {
            const auto unit = "ap-" + std::to_string(d);
            const auto tok = need(hub_node.store->add_device("Điện thoại " + unit, unit, srv::device_role::field), "device").second;
            client::replica_options ro;
            ro.path = (dir / ("phone-" + unit + ".db")).string();
            auto r = need(client::replica::open(std::move(ro)), "open replica");
            need(r->configure(hub_node.url(), tok), "configure");
            std::vector<client::replica::put_item> items;
            const long mine = changes / devices + (d < changes % devices ? 1 : 0);
            for (long k = 0; k < mine; ++k)
                items.push_back({"members", member(rng, "Chi bộ " + unit), {.id = "", .unit_id = unit}});
            need(r->put_many(items), "put_many");
            need(r->sync(), "sync during the cut");
            phones.push_back(std::move(r));
        }
        const auto queued = need(hub_node.store->relay_backlog(), "backlog");
        std::printf("cut: %ld devices queued %lld changes at the hub\n", devices, static_cast<long long>(queued));

        // The link comes back.
        lo.listen_port = link_port;
        link = std::make_unique<fault_proxy>(lo);
        link->start();
        const auto t0 = steady::now();
        while (need(hub_node.store->relay_backlog(), "backlog") > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const double forwarding = seconds_since(t0);
        std::printf("forwarding: %lld changes answered by the district in %.2f s (%.0f changes/s)\n",
                    static_cast<long long>(queued), forwarding, static_cast<double>(queued) / forwarding);

        const auto t1 = steady::now();
        for (auto& p : phones) {
            for (;;) {
                need(p->sync(), "sync after the cut");
                if (need(p->pending_count(), "pending") == 0) break;
            }
        }
        std::printf("settling: %ld devices got their final answers in %.2f s\n", devices, seconds_since(t1));

        if (district_writes > 0) {
            const auto office_tok = need(district.store->add_device("Văn phòng huyện", "giong-trom", srv::device_role::field), "device").second;
            client::replica_options ro;
            ro.path = (dir / "office.db").string();
            auto office = need(client::replica::open(std::move(ro)), "open replica");
            need(office->configure(district.url(), office_tok), "configure");
            std::vector<client::replica::put_item> items;
            for (long k = 0; k < district_writes; ++k)
                items.push_back({"members", member(rng, "Chi bộ ấp 0"), {.id = "", .unit_id = "ap-0"}});
            need(office->put_many(items), "put_many");
            need(office->sync(), "district sync");
            const auto t2 = steady::now();
            for (;;) {
                const auto n = need(hub_node.store->pull(srv::scope{true, {}}, 0, 1000000), "pull").changes.size();
                if (static_cast<long>(n) >= changes + district_writes) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            std::printf("mirroring down: %ld district records reached the hub in %.2f s (pull interval 200 ms)\n",
                        district_writes, seconds_since(t2));
        }
        hub->stop();
        link->stop();
    }
    fs::remove_all(dir);
    return 0;
}
