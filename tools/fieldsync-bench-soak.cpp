// fieldsync-bench --soak: devices write and pull for a while against a self-hosted server,
// then the store invariants are checked and every device's copy is compared with a full pull.

#include "fieldsync-bench-common.hpp"

#include "invariants/store_check.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

namespace fieldsync::bench {

namespace {

using json = nlohmann::json;

// Shared records every device edits (merges, conflicts); the rest are each device's own.
constexpr int k_soak_shared_records = 32;
constexpr const char* k_soak_collection = "members";
constexpr const char* k_soak_unit = "xa-binh-hoa";
constexpr std::int64_t k_soak_pull_limit = 200;
const char* const k_soak_names[] = {"Nguyễn Thị Lựu", "Trần Văn Đức", "Lê Thị Hồng", "Phạm Minh Châu",
                                    "Võ Thị Sáu", "Huỳnh Văn Nghệ", "Đặng Thùy Trâm", "Bùi Quang Thận"};

struct soak_device {
    int index = 0;
    std::string token;
    std::vector<fieldsync::tools::answered_change> answered;
    std::map<std::string, std::int64_t> known;      // record id -> last version this device heard of
    std::map<std::string, std::int64_t> replica;    // record id -> version, from its own pulls
    std::string cursor;
    std::int64_t change_sets = 0, retries = 0;
    std::vector<double> latencies_ms;
    std::string failure;
};

// One change-set: new records, edits (put or patch) of shared and own records, deletes of own
// records, each against the version this device last heard of.
std::string soak_batch(soak_device& d, std::int64_t n, std::int64_t most, std::mt19937_64& rng,
                       std::vector<fieldsync::tools::answered_change>& sent) {
    const std::string prefix = "d" + std::to_string(d.index) + "-" + std::to_string(n);
    json changes = json::array();
    std::set<std::string> ids;
    const auto count = 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(most));
    for (std::int64_t k = 0; k < count; ++k) {
        const auto pick = rng() % 100;
        std::string id;
        if (pick < 30 || d.known.empty())
            id = "m-" + prefix + "-" + std::to_string(k);  // a new record
        else if (pick < 55)
            id = "m-shared-" + std::to_string(rng() % k_soak_shared_records);
        else {
            auto it = d.known.begin();
            std::advance(it, static_cast<std::ptrdiff_t>(rng() % d.known.size()));
            id = it->first;
        }
        if (!ids.insert(id).second) continue;
        const auto base = d.known.count(id) ? d.known[id] : 0;
        const std::string cid = "c-" + prefix + "-" + std::to_string(k);
        json c = {{"change_id", cid}, {"collection", k_soak_collection}, {"id", id}, {"unit_id", k_soak_unit},
                  {"base_version", base}};
        const bool own = id.rfind("m-shared-", 0) != 0;
        const auto how = rng() % 10;
        if (base > 0 && own && how == 0) {
            c["op"] = "delete";
        } else if (base > 0 && how < 5) {
            c["op"] = "patch";
            c["data"] = {{"notes", "sửa lần " + std::to_string(n) + " bởi máy " + std::to_string(d.index)}};
        } else {
            c["op"] = "put";
            c["data"] = {{"name", k_soak_names[rng() % std::size(k_soak_names)]},
                         {"cell", "Chi bộ ấp " + std::to_string(1 + rng() % 9)},
                         {"notes", "ghi chú " + cid}};
        }
        changes.push_back(std::move(c));
        sent.push_back({cid, k_soak_collection, id, nullptr});
    }
    return json{{"batch_id", "b-" + prefix}, {"changes", changes}, {"cursor", d.cursor}, {"limit", k_soak_pull_limit}}
        .dump();
}

// Applies a pulled page to a device's copy: the latest version of each record.
void soak_apply_page(std::map<std::string, std::int64_t>& replica, const json& res) {
    for (const auto& c : res.at("changes")) {
        auto& v = replica[c.at("id").get<std::string>()];
        v = std::max(v, c.at("version").get<std::int64_t>());
    }
}

void run_soak_device(soak_device& d, const endpoint_address& where, std::int64_t most, std::uint64_t seed,
                     clock_type::time_point deadline) {
    std::mt19937_64 rng(seed);
    http_client client(where, d.token);
    std::atomic<std::int64_t> retries{0};
    try {
        for (std::int64_t n = 0; clock_type::now() < deadline; ++n) {
            std::vector<fieldsync::tools::answered_change> sent;
            const auto body = soak_batch(d, n, most, rng, sent);
            const auto t0 = clock_type::now();
            auto [status, answer] = post_with_retry(client, body, retries);
            d.latencies_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            if (status != 200) throw std::runtime_error("HTTP " + std::to_string(status) + ": " + answer.substr(0, 300));
            const json res = json::parse(answer);
            const auto& results = res.at("results");
            if (results.size() != sent.size())
                throw std::runtime_error("answered " + std::to_string(results.size()) + " results for " +
                                         std::to_string(sent.size()) + " changes");
            for (std::size_t k = 0; k < sent.size(); ++k) {
                if (results[k].value("change_id", "") != sent[k].change_id)
                    throw std::runtime_error("results out of order: " + results[k].dump());
                sent[k].result = results[k];
                if (results[k].value("status", "") != "rejected" && results[k].contains("version"))
                    d.known[sent[k].id] = results[k]["version"].get<std::int64_t>();
                d.answered.push_back(std::move(sent[k]));
            }
            soak_apply_page(d.replica, res);
            d.cursor = res.at("cursor").get<std::string>();
            ++d.change_sets;
        }
    } catch (const std::exception& e) {
        d.failure = e.what();
    }
    d.retries = retries.load();
}

// After every device has stopped writing: pull until the feed has nothing more.
void soak_catch_up(soak_device& d, const endpoint_address& where) {
    if (!d.failure.empty()) return;
    http_client client(where, d.token);
    std::atomic<std::int64_t> retries{0};
    try {
        for (;;) {
            auto [status, answer] =
                post_with_retry(client, json{{"cursor", d.cursor}, {"limit", k_soak_pull_limit}}.dump(), retries);
            if (status != 200) throw std::runtime_error("pull: HTTP " + std::to_string(status));
            const json res = json::parse(answer);
            soak_apply_page(d.replica, res);
            d.cursor = res.at("cursor").get<std::string>();
            if (!res.at("more").get<bool>()) break;
        }
    } catch (const std::exception& e) {
        d.failure = std::string("catching up: ") + e.what();
    }
    d.retries += retries.load();
}

// A full pull from the beginning by a fresh reader: the latest version of every record.
std::map<std::string, std::int64_t> soak_full_pull(const endpoint_address& where, const std::string& token) {
    std::map<std::string, std::int64_t> full;
    http_client client(where, token);
    std::atomic<std::int64_t> r{0};
    std::string cursor;
    for (;;) {
        auto [status, answer] = post_with_retry(client, json{{"cursor", cursor}, {"limit", 5000}}.dump(), r);
        if (status != 200) throw std::runtime_error("full pull: HTTP " + std::to_string(status));
        const json res = json::parse(answer);
        soak_apply_page(full, res);
        cursor = res.at("cursor").get<std::string>();
        if (!res.at("more").get<bool>()) break;
    }
    return full;
}

}  // namespace

