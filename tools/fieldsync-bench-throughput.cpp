// fieldsync-bench's throughput run: devices push change-sets of new records, one client pulls
// everything, --edit-pull patches every record and pulls the edits, and the same records are
// upserted straight into SQLite as the ceiling.

#include "fieldsync-bench-common.hpp"

#include <nlohmann/json.hpp>
#include <fieldsync/server/tuning.hpp>
#include <fieldsync/sqlite/sqlite.hpp>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace fieldsync::bench {

namespace {

using json = nlohmann::json;

// ---- phases ------------------------------------------------------------------------------

struct push_totals {
    std::atomic<std::int64_t> applied{0};
    std::atomic<std::int64_t> merged{0};
    std::atomic<std::int64_t> conflict{0};
    std::atomic<std::int64_t> rejected{0};
    std::atomic<std::int64_t> retries{0};
    std::mutex mutex;
    std::vector<double> latencies_ms;   // one per change-set
    std::vector<std::string> failures;  // one per device that stopped
    std::string first_rejection;
};

void run_device(int device, std::int64_t begin, std::int64_t end, const options& o, const endpoint_address& where,
                const std::string& token, const std::string& run_id, std::vector<record_id>& ids, push_totals& t) {
    http_client client(where, token);
    id_maker ids_of_device(std::random_device{}() ^ (static_cast<std::uint64_t>(device) << 32));
    std::vector<double> latencies;
    std::string body;
    try {
        for (std::int64_t first = begin; first < end; first += o.batch) {
            const std::int64_t last = std::min(end, first + o.batch);
            body.clear();
            body += R"({"batch_id":"b-)" + run_id + "-" + std::to_string(first) +
                    R"(","cursor":"","limit":1,"changes":[)";
            for (std::int64_t i = first; i < last; ++i) {
                ids_of_device.next(o.random_ids, ids[static_cast<std::size_t>(i)]);
                if (i != first) body += ',';
                append_new_record(body, run_id, i, ids[static_cast<std::size_t>(i)], i);
            }
            body += "]}";

            const auto t0 = clock_type::now();
            auto [status, answer] = post_with_retry(client, body, t.retries);
            const auto t1 = clock_type::now();
            latencies.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            if (status != 200) throw std::runtime_error("HTTP " + std::to_string(status) + ": " + answer);

            const json res = json::parse(answer);
            const auto& results = res.at("results");
            if (static_cast<std::int64_t>(results.size()) != last - first)
                throw std::runtime_error("the server answered " + std::to_string(results.size()) + " results for " +
                                         std::to_string(last - first) + " changes");
            for (const auto& r : results) {
                const auto& s = r.at("status").get_ref<const std::string&>();
                if (s == "applied")
                    ++t.applied;
                else if (s == "merged")
                    ++t.merged;
                else if (s == "conflict")
                    ++t.conflict;
                else {
                    ++t.rejected;
                    std::lock_guard lock(t.mutex);
                    if (t.first_rejection.empty()) t.first_rejection = r.dump();
                }
            }
        }
    } catch (const std::exception& e) {
        std::lock_guard lock(t.mutex);
        t.failures.push_back("device " + std::to_string(device) + ": " + e.what());
    }
    std::lock_guard lock(t.mutex);
    t.latencies_ms.insert(t.latencies_ms.end(), latencies.begin(), latencies.end());
}

struct pull_totals {
    std::int64_t records = 0;
    std::int64_t diffs = 0;     // records that came as field diffs
    std::int64_t pages = 0;
    std::int64_t bytes = 0;     // answer bodies
    double seconds = 0;
    std::string cursor;         // where the pull ended
};

