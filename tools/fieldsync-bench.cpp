// fieldsync-bench: a load generator for the sync server. It is not a test: it prints figures
// and asserts nothing about time. It does check that every change it sent was answered and
// that the pull returned every record, because figures for a run that lost data mean nothing.
//
// A run has three phases:
//   1. push: N devices (one thread and one keep-alive connection each) push change-sets of B
//      new records of about 200 bytes until C changes are sent;
//   2. pull: one client pulls everything from cursor "" page by page;
//   3. raw: the same records are upserted straight into SQLite with the store's durability
//      settings (WAL, synchronous=FULL) and B rows per transaction, as the ceiling the server
//      is measured against.
//
// Without --url the bench hosts the server itself: a store at --db (or a temporary file) and
// fieldsync::server::server on 127.0.0.1:0 in this process, with one device (and token) per
// simulated device. With --url and --token it drives a running server; every simulated device
// then shares that token (change ids stay unique per run).

#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/protocol/tuning.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include "invariants/store_check.hpp"
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fsrv = fieldsync::server;
namespace fproto = fieldsync::protocol;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

constexpr const char* k_usage =
    "usage: fieldsync-bench [--devices N] [--batch B] [--changes C] [--random-ids]\n"
    "                       [--db PATH | --url http://HOST:PORT --token TOKEN]\n"
    "                       [--server-threads T] [--pull-limit L] [--edit-pull] [--keep]\n"
    "       fieldsync-bench --soak SECONDS [--devices N] [--batch B] [--seed S] [--db PATH] [--keep]\n"
    "\n"
    "  --devices N         concurrent devices, each with its own connection (default 50)\n"
    "  --batch B           changes per change-set, 1 to 1000 (default 1000)\n"
    "  --changes C         changes in all (default 1000000)\n"
    "  --random-ids        UUIDv4 record ids instead of time-ordered UUIDv7\n"
    "  --db PATH           self-hosted: the store file (default: a temporary file)\n"
    "  --url URL --token T drive a running server instead of hosting one\n"
    "  --server-threads T  self-hosted server's I/O threads (default: the server's default)\n"
    "  --pull-limit L      page size of the pull phase (default and most: 5000)\n"
    "  --edit-pull         then patch one field of every record and pull the edits from the\n"
    "                      cursor of the full pull, whole and as field diffs\n"
    "  --keep              keep the temporary store and the raw SQLite file\n"
    "\n"
    "  --soak SECONDS      self-hosted soak: N devices write for SECONDS (new records, edits of\n"
    "                      shared and own records, deletes; change-sets of 1 to B changes,\n"
    "                      default 8), each pulling as it goes; then the store invariants are\n"
    "                      checked and every device's pulled copy is compared with a full pull.\n"
    "                      Prints figures and PASS or FAIL; exits 1 on a broken invariant.\n"
    "  --seed S            soak: the seed of the devices' choices (default: random, printed)\n";

// Retries of one request after a transient failure (connection lost, 503, 5xx). Pushes are
// idempotent (same batch and change ids), so a retry is safe; more than a few means the
// server is down and the run is void.
constexpr int k_max_attempts = 8;
constexpr std::chrono::milliseconds k_first_backoff{50};

// A record of the bench is about this many bytes of JSON, as issue 2 asks.
constexpr std::size_t k_record_bytes = 200;

// The collection written: its records are the smallest of the default schema with free text.
constexpr const char* k_collection = "study_sessions";

struct options {
    int devices = 50;
    std::int64_t batch = 1000;
    std::int64_t changes = 1'000'000;
    bool random_ids = false;
    std::string db;
    std::string url;
    std::string token;
    int server_threads = 0;
    std::int64_t pull_limit = fproto::tuning::max_pull_limit;
    bool edit_pull = false;
    bool keep = false;
    std::int64_t soak_seconds = 0;      // > 0: soak mode
    bool batch_given = false;
    std::optional<std::uint64_t> seed;
};

