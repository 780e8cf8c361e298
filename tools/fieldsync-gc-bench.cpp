// fieldsync-gc-bench: what gc costs on a store the size of a district's, and what it costs the
// devices syncing meanwhile (issue 6, "Retention and gc" in ARCHITECTURE.md). Not a test: it
// prints figures and asserts nothing about time; it does check that what gc reports purged is
// gone and that every live record is still there.
//
// It builds a store in a temp directory (or at --db, which must not exist) through the store's
// own write path: --records members spread over --units cells, then deletes --deleted percent
// of them. One device pulls everything (so it is active and past every tombstone). Then:
//   - a writer thread pushes one-change change-sets back to back, and the latency of each
//     push is recorded for --baseline-ms without gc, then during gc --dry-run, then during gc;
//   - the durations of the dry run and of the real run, and what they counted or purged;
//   - the cost of a device's pull with its acknowledgement recorded (device_pull) against a
//     plain pull from the same cursor (median of --repeat).

#include <fieldsync/server/store.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fsrv = fieldsync::server;
namespace fproto = fieldsync::protocol;
using clock_type = std::chrono::steady_clock;

constexpr const char* k_usage =
    "usage: fieldsync-gc-bench [--db PATH] [--records N] [--units N] [--deleted PERCENT]\n"
    "                          [--batch-rows N] [--baseline-ms N] [--repeat N]\n"
    "Builds a store (default 100000 records over 100 cells, 20% deleted), then prints how long\n"
    "gc --dry-run and gc take, what they purge, and the latency of pushes made meanwhile.\n";

struct options {
    std::string db;
    long records = 100'000;
    int units = 100;
    int deleted = 20;
    long batch_rows = fsrv::tuning::gc_batch_rows;
    long baseline_ms = 2000;
    int repeat = 21;
};

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

struct latencies {
    std::mutex m;
    std::vector<double> ms;
    void add(double v) {
        std::lock_guard lock(m);
        ms.push_back(v);
    }
    std::vector<double> take() {
        std::lock_guard lock(m);
        auto out = std::move(ms);
        ms.clear();
        return out;
    }
};

std::string summary(std::vector<double> v) {
    if (v.empty()) return "no pushes";
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))]; };
    char buf[160];
    std::snprintf(buf, sizeof buf, "%zu pushes, p50 %.2f ms, p99 %.2f ms, max %.2f ms", v.size(), at(0.5), at(0.99),
                  v.back());
    return buf;
}

fproto::change member_change(const std::string& id, const std::string& unit, std::int64_t base, bool del) {
    fproto::change c;
    c.change_id = "c-" + id + "-" + std::to_string(base);
    c.collection = "members";
    c.id = id;
    c.unit_id = unit;
    c.base_version = base;
    c.op = del ? fproto::op_kind::del : fproto::op_kind::put;
    if (!del) c.data = {{"name", "Nguyễn Thị Ánh " + id}, {"cell", "Chi bộ " + unit}, {"role", "đảng viên"}};
    return c;
}

bool push_all(fsrv::store& st, const fsrv::device& dev, std::vector<fproto::change> changes, const std::string& tag) {
    for (std::size_t i = 0; i < changes.size(); i += 1000) {
        fproto::change_set cs;
        cs.batch_id = tag + "-" + std::to_string(i);
        for (std::size_t k = i; k < std::min(changes.size(), i + 1000); ++k) cs.changes.push_back({changes[k], {}});
        auto r = st.push(dev, cs);
        if (!r) {
            std::cerr << "fieldsync-gc-bench: push failed: " << r.err().message << "\n";
            return false;
        }
    }
    return true;
}