pull_totals run_pull(const endpoint_address& where, const std::string& token, std::int64_t limit,
                     std::atomic<std::int64_t>& retries, std::string cursor = {}, bool diffs = false) {
    http_client client(where, token);
    pull_totals p;
    const auto t0 = clock_type::now();
    for (;;) {
        json request = {{"cursor", cursor}, {"limit", limit}};
        if (diffs) request["diffs"] = true;
        auto [status, answer] = post_with_retry(client, request.dump(), retries);
        if (status != 200) throw std::runtime_error("pull: HTTP " + std::to_string(status) + ": " + answer);
        p.bytes += static_cast<std::int64_t>(answer.size());
        const json res = json::parse(answer);
        p.records += static_cast<std::int64_t>(res.at("changes").size());
        for (const auto& c : res.at("changes")) p.diffs += c.contains("diff") ? 1 : 0;
        ++p.pages;
        cursor = res.at("cursor").get<std::string>();
        if (!res.at("more").get<bool>()) break;
    }
    p.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    p.cursor = cursor;
    return p;
}

// --edit-pull: one device patches one field of every record (base version 1, so only on a
// fresh store), in change-sets of `batch`.
void run_edits(const options& o, const endpoint_address& where, const std::string& token, const std::string& run_id,
               const std::vector<record_id>& ids, std::atomic<std::int64_t>& retries) {
    http_client client(where, token);
    for (std::size_t first = 0; first < ids.size(); first += static_cast<std::size_t>(o.batch)) {
        const std::size_t last = std::min(ids.size(), first + static_cast<std::size_t>(o.batch));
        json changes = json::array();
        for (std::size_t i = first; i < last; ++i)
            changes.push_back({{"change_id", "e-" + run_id + "-" + std::to_string(i)},
                               {"collection", k_collection},
                               {"id", std::string(ids[i].data(), ids[i].size())},
                               {"unit_id", unit_of(static_cast<std::int64_t>(i))},
                               {"op", "patch"},
                               {"base_version", 1},
                               {"data", {{"attended", static_cast<std::int64_t>(i % 97)}}}});
        const json body = {{"batch_id", "e-" + run_id + "-" + std::to_string(first)},
                           {"changes", std::move(changes)}, {"limit", 1}};
        auto [status, answer] = post_with_retry(client, body.dump(), retries);
        if (status != 200) throw std::runtime_error("edit: HTTP " + std::to_string(status) + ": " + answer);
        const json res = json::parse(answer);
        for (const auto& r : res.at("results"))
            if (r.at("status") != "applied") throw std::runtime_error("edit: " + r.dump());
    }
}