std::optional<options> parse_args(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= argc) return std::nullopt;
            return std::string(argv[++i]);
        };
        auto count = [&](std::int64_t min, std::int64_t max) -> std::optional<std::int64_t> {
            const auto v = value();
            if (!v) return std::nullopt;
            return fproto::parse_integer(*v, min, max);  // "1,000,000" reads as written
        };
        if (a == "--help" || a == "-h") {
            std::cout << k_usage;
            std::exit(0);
        } else if (a == "--devices") {
            const auto v = count(1, 10'000);
            if (!v) return std::nullopt;
            o.devices = static_cast<int>(*v);
        } else if (a == "--batch") {
            const auto v = count(1, static_cast<std::int64_t>(fproto::tuning::max_changes_per_batch));
            if (!v) return std::nullopt;
            o.batch = *v;
            o.batch_given = true;
        } else if (a == "--soak") {
            const auto v = count(1, 30 * 24 * 3600);
            if (!v) return std::nullopt;
            o.soak_seconds = *v;
        } else if (a == "--seed") {
            const auto v = count(0, INT64_MAX);
            if (!v) return std::nullopt;
            o.seed = static_cast<std::uint64_t>(*v);
        } else if (a == "--changes") {
            const auto v = count(1, 1'000'000'000);
            if (!v) return std::nullopt;
            o.changes = *v;
        } else if (a == "--random-ids") {
            o.random_ids = true;
        } else if (a == "--db") {
            const auto v = value();
            if (!v) return std::nullopt;
            o.db = *v;
        } else if (a == "--url") {
            const auto v = value();
            if (!v) return std::nullopt;
            o.url = *v;
        } else if (a == "--token") {
            const auto v = value();
            if (!v) return std::nullopt;
            o.token = *v;
        } else if (a == "--server-threads") {
            const auto v = count(1, 256);
            if (!v) return std::nullopt;
            o.server_threads = static_cast<int>(*v);
        } else if (a == "--pull-limit") {
            const auto v = count(1, fproto::tuning::max_pull_limit);
            if (!v) return std::nullopt;
            o.pull_limit = *v;
        } else if (a == "--edit-pull") {
            o.edit_pull = true;
        } else if (a == "--keep") {
            o.keep = true;
        } else {
            return std::nullopt;
        }
    }
    if (o.url.empty() != o.token.empty()) return std::nullopt;  // --url and --token go together
    if (!o.url.empty() && !o.db.empty()) return std::nullopt;
    // A soak checks the store file afterwards, so it hosts the server itself.
    if (o.soak_seconds > 0 && !o.url.empty()) return std::nullopt;
    return o;
}

struct endpoint_address {
    std::string host;
    std::string port;
};

std::optional<endpoint_address> parse_url(std::string url) {
    const std::string scheme = "http://";
    if (url.rfind(scheme, 0) != 0) return std::nullopt;  // TLS belongs to a proxy, not the bench
    url.erase(0, scheme.size());
    if (const auto slash = url.find('/'); slash != std::string::npos) url.erase(slash);
    const auto colon = url.rfind(':');
    if (colon == std::string::npos) return endpoint_address{url, "80"};
    auto host = url.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return endpoint_address{host, url.substr(colon + 1)};
}

// ---- records ---------------------------------------------------------------------------

const char* const k_communes[] = {"Bình Hòa", "Bình Thành", "Châu Bình", "Châu Hòa", "Hưng Lễ", "Hưng Nhượng",
                                  "Hưng Phong", "Long Mỹ", "Lương Hòa", "Lương Phú", "Lương Quới", "Mỹ Thạnh",
                                  "Phong Mỹ", "Phong Nẫm", "Phước Long", "Sơn Phú", "Tân Hào", "Tân Lợi Thạnh",
                                  "Tân Thanh", "Thạnh Phú Đông", "Thuận Điền"};
const char* const k_audiences[] = {"giáo viên", "đảng viên", "cán bộ xã", "học sinh trung học phổ thông"};
constexpr std::size_t k_commune_count = std::size(k_communes);

std::string unit_of(std::int64_t i) { return "xa-" + std::to_string(i % static_cast<std::int64_t>(k_commune_count)); }

// The JSON text of record i: a study session (default schema) padded to about 200 bytes.
// A pure function of i, so the raw SQLite phase writes the very same bytes.
std::string record_data(std::int64_t i) {
    const auto commune = static_cast<std::size_t>(i) % k_commune_count;
    const std::int64_t invited = 20 + i % 80;
    const std::int64_t attended = invited - i % 7;
    char date[16];
    std::snprintf(date, sizeof date, "2014-%02d-%02d", static_cast<int>(1 + i % 12), static_cast<int>(1 + i % 28));
    std::string s;
    s.reserve(k_record_bytes + 16);
    s += R"({"unit":")";
    s += unit_of(i);
    s += R"(","date":")";
    s += date;
    s += R"(","audience":")";
    s += k_audiences[static_cast<std::size_t>(i) % std::size(k_audiences)];
    s += R"(","invited":)";
    s += std::to_string(invited);
    s += R"(,"attended":)";
    s += std::to_string(attended);
    s += R"(,"notes":"Học tập chuyên đề tại xã )";
    s += k_communes[commune];
    s += " #";
    s += std::to_string(i);
    // The padding is ASCII so no UTF-8 sequence is cut; the closing `"}` takes two bytes.
    if (s.size() + 2 < k_record_bytes) s.append(k_record_bytes - 2 - s.size(), '.');
    s += "\"}";
    return s;
}