int run_soak(const options& o) {
    const std::uint64_t seed = o.seed ? *o.seed : std::random_device{}();
    const std::int64_t most = o.batch_given ? o.batch : 8;
    std::filesystem::path temp_dir;
    std::string store_path = o.db;
    if (store_path.empty()) {
        temp_dir = make_temp_dir();
        store_path = (temp_dir / "soak-store.db").string();
    }
    std::cout << "soak: " << o.soak_seconds << " s, " << o.devices << " devices, change-sets of 1 to " << most
              << " changes, seed " << seed << ", store " << store_path << "\n"
              << std::flush;

    auto st = open_store(store_path);
    std::vector<soak_device> devices(static_cast<std::size_t>(o.devices));
    const auto tokens = add_devices(*st, o.devices, "soak-device-", k_soak_unit, fsrv::device_role::field);
    for (int k = 0; k < o.devices; ++k) {
        devices[static_cast<std::size_t>(k)].index = k;
        devices[static_cast<std::size_t>(k)].token = tokens[static_cast<std::size_t>(k)];
    }
    fsrv::server_options sopt;
    if (o.server_threads > 0) sopt.threads = o.server_threads;
    sopt.log = [](std::string_view) {};  // a line per request would drown the figures
    endpoint_address where;
    auto srv = start_server(sopt, *st, where);

    const auto t0 = clock_type::now();
    const auto deadline = t0 + std::chrono::seconds(o.soak_seconds);
    {
        std::vector<std::thread> threads;
        for (auto& d : devices)
            threads.emplace_back(run_soak_device, std::ref(d), std::cref(where), most,
                                 seed + static_cast<std::uint64_t>(d.index) * 0x9E3779B97F4A7C15ull, deadline);
        for (auto& t : threads) t.join();
    }
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    {
        std::vector<std::thread> threads;
        for (auto& d : devices) threads.emplace_back(soak_catch_up, std::ref(d), std::cref(where));
        for (auto& t : threads) t.join();
    }

    int failures = 0;
    auto fail = [&](const std::string& what) {
        if (++failures <= 50) std::cerr << "soak: FAIL: " << what << "\n";
    };
    for (const auto& d : devices)
        if (!d.failure.empty()) fail("device " + std::to_string(d.index) + ": " + d.failure);

    // A full pull from the beginning by a fresh reader: every device's copy, built from its
    // own incremental pulls during the run, must equal it.
    const auto full = soak_full_pull(where, devices.front().token);
    int diverged = 0;
    for (const auto& d : devices)
        if (d.failure.empty() && d.replica != full) {
            ++diverged;
            fail("device " + std::to_string(d.index) + "'s pulled copy differs from a full pull (" +
                 std::to_string(d.replica.size()) + " vs " + std::to_string(full.size()) + " records)");
        }

    srv->stop();
    const auto commits = st->metrics().commit_seconds.count();
    st->close();
    st.reset();

    std::vector<fieldsync::tools::answered_change> answered;
    std::vector<double> latencies;
    std::int64_t change_sets = 0, retries = 0;
    for (auto& d : devices) {
        change_sets += d.change_sets;
        retries += d.retries;
        latencies.insert(latencies.end(), d.latencies_ms.begin(), d.latencies_ms.end());
        std::move(d.answered.begin(), d.answered.end(), std::back_inserter(answered));
    }
    const auto t_check = clock_type::now();
    const auto totals = fieldsync::tools::check_store(store_path, answered, fail);
    const double check_s = std::chrono::duration<double>(clock_type::now() - t_check).count();
    const auto db_bytes = std::filesystem::file_size(store_path);

    std::cout << "soak: " << fixed(secs, 1) << " s, " << change_sets << " change-sets of " << answered.size()
              << " changes answered (" << fixed(static_cast<double>(change_sets) / secs, 0) << " change-sets/s, "
              << fixed(static_cast<double>(answered.size()) / secs, 0) << " changes/s), " << retries << " retries, "
              << commits << " group commits\n";
    std::cout << "soak: outcomes: " << totals.applied << " applied, " << totals.merged << " merged, "
              << totals.conflicts << " conflict, " << totals.rejected << " rejected\n";
    std::cout << "soak: change-set latency: p50 " << fixed(percentile(latencies, 0.50)) << " ms, p99 "
              << fixed(percentile(latencies, 0.99)) << " ms, max " << fixed(percentile(latencies, 1.0)) << " ms\n";
    std::cout << "soak: store: " << totals.records << " records, " << totals.versions << " history versions, "
              << fixed(static_cast<double>(db_bytes) / (1024.0 * 1024.0), 1) << " MiB; checked in " << fixed(check_s, 1)
              << " s; " << (o.devices - diverged) << " of " << o.devices << " device copies equal a full pull of "
              << full.size() << " records\n";
    std::cout << "soak: " << (failures == 0 ? "PASS" : "FAIL (" + std::to_string(failures) + " broken invariants)")
              << " (seed " << seed << ")\n";
    if (!o.keep && !temp_dir.empty() && failures == 0) {
        std::error_code ec;
        std::filesystem::remove_all(temp_dir, ec);
    } else if (!temp_dir.empty()) {
        std::cout << "kept: " << temp_dir.string() << "\n";
    }
    return failures == 0 ? 0 : 1;
}

}  // namespace fieldsync::bench