// The ceiling: the same records upserted into a table shaped like the store's heads, with the
// store's durability (WAL, synchronous=FULL), its page cache and B rows per transaction, from
// one thread. The
// server does more per change (history, the decided table, the merge rule, HTTP and JSON), so
// the ratio shows what that costs.
// --prefill: the table first gets the prefill's rows, untimed, in transactions of 1000, so the
// timed upserts go into as large a B-tree as the server's.
double run_raw(const std::string& path, const options& o, const std::vector<record_id>& prefill_ids,
               const std::vector<record_id>& ids) {
    fieldsync::sqlite::db db(path);
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    // The store's cache (SQLite's default, 2 MiB, would make random keys into a large table
    // read from the file, and the ceiling lower than the server's own).
    db.exec("PRAGMA cache_size=-" + std::to_string(fsrv::tuning::cache_kib));
    db.exec("CREATE TABLE IF NOT EXISTS records(collection TEXT NOT NULL, id TEXT NOT NULL, unit_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, data TEXT, PRIMARY KEY(collection, id)) WITHOUT ROWID");
    const char* sql =
        "INSERT INTO records(collection, id, unit_id, version, data) VALUES (?1, ?2, ?3, 1, ?4) "
        "ON CONFLICT(collection, id) DO UPDATE SET unit_id = ?3, version = version + 1, data = ?4";

    // Rows [0, count) of `of`, `per` rows a transaction.
    auto upsert_all = [&](const std::vector<record_id>& of, std::int64_t count, std::int64_t per) {
        for (std::int64_t first = 0; first < count; first += per) {
            fieldsync::sqlite::write_transaction tx(db);
            auto upsert = db.cached(sql);
            for (std::int64_t i = first; i < std::min(count, first + per); ++i) {
                const auto& id = of[static_cast<std::size_t>(i)];
                upsert.bind(1, k_collection)
                    .bind(2, std::string_view(id.data(), id.size()))
                    .bind(3, unit_of(i))
                    .bind(4, record_data(i))
                    .run();
            }
            tx.commit();
        }
    };
    upsert_all(prefill_ids, static_cast<std::int64_t>(prefill_ids.size()), 1000);

    const auto t0 = clock_type::now();
    upsert_all(ids, o.changes, o.batch);
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct push_figures {
    std::int64_t accepted = 0;
    double seconds = 0;
    bool failed = false;  // a device stopped
};

// Phase 1: push, from one thread per device; prints the figures.
// `label` starts the figures' line: "push", or "prefill" for the unmeasured records before it.
push_figures run_push(const options& o, const bench_target& t, const std::string& run_id,
                      std::vector<record_id>& ids, const char* label) {
    push_totals pushed;
    pushed.latencies_ms.reserve(static_cast<std::size_t>(o.changes / o.batch + o.devices));
    const auto t0 = clock_type::now();
    {
        std::vector<std::thread> devices;
        for (int d = 0; d < o.devices; ++d) {
            const std::int64_t begin = o.changes * d / o.devices;
            const std::int64_t end = o.changes * (d + 1) / o.devices;
            devices.emplace_back(run_device, d, begin, end, std::cref(o), std::cref(t.where),
                                 std::cref(t.tokens[static_cast<std::size_t>(d)]), std::cref(run_id), std::ref(ids),
                                 std::ref(pushed));
        }
        for (auto& th : devices) th.join();
    }
    const double push_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const std::int64_t accepted = pushed.applied + pushed.merged;
    const auto sets = static_cast<std::int64_t>(pushed.latencies_ms.size());
    std::cout << label << ": " << accepted << " accepted of " << o.changes << " changes in " << sets << " change-sets, "
              << fixed(push_s, 2) << " s: " << fixed(static_cast<double>(accepted) / push_s, 0)
              << " accepted changes/s (applied " << pushed.applied << ", merged " << pushed.merged << ", conflict "
              << pushed.conflict << ", rejected " << pushed.rejected << "; retries " << pushed.retries << ")"
              << (std::string_view(label) == "push" ? "" : ", not measured") << "\n";
    std::cout << label << " change-set latency: p50 " << fixed(percentile(pushed.latencies_ms, 0.50)) << " ms, p99 "
              << fixed(percentile(pushed.latencies_ms, 0.99)) << " ms, max "
              << fixed(percentile(pushed.latencies_ms, 1.0)) << " ms\n"
              << std::flush;
    for (const auto& f : pushed.failures) std::cerr << "fieldsync-bench: " << f << "\n";
    if (!pushed.first_rejection.empty())
        std::cerr << "fieldsync-bench: first rejected change: " << pushed.first_rejection << "\n";
    return {accepted, push_s, !pushed.failures.empty()};
}

// Phase 2b: a one-field edit of every record, pulled from the full pull's cursor as a
// replica that holds every record would: whole, then as field diffs.
void run_edit_pull(const options& o, const bench_target& t, const std::string& run_id,
                   const std::vector<record_id>& ids, const std::string& cursor,
                   std::atomic<std::int64_t>& pull_retries) {
    std::atomic<std::int64_t> edit_retries{0};
    const auto te = clock_type::now();
    run_edits(o, t.where, t.tokens.front(), run_id, ids, edit_retries);
    std::cout << "edits: " << ids.size() << " one-field patches in "
              << fixed(std::chrono::duration<double>(clock_type::now() - te).count(), 2) << " s\n";
    for (const bool diffs : {false, true}) {
        const auto p = run_pull(t.where, t.tokens.front(), o.pull_limit, pull_retries, cursor, diffs);
        std::cout << "edit pull " << (diffs ? "as diffs" : "whole   ") << ": " << p.records << " records ("
                  << p.diffs << " diffs) in " << p.pages << " pages, " << fixed(p.seconds, 2)
                  << " s: " << fixed(static_cast<double>(p.records) / p.seconds, 0) << " changes/s, "
                  << fixed(static_cast<double>(p.bytes) / static_cast<double>(std::max<std::int64_t>(p.records, 1)), 1)
                  << " bytes/record\n"
                  << std::flush;
    }
}

}  // namespace