using record_id = std::array<char, 36>;

// Record ids as devices make them. Time-ordered ids (UUIDv7, RFC 9562: 48-bit Unix ms, then a
// 12-bit sequence for ids made in the same millisecond) keep inserts near the right edge of
// the primary-key B-tree; UUIDv4 scatters them, which is what --random-ids measures.
class id_maker {
public:
    explicit id_maker(std::uint64_t seed) : rng_(seed) {}

    void next(bool random, record_id& out) {
        const std::uint64_t r1 = rng_();
        const std::uint64_t r2 = rng_();
        fproto::uuid_bytes b;
        if (random) {
            for (int i = 0; i < 8; ++i) {
                b[i] = static_cast<std::uint8_t>(r1 >> (8 * i));
                b[8 + i] = static_cast<std::uint8_t>(r2 >> (8 * i));
            }
            b = fproto::uuid_v4(b);
        } else {
            const auto ms = static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count());
            b = v7_.next(ms, r1, r2);
        }
        fproto::format_uuid(b, out.data());
    }

private:
    std::mt19937_64 rng_;
    fproto::uuid_v7_maker v7_;
};

// ---- HTTP --------------------------------------------------------------------------------

class http_client {
public:
    http_client(endpoint_address where, std::string token) : where_(std::move(where)), token_(std::move(token)) {}

    // POSTs a body to /v1/sync and returns (status, body). Reconnects once per call when the
    // kept-alive connection turns out closed; throws on a connection failure.
    std::pair<unsigned, std::string> post_sync(const std::string& body) {
        for (int attempt = 0;; ++attempt) {
            try {
                if (!stream_) connect();
                http::request<http::string_body> req{http::verb::post, "/v1/sync", 11};
                req.set(http::field::host, where_.host);
                req.set(http::field::authorization, "Bearer " + token_);
                req.set(http::field::content_type, "application/json");
                req.keep_alive(true);
                req.body() = body;
                req.prepare_payload();
                http::write(*stream_, req);
                http::response_parser<http::string_body> parser;
                parser.body_limit(boost::none);  // a pull page of 5000 records is a few MiB
                http::read(*stream_, buffer_, parser);
                auto res = parser.release();
                if (!res.keep_alive()) stream_.reset();
                return {res.result_int(), std::move(res.body())};
            } catch (const boost::system::system_error&) {
                stream_.reset();
                if (attempt > 0) throw;
            }
        }
    }

private:
    void connect() {
        tcp::resolver resolver(ioc_);
        auto stream = std::make_unique<beast::tcp_stream>(ioc_);
        stream->connect(resolver.resolve(where_.host, where_.port));
        stream->socket().set_option(tcp::no_delay(true));
        buffer_.clear();
        stream_ = std::move(stream);
    }

    endpoint_address where_;
    std::string token_;
    net::io_context ioc_;
    std::unique_ptr<beast::tcp_stream> stream_;
    beast::flat_buffer buffer_;
};

bool transient_status(unsigned status) { return status == 408 || status == 429 || status >= 500; }

// Sends `body` until it gets a non-transient answer; returns it, or throws after
// k_max_attempts. Counts retries.
std::pair<unsigned, std::string> post_with_retry(http_client& client, const std::string& body,
                                                 std::atomic<std::int64_t>& retries) {
    auto backoff = k_first_backoff;
    std::string last_error;
    for (int attempt = 1; attempt <= k_max_attempts; ++attempt) {
        try {
            auto res = client.post_sync(body);
            if (!transient_status(res.first)) return res;
            last_error = "HTTP " + std::to_string(res.first) + ": " + res.second;
        } catch (const std::exception& e) {
            last_error = e.what();
        }
        ++retries;
        std::this_thread::sleep_for(backoff);
        backoff *= 2;
    }
    throw std::runtime_error("giving up after " + std::to_string(k_max_attempts) + " attempts: " + last_error);
}

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
                body += R"({"change_id":"c-)";
                body += run_id;
                body += '-';
                body += std::to_string(i);
                body += R"(","collection":")";
                body += k_collection;
                body += R"(","id":")";
                body.append(ids[static_cast<std::size_t>(i)].data(), 36);
                body += R"(","unit_id":")";
                body += unit_of(i);
                body += R"(","op":"put","base_version":0,"data":)";
                body += record_data(i);
                body += '}';
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