int run(const options& o) {
    std::filesystem::path dir;
    std::string path = o.db;
    if (path.empty()) {
        std::random_device rd;
        dir = std::filesystem::temp_directory_path() / ("fieldsync-gc-bench-" + std::to_string(rd()));
        std::filesystem::create_directories(dir);
        path = (dir / "central.db").string();
    } else if (std::filesystem::exists(path)) {
        std::cerr << "fieldsync-gc-bench: " << path << " exists; name a new file\n";
        return 2;
    }
    fsrv::store_options so;
    so.path = path;
    auto opened = fsrv::open_sqlite_store(so);
    if (!opened) {
        std::cerr << "fieldsync-gc-bench: " << opened.err().message << "\n";
        return 1;
    }
    auto& st = **opened;
    auto admin = st.add_device("máy huyện", "giong-trom", fsrv::device_role::admin);
    auto reader = st.add_device("máy đọc", "giong-trom", fsrv::device_role::admin);
    if (!admin || !reader) return 1;

    auto t0 = clock_type::now();
    std::vector<fproto::change> creates, deletes;
    for (long i = 0; i < o.records; ++i)
        creates.push_back(member_change("m-" + std::to_string(i), "ap-" + std::to_string(i % o.units), 0, false));
    const long n_deleted = o.records * o.deleted / 100;
    for (long i = 0; i < n_deleted; ++i)
        deletes.push_back(member_change("m-" + std::to_string(i * o.records / std::max(1L, n_deleted)),
                                        "ap-" + std::to_string((i * o.records / std::max(1L, n_deleted)) % o.units), 1,
                                        true));
    if (!push_all(st, admin->first, creates, "create") || !push_all(st, admin->first, deletes, "delete")) return 1;
    std::cout << "store: " << o.records << " records over " << o.units << " cells, " << n_deleted << " deleted, built in "
              << static_cast<long>(ms_since(t0)) << " ms (" << path << ")\n";

    // The reader device pulls everything: it is active and past every tombstone.
    std::int64_t cursor = 0;
    for (;;) {
        auto page = st.device_pull(reader->first, cursor, 5000);
        if (!page) return 1;
        if (!page->changes.empty() || !page->dropped.empty()) cursor = page->last_seq;
        if (!page->more) break;
    }

    // Pull cost with and without the acknowledgement (incremental, from the reader's cursor).
    std::vector<double> plain, acked;
    for (int i = 0; i < o.repeat; ++i) {
        auto t = clock_type::now();
        if (!st.pull(fsrv::scope{true, {}}, cursor, 500)) return 1;
        plain.push_back(ms_since(t));
        t = clock_type::now();
        if (!st.device_pull(reader->first, cursor, 500)) return 1;
        acked.push_back(ms_since(t));
    }
    std::sort(plain.begin(), plain.end());
    std::sort(acked.begin(), acked.end());
    std::printf("incremental pull, median of %d: plain %.3f ms, with acknowledgement %.3f ms\n", o.repeat,
                plain[plain.size() / 2], acked[acked.size() / 2]);

    // A writer pushing back to back throughout.
    latencies lat;
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (long i = 0; !stop; ++i) {
            fproto::change_set cs;
            cs.batch_id = "w-" + std::to_string(i);
            cs.changes.push_back({member_change("w-" + std::to_string(i), "ap-" + std::to_string(i % o.units), 0, false), {}});
            const auto t = clock_type::now();
            if (!st.push(admin->first, cs)) return;
            lat.add(ms_since(t));
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(o.baseline_ms));
    std::cout << "pushes without gc:     " << summary(lat.take()) << "\n";

    fsrv::gc_options g;
    g.batch_rows = o.batch_rows;
    g.dry_run = true;
    t0 = clock_type::now();
    auto dry = st.gc(g);
    const double dry_ms = ms_since(t0);
    std::cout << "pushes during dry run: " << summary(lat.take()) << "\n";
    g.dry_run = false;
    t0 = clock_type::now();
    auto real = st.gc(g);
    const double real_ms = ms_since(t0);
    std::cout << "pushes during gc:      " << summary(lat.take()) << "\n";
    stop = true;
    writer.join();
    if (!dry || !real) {
        std::cerr << "fieldsync-gc-bench: gc failed: " << (dry ? real.err().message : dry.err().message) << "\n";
        return 1;
    }
    std::printf("gc --dry-run: %.0f ms, would purge %lld tombstones, %lld decided answers\n", dry_ms,
                static_cast<long long>(dry->tombstones), static_cast<long long>(dry->decided));
    std::printf("gc (%ld rows per transaction): %.0f ms, purged %lld tombstones, %lld drop notices, %lld decided answers; "
                "horizon %lld of feed %lld\n",
                o.batch_rows, real_ms, static_cast<long long>(real->tombstones), static_cast<long long>(real->drops),
                static_cast<long long>(real->decided), static_cast<long long>(real->horizon),
                static_cast<long long>(real->feed_seq));

    // What gc reports purged is gone; every live record is still there.
    long live = 0, dead = 0;
    for (std::int64_t after = 0;;) {
        auto page = st.pull(after, 5000);
        if (!page) return 1;
        for (const auto& c : page->changes) (c.deleted ? dead : live) += 1;
        after = page->last_seq;
        if (!page->more) break;
    }
    const bool consistent = dead == 0 && live >= o.records - n_deleted && real->tombstones == n_deleted;
    std::cout << "after gc: " << live << " live heads, " << dead << " tombstones left"
              << (consistent ? "" : "  <-- NOT what gc reported") << "\n";
    st.close();
    if (!dir.empty()) std::filesystem::remove_all(dir);
    return consistent ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        auto number = [&](long& out, long lo) {
            const char* v = value();
            char* end = nullptr;
            const long n = v ? std::strtol(v, &end, 10) : 0;
            if (!v || *end || n < lo) return false;
            out = n;
            return true;
        };
        long n = 0;
        if (a == "--help" || a == "-h") {
            std::cout << k_usage;
            return 0;
        } else if (a == "--db") {
            const char* v = value();
            if (!v) {
                std::cerr << "fieldsync-gc-bench: --db needs a path\n" << k_usage;
                return 2;
            }
            o.db = v;
        } else if (a == "--records" && number(n, 1)) {
            o.records = n;
        } else if (a == "--units" && number(n, 1)) {
            o.units = static_cast<int>(n);
        } else if (a == "--deleted" && number(n, 0) && n <= 100) {
            o.deleted = static_cast<int>(n);
        } else if (a == "--batch-rows" && number(n, 1)) {
            o.batch_rows = n;
        } else if (a == "--baseline-ms" && number(n, 1)) {
            o.baseline_ms = n;
        } else if (a == "--repeat" && number(n, 1)) {
            o.repeat = static_cast<int>(n);
        } else {
            std::cerr << "fieldsync-gc-bench: bad argument '" << a << "'\n" << k_usage;
            return 2;
        }
    }
    return run(o);
}