int run_throughput(const options& o) {
    auto t = host_or_connect(o);
    std::cout << "fieldsync-bench: " << o.devices << " devices, " << o.batch << " changes per change-set, "
              << o.changes << " changes of ~" << k_record_bytes << "-byte records, "
              << (o.random_ids ? "random (UUIDv4)" : "time-ordered (UUIDv7)") << " ids, "
              << std::thread::hardware_concurrency() << " cores"
              << (o.prefill > 0 ? ", into a store prefilled with " + std::to_string(o.prefill) + " records" : "")
              << "\n"
              << std::flush;

    // Change ids must be new for every run against the same store (the server would answer
    // repeats from its decided table without writing anything).
    const std::string run_id = make_run_id();

    // --prefill: records already in the store before the measured push, pushed the same way
    // in change-sets of 1000 but not measured, so --random-ids measures inserts into a large
    // key space; the raw phase gets the same rows first.
    std::vector<record_id> prefill_ids(static_cast<std::size_t>(o.prefill));
    std::int64_t prefilled = 0;
    if (o.prefill > 0) {
        options po = o;
        po.changes = o.prefill;
        po.batch = std::min<std::int64_t>(1000, fproto::tuning::max_changes_per_batch);
        const auto p = run_push(po, t, make_run_id(), prefill_ids, "prefill");
        if (p.failed) throw std::runtime_error("the prefill failed");
        prefilled = p.accepted;
    }

    // Phase 1: push.
    std::vector<record_id> ids(static_cast<std::size_t>(o.changes));
    const auto pushed = run_push(o, t, run_id, ids, "push");
    const std::int64_t accepted = pushed.accepted;
    const double push_s = pushed.seconds;
    int exit_code = pushed.failed ? 1 : 0;

    // Phase 2: pull everything.
    std::atomic<std::int64_t> pull_retries{0};
    const auto pulled = run_pull(t.where, t.tokens.front(), o.pull_limit, pull_retries);
    std::cout << "pull: " << pulled.records << " records in " << pulled.pages << " pages of up to " << o.pull_limit
              << ", " << fixed(pulled.seconds, 2) << " s: " << fixed(static_cast<double>(pulled.records) / pulled.seconds, 0)
              << " changes/s\n"
              << std::flush;
    // Self-hosted on a fresh store, the feed holds exactly the accepted records.
    if (o.url.empty() && o.db.empty() && pulled.records != accepted + prefilled) {
        std::cerr << "fieldsync-bench: the pull returned " << pulled.records << " records, but "
                  << accepted + prefilled << " were accepted\n";
        exit_code = 1;
    }

    if (o.edit_pull && o.url.empty() && o.db.empty())
        run_edit_pull(o, t, run_id, ids, pulled.cursor, pull_retries);

    if (t.srv) t.srv->stop();
    if (t.st) t.st->close();

    // Phase 3: the raw SQLite ceiling, with the server stopped so it has the machine alone.
    const double raw_s = run_raw(t.raw_path, o, prefill_ids, ids);
    const double raw_rate = static_cast<double>(o.changes) / raw_s;
    const double server_rate = static_cast<double>(accepted) / push_s;
    std::cout << "raw SQLite upsert (WAL, synchronous=FULL, the store's " << fsrv::tuning::cache_kib / 1024 << " MiB cache, " << o.batch << " rows per transaction, 1 thread"
              << (o.prefill > 0 ? ", into " + std::to_string(o.prefill) + " prefilled rows" : std::string()) << "): "
              << o.changes << " rows, " << fixed(raw_s, 2) << " s: " << fixed(raw_rate, 0) << " rows/s\n";
    std::cout << "ratio: server accepted changes/s / raw upserts/s = " << fixed(server_rate / raw_rate, 3) << "\n";

    if (!o.keep) {
        std::error_code ec;
        if (!t.temp_dir.empty()) {
            std::filesystem::remove_all(t.temp_dir, ec);
        } else {
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(t.raw_path + suffix, ec);
        }
    } else {
        std::cout << "kept: " << (t.temp_dir.empty() ? t.raw_path : t.temp_dir.string()) << "\n";
    }
    return exit_code;
}

}  // namespace fieldsync::bench