class sqlite_db {
public:
    explicit sqlite_db(const std::string& path) {
        if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("sqlite3_open " + path + ": " + error());
    }
    ~sqlite_db() { sqlite3_close(db_); }
    sqlite_db(const sqlite_db&) = delete;
    sqlite_db& operator=(const sqlite_db&) = delete;

    void exec(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string(sql) + ": " + error());
    }
    sqlite3* get() const { return db_; }
    std::string error() const { return sqlite3_errmsg(db_); }

private:
    sqlite3* db_ = nullptr;
};

// The ceiling: the same records upserted into a table shaped like the store's heads, with the
// store's durability (WAL, synchronous=FULL) and B rows per transaction, from one thread. The
// server does more per change (history, the decided table, the merge rule, HTTP and JSON), so
// the ratio shows what that costs.
double run_raw(const std::string& path, const options& o, const std::vector<record_id>& ids) {
    sqlite_db db(path);
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    db.exec("CREATE TABLE IF NOT EXISTS records(collection TEXT NOT NULL, id TEXT NOT NULL, unit_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, data TEXT, PRIMARY KEY(collection, id)) WITHOUT ROWID");
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "INSERT INTO records(collection, id, unit_id, version, data) VALUES (?1, ?2, ?3, 1, ?4) "
        "ON CONFLICT(collection, id) DO UPDATE SET unit_id = ?3, version = version + 1, data = ?4";
    if (sqlite3_prepare_v2(db.get(), sql, -1, &stmt, nullptr) != SQLITE_OK)
        throw std::runtime_error("prepare: " + db.error());
    const std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);

    const auto t0 = clock_type::now();
    for (std::int64_t first = 0; first < o.changes; first += o.batch) {
        const std::int64_t last = std::min(o.changes, first + o.batch);
        db.exec("BEGIN IMMEDIATE");
        for (std::int64_t i = first; i < last; ++i) {
            const std::string unit = unit_of(i);
            const std::string data = record_data(i);
            sqlite3_bind_text(stmt, 1, k_collection, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 2, ids[static_cast<std::size_t>(i)].data(), 36, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 3, unit.data(), static_cast<int>(unit.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(stmt, 4, data.data(), static_cast<int>(data.size()), SQLITE_TRANSIENT);
            if (sqlite3_step(stmt) != SQLITE_DONE) throw std::runtime_error("upsert: " + db.error());
            sqlite3_reset(stmt);
        }
        db.exec("COMMIT");
    }
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string fixed(double v, int decimals = 1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::filesystem::path make_temp_dir() {
    const auto base = std::filesystem::temp_directory_path();
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
        auto p = base / ("fieldsync-bench-" + std::to_string(rd()));
        if (std::filesystem::create_directory(p)) return p;
    }
    throw std::runtime_error("cannot create a temporary directory in " + base.string());
}

// ---- soak ----------------------------------------------------------------------------------

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

    fsrv::store_options so;
    so.path = store_path;
    auto opened = fsrv::open_sqlite_store(so);
    if (!opened) throw std::runtime_error("opening the store: " + opened.err().message);
    auto st = std::move(opened).value();
    std::vector<soak_device> devices(static_cast<std::size_t>(o.devices));
    for (int k = 0; k < o.devices; ++k) {
        auto dev = st->add_device("soak-device-" + std::to_string(k), k_soak_unit, fsrv::device_role::field);
        if (!dev) throw std::runtime_error("adding a device: " + dev.err().message);
        devices[static_cast<std::size_t>(k)].index = k;
        devices[static_cast<std::size_t>(k)].token = dev->second;
    }
    fsrv::server_options sopt;
    if (o.server_threads > 0) sopt.threads = o.server_threads;
    sopt.log = [](std::string_view) {};  // a line per request would drown the figures
    auto srv = std::make_unique<fsrv::server>(sopt, *st);
    auto port = srv->start();
    if (!port) throw std::runtime_error("starting the server: " + port.err().message);
    const endpoint_address where{"127.0.0.1", std::to_string(*port)};

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
    std::map<std::string, std::int64_t> full;
    {
        http_client client(where, devices.front().token);
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
    }
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

int run(const options& o) {
    std::filesystem::path temp_dir;
    std::string store_path = o.db;
    std::string raw_path;
    if (o.url.empty() && store_path.empty()) {
        temp_dir = make_temp_dir();
        store_path = (temp_dir / "bench-store.db").string();
    }
    if (!temp_dir.empty())
        raw_path = (temp_dir / "raw-upsert.db").string();
    else if (!store_path.empty())
        raw_path = store_path + ".raw-upsert.db";
    else
        raw_path = (std::filesystem::temp_directory_path() / ("fieldsync-bench-raw-" + std::to_string(std::random_device{}()) + ".db")).string();

    // Self-hosted: the store, one device per simulated device, the server on an ephemeral port.
    std::unique_ptr<fsrv::store> st;
    std::unique_ptr<fsrv::server> srv;
    endpoint_address where;
    std::vector<std::string> tokens;
    if (o.url.empty()) {
        fsrv::store_options so;
        so.path = store_path;
        auto opened = fsrv::open_sqlite_store(so);
        if (!opened) throw std::runtime_error("opening the store: " + opened.err().message);
        st = std::move(opened).value();
        // The records name communes ("xa-N") that no unit tree places under the district, so
        // a field device of the district would have them refused out_of_scope (issue 4):
        // the simulated devices write anywhere, as admins do.
        for (int d = 0; d < o.devices; ++d) {
            auto dev = st->add_device("bench-device-" + std::to_string(d), "huyen-giong-trom", fsrv::device_role::admin);
            if (!dev) throw std::runtime_error("adding a device: " + dev.err().message);
            tokens.push_back(dev->second);
        }
        fsrv::server_options sopt;
        sopt.host = "127.0.0.1";
        sopt.port = 0;
        if (o.server_threads > 0) sopt.threads = o.server_threads;
        srv = std::make_unique<fsrv::server>(sopt, *st);
        auto port = srv->start();
        if (!port) throw std::runtime_error("starting the server: " + port.err().message);
        where = {"127.0.0.1", std::to_string(*port)};
        std::cout << "fieldsync-bench: self-hosted server on 127.0.0.1:" << *port << " ("
                  << (o.server_threads > 0 ? o.server_threads : fsrv::tuning::default_threads)
                  << " I/O threads), store " << store_path << "\n";
    } else {
        auto parsed = parse_url(o.url);
        if (!parsed) throw std::runtime_error("--url must look like http://HOST:PORT");
        where = *parsed;
        tokens.assign(static_cast<std::size_t>(o.devices), o.token);
        std::cout << "fieldsync-bench: server " << o.url << "\n";
    }
    std::cout << "fieldsync-bench: " << o.devices << " devices, " << o.batch << " changes per change-set, "
              << o.changes << " changes of ~" << k_record_bytes << "-byte records, "
              << (o.random_ids ? "random (UUIDv4)" : "time-ordered (UUIDv7)") << " ids, "
              << std::thread::hardware_concurrency() << " cores\n"
              << std::flush;

    // Change ids must be new for every run against the same store (the server would answer
    // repeats from its decided table without writing anything).
    const std::string run_id = [] {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(std::random_device{}()) << 32 |
                                                      std::random_device{}());
        return std::string(buf);
    }();

    // Phase 1: push.
    std::vector<record_id> ids(static_cast<std::size_t>(o.changes));
    push_totals pushed;
    pushed.latencies_ms.reserve(static_cast<std::size_t>(o.changes / o.batch + o.devices));
    const auto t0 = clock_type::now();
    {
        std::vector<std::thread> devices;
        for (int d = 0; d < o.devices; ++d) {
            const std::int64_t begin = o.changes * d / o.devices;
            const std::int64_t end = o.changes * (d + 1) / o.devices;
            devices.emplace_back(run_device, d, begin, end, std::cref(o), std::cref(where),
                                 std::cref(tokens[static_cast<std::size_t>(d)]), std::cref(run_id), std::ref(ids),
                                 std::ref(pushed));
        }
        for (auto& t : devices) t.join();
    }
    const double push_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const std::int64_t accepted = pushed.applied + pushed.merged;
    const auto sets = static_cast<std::int64_t>(pushed.latencies_ms.size());
    std::cout << "push: " << accepted << " accepted of " << o.changes << " changes in " << sets << " change-sets, "
              << fixed(push_s, 2) << " s: " << fixed(static_cast<double>(accepted) / push_s, 0)
              << " accepted changes/s (applied " << pushed.applied << ", merged " << pushed.merged << ", conflict "
              << pushed.conflict << ", rejected " << pushed.rejected << "; retries " << pushed.retries << ")\n";
    std::cout << "change-set latency: p50 " << fixed(percentile(pushed.latencies_ms, 0.50)) << " ms, p99 "
              << fixed(percentile(pushed.latencies_ms, 0.99)) << " ms, max "
              << fixed(percentile(pushed.latencies_ms, 1.0)) << " ms\n"
              << std::flush;
    int exit_code = 0;
    if (!pushed.failures.empty()) {
        for (const auto& f : pushed.failures) std::cerr << "fieldsync-bench: " << f << "\n";
        exit_code = 1;
    }
    if (!pushed.first_rejection.empty())
        std::cerr << "fieldsync-bench: first rejected change: " << pushed.first_rejection << "\n";

    // Phase 2: pull everything.
    std::atomic<std::int64_t> pull_retries{0};
    const auto pulled = run_pull(where, tokens.front(), o.pull_limit, pull_retries);
    std::cout << "pull: " << pulled.records << " records in " << pulled.pages << " pages of up to " << o.pull_limit
              << ", " << fixed(pulled.seconds, 2) << " s: " << fixed(static_cast<double>(pulled.records) / pulled.seconds, 0)
              << " changes/s\n"
              << std::flush;
    // Self-hosted on a fresh store, the feed holds exactly the accepted records.
    if (o.url.empty() && o.db.empty() && pulled.records != accepted) {
        std::cerr << "fieldsync-bench: the pull returned " << pulled.records << " records, but " << accepted
                  << " were accepted\n";
        exit_code = 1;
    }

    if (o.edit_pull && o.url.empty() && o.db.empty()) {
        // Phase 2b: a one-field edit of every record, pulled from the full pull's cursor as a
        // replica that holds every record would: whole, then as field diffs.
        std::atomic<std::int64_t> edit_retries{0};
        const auto te = clock_type::now();
        run_edits(o, where, tokens.front(), run_id, ids, edit_retries);
        std::cout << "edits: " << ids.size() << " one-field patches in "
                  << fixed(std::chrono::duration<double>(clock_type::now() - te).count(), 2) << " s\n";
        for (const bool diffs : {false, true}) {
            const auto p = run_pull(where, tokens.front(), o.pull_limit, pull_retries, pulled.cursor, diffs);
            std::cout << "edit pull " << (diffs ? "as diffs" : "whole   ") << ": " << p.records << " records ("
                      << p.diffs << " diffs) in " << p.pages << " pages, " << fixed(p.seconds, 2)
                      << " s: " << fixed(static_cast<double>(p.records) / p.seconds, 0) << " changes/s, "
                      << fixed(static_cast<double>(p.bytes) / static_cast<double>(std::max<std::int64_t>(p.records, 1)), 1)
                      << " bytes/record\n"
                      << std::flush;
        }
    }

    if (srv) srv->stop();
    if (st) st->close();

    // Phase 3: the raw SQLite ceiling, with the server stopped so it has the machine alone.
    const double raw_s = run_raw(raw_path, o, ids);
    const double raw_rate = static_cast<double>(o.changes) / raw_s;
    const double server_rate = static_cast<double>(accepted) / push_s;
    std::cout << "raw SQLite upsert (WAL, synchronous=FULL, " << o.batch << " rows per transaction, 1 thread): "
              << o.changes << " rows, " << fixed(raw_s, 2) << " s: " << fixed(raw_rate, 0) << " rows/s\n";
    std::cout << "ratio: server accepted changes/s / raw upserts/s = " << fixed(server_rate / raw_rate, 3) << "\n";

    if (!o.keep) {
        std::error_code ec;
        if (!temp_dir.empty()) {
            std::filesystem::remove_all(temp_dir, ec);
        } else {
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(raw_path + suffix, ec);
        }
    } else {
        std::cout << "kept: " << (temp_dir.empty() ? raw_path : temp_dir.string()) << "\n";
    }
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    const auto o = parse_args(argc, argv);
    if (!o) {
        std::cerr << k_usage;
        return 2;
    }
    try {
        return o->soak_seconds > 0 ? run_soak(*o) : run(*o);
    } catch (const std::exception& e) {
        std::cerr << "fieldsync-bench: " << e.what() << "\n";
        return 1;
    }
}
