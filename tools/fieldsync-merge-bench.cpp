// fieldsync-merge-bench: how long the district takes to merge the demo data set from its
// communes (issue 8, closing note). Each base organisation's share of the demo (its commune
// with its hamlet cells, or an office cell; the district's own records go to a district
// replica) is written offline into a client-lib replica on its own SQLite file; then every
// replica syncs with a district server on 127.0.0.1:0 at once (or one after another with
// --sequential), and the time until the last sync returns is the figure. A benchmark, not a
// test: it prints figures and only fails when the merge itself goes wrong (a change not
// applied, the district's figures not adding up).
//
// usage: fieldsync-merge-bench [--seed N] [--members N] [--communes N] [--sequential] [--dir DIR]

#include "demo/demo.hpp"

#include <fieldsync/client/replica.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <thread>

namespace fs = std::filesystem;
namespace client = fieldsync::client;
namespace demo = fieldsync::demo;
namespace srv = fieldsync::server;

namespace {

[[noreturn]] void die(const std::string& message) {
    std::cerr << "fieldsync-merge-bench: " << message << "\n";
    std::exit(1);
}

template <class T>
T need(client::result<T> r, const std::string& what) {
    if (!r) die(what + ": " + r.err().message);
    return std::move(*r);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct share {
    std::string base;                           // "" = the district's own records
    std::vector<client::replica::put_item> items;
    std::unique_ptr<client::replica> replica;
    client::sync_report report;
    std::string error;
    double seconds = 0;
};

}  // namespace

int main(int argc, char** argv) {
    demo::options o;
    bool sequential = false;
    fs::path dir;
    const std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= args.size()) die("'" + a + "' needs a value");
            return args[++i];
        };
        if (a == "--seed") o.seed = std::stoull(value());
        else if (a == "--members") o.members = std::stoi(value());
        else if (a == "--communes") o.communes = std::stoi(value());
        else if (a == "--sequential") sequential = true;
        else if (a == "--dir") dir = value();
        else if (a == "--help" || a == "-h") {
            std::cout << "usage: fieldsync-merge-bench [--seed N] [--members N] [--communes N] [--sequential] [--dir DIR]\n";
            return 0;
        } else
            die("unknown argument '" + a + "' (see --help)");
    }
    const bool keep = !dir.empty();
    if (dir.empty()) dir = fs::temp_directory_path() / ("fieldsync-merge-bench-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir);

    auto data = demo::generate(o);
    if (!data) die(data.err().message);

    // The district server: the tree, and a device per base organisation.
    srv::store_options so;
    so.path = (dir / "district.db").string();
    auto st = srv::open_sqlite_store(so);
    if (!st) die("store: " + st.err().message);
    auto& store = **st;
    for (const auto& u : data->units)
        if (auto put = store.put_unit({u.id, u.parent, u.name, u.kind, ""}); !put) die("unit: " + put.err().message);
    srv::server_options opts;
    opts.threads = 2;
    srv::server server(opts, store);
    auto port = server.start();
    if (!port) die("server: " + port.err().message);
    const std::string url = "http://127.0.0.1:" + std::to_string(*port);

    // Each share written offline into its replica (not timed: that is the field's work).
    std::map<std::string, share> shares;
    for (const auto& r : data->records) {
        const auto base = demo::base_organisation_of(*data, r.unit_id);
        client::replica::put_item item{r.collection, r.data, {r.id, r.unit_id}};
        shares[base].items.push_back(std::move(item));
    }
    std::size_t records = 0;
    const std::string district_id = data->units.front().id;
    for (auto& [base, s] : shares) {
        s.base = base;
        const auto unit = base.empty() ? district_id : base;
        auto dev = store.add_device("Máy tổng hợp " + unit, unit, base.empty() ? srv::device_role::admin : srv::device_role::field);
        if (!dev) die("device: " + dev.err().message);
        client::replica_options ro;
        ro.path = (dir / ("replica-" + (base.empty() ? district_id : base) + ".db")).string();
        s.replica = need(client::replica::open(std::move(ro)), "open replica");
        if (auto c = s.replica->configure(url, dev->second); !c) die("configure: " + c.err().message);
        // The registrations reviewed later are a second put of the same id: written apart,
        // as the cell secretary would, after the first is stored.
        std::vector<client::replica::put_item> batch;
        std::map<std::string, bool> seen;
        auto flush = [&] {
            if (batch.empty()) return;
            need(s.replica->put_many(batch), "put_many");
            batch.clear();
            seen.clear();
        };
        for (auto& item : s.items) {
            const auto key = item.collection + "/" + item.options.id;
            if (seen.count(key)) flush();
            seen[key] = true;
            batch.push_back(std::move(item));
            if (batch.size() >= 1000) flush();
        }
        flush();
        records += static_cast<std::size_t>(need(s.replica->pending_count(), "pending_count"));
    }

    std::printf("demo: %zu units, %zu writes in %zu replicas (%zu base organisations%s), %zu changes in their outboxes\n",
                data->units.size(), data->records.size(), shares.size(), shares.size() - (shares.count("") ? 1 : 0),
                shares.count("") ? " and the district" : "", records);

    // The merge: every replica syncs with the district.
    const auto t0 = std::chrono::steady_clock::now();
    auto run = [&](share& s) {
        const auto t = std::chrono::steady_clock::now();
        auto r = s.replica->sync();
        s.seconds = seconds_since(t);
        if (r) s.report = *r;
        else s.error = r.err().message;
    };
    if (sequential) {
        for (auto& [base, s] : shares) run(s);
    } else {
        std::vector<std::thread> threads;
        for (auto& [base, s] : shares) threads.emplace_back([&run, &s] { run(s); });
        for (auto& t : threads) t.join();
    }
    const double total = seconds_since(t0);

    std::int64_t pushed = 0, applied = 0, requests = 0, sent = 0, received = 0, pulled = 0;
    double slowest = 0;
    for (const auto& [base, s] : shares) {
        if (!s.error.empty()) die("sync of " + (base.empty() ? district_id : base) + ": " + s.error);
        pushed += s.report.pushed;
        applied += s.report.applied;
        pulled += s.report.pulled;
        requests += s.report.requests;
        sent += s.report.bytes_sent;
        received += s.report.bytes_received;
        slowest = std::max(slowest, s.seconds);
    }
    std::printf("merge (%s): %.2f s for %lld changes (%.0f changes/s); %lld applied, %lld pulled back; "
                "%lld requests, %.1f MB sent, %.1f MB received; slowest replica %.2f s\n",
                sequential ? "one replica after another" : "all replicas at once", total,
                static_cast<long long>(pushed), static_cast<double>(pushed) / total, static_cast<long long>(applied),
                static_cast<long long>(pulled), static_cast<long long>(requests), static_cast<double>(sent) / 1e6,
                static_cast<double>(received) / 1e6, slowest);

    // The district's figures from what it merged.
    auto reg = store.report(srv::scope{true, {}}, {"registrations", district_id, std::nullopt, ""});
    auto ins = store.report(srv::scope{true, {}}, {"inspections", district_id, std::nullopt, ""});
    if (!reg || !ins) die("report: " + (reg ? ins.err().message : reg.err().message));
    std::printf("district figures: %lld members, %lld registered, %lld vague; %lld inspections\n",
                static_cast<long long>(reg->totals.value("members", 0)),
                static_cast<long long>(reg->totals.value("registered", 0)),
                static_cast<long long>(reg->totals.value("vague", 0)),
                static_cast<long long>(ins->totals.value("inspections", 0)));
    server.stop();
    store.close();
    for (auto& [base, s] : shares) s.replica.reset();
    if (!keep) {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    const bool ok = applied == pushed && reg->totals.value("members", 0) == o.members;
    if (!ok) std::cerr << "fieldsync-merge-bench: the merge lost or refused changes\n";
    return ok ? 0 : 1;
}
