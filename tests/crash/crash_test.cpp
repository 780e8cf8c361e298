// The crash test (issue 7; ARCHITECTURE.md, "Testing"). Runs the real fieldsync-server binary
// on a temp store, lets several writer devices push change-sets with unique change_ids, kills
// the server with SIGKILL at random moments, restarts it on the same store, and lets the
// devices retry every unanswered change-set with the same batch_id and change_ids. Then it
// checks what the promise to users says:
//   - the invariants of tools/invariants/store_check.hpp (every answered change present exactly
//     once at its answered version, nothing unanswered written, integrity_check, a feed
//     without gap or repeat), shared with fieldsync-bench --soak;
//   - sending every change-set again returns the first answers.
//
// usage: fieldsync_crash_test [--uploads] [--kills N] [--devices N] [--seed S] [--server PATH] [--keep]
//        (--uploads: attachment uploads under kills instead of change-sets; see uploads_main)
//        fieldsync_crash_test --disk-full      (disk_full.cpp)
// FIELDSYNC_CRASH_SEED=S replays a run's kill schedule and data (the seed is printed first);
// thread timing still varies, so a replay hits nearby, not identical, moments.

#include "crash/http_client.hpp"
#include "invariants/store_check.hpp"

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/server/blob_store.hpp>
#include <fieldsync/server/store.hpp>

#include <openssl/evp.h>

#include <sqlite3.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

int disk_full_main();  // disk_full.cpp

namespace {

namespace fs = std::filesystem;
namespace srv = fieldsync::server;
namespace proto = fieldsync::protocol;
using proto::json;
using namespace std::chrono_literals;
using fieldsync::crash::http;

int g_failures = 0;
std::mutex g_out;

void failure(const std::string& what) {
    std::lock_guard lock(g_out);
    ++g_failures;
    if (g_failures <= 50) std::cerr << "FAIL: " << what << "\n";
}

// ---- the server process ------------------------------------------------------------------

class server_process {
public:
    server_process(std::string binary, fs::path db, fs::path dir)
        : binary_(std::move(binary)), db_(std::move(db)), dir_(std::move(dir)) {}
    ~server_process() {
        if (pid_ > 0) kill_now();
    }

    /// Starts the server and waits for its "listening on" line; false if it did not come.
    bool start() {
        const fs::path out = dir_ / "server.stdout";
        const fs::path err = dir_ / "server.stderr";
        fs::remove(out);
        pid_ = ::fork();
        if (pid_ < 0) return false;
        if (pid_ == 0) {
            const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            ::dup2(o, 1);
            ::dup2(e, 2);
            ::execl(binary_.c_str(), binary_.c_str(), "--db", db_.c_str(), "--listen", "127.0.0.1:0", "--threads", "2",
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 3000; ++i) {  // up to 30 s: a sanitizer build starts slowly
            std::ifstream in(out);
            std::string line;
            if (std::getline(in, line) && in) {
                const auto colon = line.rfind(':');
                if (line.rfind("fieldsync-server listening on ", 0) == 0 && colon != std::string::npos) {
                    port_.store(static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1))));
                    return true;
                }
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    void kill_now() {
        port_.store(0);
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    /// SIGTERM and wait; the exit status (or -1 if it died of a signal).
    int stop() {
        port_.store(0);
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

    std::uint16_t port() const { return port_.load(); }
    std::string log() const {
        std::ifstream in(dir_ / "server.stderr");
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

private:
    std::string binary_;
    fs::path db_, dir_;
    pid_t pid_ = -1;
    std::atomic<std::uint16_t> port_{0};
};

// ---- the devices ---------------------------------------------------------------------------

struct sent_change {
    std::string change_id, collection, id;
};

struct batch_record {
    std::string batch_id;
    std::string body;  // exactly the bytes sent every time
    std::vector<sent_change> changes;
    json results;      // the answer's "results", once answered
    int attempts = 0;
};

struct device_state {
    int index = 0;
    std::string token;
    std::vector<batch_record> batches;  // answered, in order
    std::map<std::string, std::int64_t> known;  // record id -> last version heard of
};

constexpr const char* k_unit = "xa-binh-hoa";

// One change-set of 1-4 changes on records that devices share (merges and conflicts) and on
// records of their own (fast-forwards).
batch_record make_batch(device_state& d, int n, std::mt19937_64& rng) {
    batch_record b;
    b.batch_id = "d" + std::to_string(d.index) + "-b" + std::to_string(n);
    json changes = json::array();
    const int count = 1 + static_cast<int>(rng() % 4);
    std::set<std::string> ids;
    for (int k = 0; k < count; ++k) {
        const bool shared = rng() % 3 == 0;
        const std::string id = shared ? "m-shared-" + std::to_string(rng() % 4)
                                      : "m-d" + std::to_string(d.index) + "-" + std::to_string(rng() % 12);
        if (!ids.insert(id).second) continue;
        const std::string cid = b.batch_id + "-c" + std::to_string(k);
        const auto base = d.known[id];
        json c = {{"change_id", cid}, {"collection", "members"}, {"id", id}, {"unit_id", k_unit}, {"base_version", base}};
        const auto pick = rng() % 10;
        if (pick < 6 || base == 0) {
            c["op"] = "put";
            c["data"] = {{"name", "Nguyễn Văn " + cid},
                         {"cell", "ap-" + std::to_string(d.index)},
                         {"notes", "lần " + std::to_string(n)}};
        } else if (pick < 9) {
            c["op"] = "patch";
            c["data"] = {{"notes", "sửa " + cid}};
        } else {
            c["op"] = "delete";
        }
        changes.push_back(std::move(c));
        b.changes.push_back({cid, "members", id});
    }
    b.body = json{{"batch_id", b.batch_id}, {"changes", changes}, {"cursor", ""}, {"limit", 1}}.dump();
    return b;
}

// Sends a change-set until it is answered 200. A dead server, a cut answer or a 5xx is
// retried; any other answer is a failure (and the change-set is given up).
bool send_until_answered(const server_process& server, const std::string& token, batch_record& b,
                         const std::atomic<bool>& abandon) {
    while (!abandon.load()) {
        const auto port = server.port();
        if (port == 0) {
            std::this_thread::sleep_for(5ms);
            continue;
        }
        ++b.attempts;
        const auto r = http(port, "POST", "/v1/sync", token, b.body);
        if (r.status == 200) {
            auto j = proto::parse_json(r.body, 64);
            if (!j || !j->contains("results") || !(*j)["results"].is_array() ||
                (*j)["results"].size() != b.changes.size()) {
                failure(b.batch_id + ": a 200 answer without one result per change: " + r.body.substr(0, 300));
                return false;
            }
            b.results = (*j)["results"];
            return true;
        }
        if (r.status != 0 && r.status < 500) {
            failure(b.batch_id + ": answered " + std::to_string(r.status) + ": " + r.body.substr(0, 300));
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2 + b.attempts % 20));
    }
    return false;
}

void run_device(device_state& d, const server_process& server, std::uint64_t seed, const std::atomic<bool>& stop,
                const std::atomic<bool>& abandon, std::atomic<long>& answered) {
    std::mt19937_64 rng(seed);
    for (int n = 0; !stop.load(); ++n) {
        auto b = make_batch(d, n, rng);
        if (!send_until_answered(server, d.token, b, abandon)) return;
        for (std::size_t k = 0; k < b.changes.size(); ++k) {
            const auto& r = b.results[k];
            if (r.value("change_id", "") != b.changes[k].change_id)
                failure(b.batch_id + ": results out of order: " + r.dump());
            const auto status = r.value("status", "");
            if (status != "rejected" && r.contains("version")) d.known[b.changes[k].id] = r["version"].get<std::int64_t>();
        }
        d.batches.push_back(std::move(b));
        answered.fetch_add(1);
    }
}

// ---- the checks ----------------------------------------------------------------------------

// The checks themselves are shared with fieldsync-bench --soak (tools/invariants).
void check_store(const fs::path& db, const std::vector<device_state>& devices) {
    std::vector<fieldsync::tools::answered_change> answered;
    for (const auto& d : devices)
        for (const auto& b : d.batches)
            for (std::size_t k = 0; k < b.changes.size(); ++k)
                answered.push_back({b.changes[k].change_id, b.changes[k].collection, b.changes[k].id, b.results[k]});
    const auto t = fieldsync::tools::check_store(db, answered, failure);
    std::printf("crash: %ld records, %ld history versions; answers: %ld applied, %ld merged, %ld conflict, %ld rejected\n",
                t.records, t.versions, t.applied, t.merged, t.conflicts, t.rejected);
}

void replay_all(const server_process& server, const std::vector<device_state>& devices) {
    std::atomic<bool> never{false};
    long n = 0;
    for (const auto& d : devices)
        for (const auto& b : d.batches) {
            batch_record again = b;
            if (!send_until_answered(server, d.token, again, never)) continue;
            ++n;
            for (std::size_t k = 0; k < b.changes.size(); ++k) {
                const auto& first = b.results[k];
                const auto& now = again.results[k];
                if (first.value("status", "") != now.value("status", "") ||
                    first.value("version", std::int64_t{-1}) != now.value("version", std::int64_t{-1}) ||
                    first.value("conflict_id", "") != now.value("conflict_id", ""))
                    failure("replay of " + b.changes[k].change_id + " answered " + now.dump() + ", first " + first.dump());
            }
        }
    std::printf("crash: replayed %ld change-sets\n", n);
}

struct options {
    int kills = 20;
    int devices = 4;
    std::uint64_t seed = 0;
    bool have_seed = false;
    std::string server = FIELDSYNC_SERVER_BINARY;
    bool keep = false;
    bool uploads = false;  // --uploads: kills during attachment uploads instead of syncs
};

int crash_main(const options& o) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t seed = o.have_seed ? o.seed : std::random_device{}();
    std::printf("crash: seed %llu (replay: FIELDSYNC_CRASH_SEED=%llu), %d kills, %d devices, server %s\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed), o.kills, o.devices,
                o.server.c_str());
    std::fflush(stdout);
    std::mt19937_64 rng(seed);

    const fs::path dir = fs::temp_directory_path() / ("fieldsync-crash-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path db = dir / "store.db";

    std::vector<device_state> devices(static_cast<std::size_t>(o.devices));
    {
        srv::store_options so;
        so.path = db.string();
        auto st = srv::open_sqlite_store(so);
        if (!st) {
            std::fprintf(stderr, "crash: cannot create the store: %s\n", st.err().message.c_str());
            return 1;
        }
        for (int k = 0; k < o.devices; ++k) {
            auto added = (*st)->add_device("crash device " + std::to_string(k), k_unit, srv::device_role::field);
            if (!added) {
                std::fprintf(stderr, "crash: add_device: %s\n", added.err().message.c_str());
                return 1;
            }
            devices[static_cast<std::size_t>(k)].index = k;
            devices[static_cast<std::size_t>(k)].token = added->second;
        }
        (*st)->close();
    }

    server_process server(o.server, db, dir);
    if (!server.start()) {
        std::fprintf(stderr, "crash: the server did not start:\n%s\n", server.log().c_str());
        return 1;
    }
    std::atomic<bool> stop{false}, abandon{false};
    std::atomic<long> answered{0};
    std::vector<std::thread> threads;
    for (auto& d : devices)
        threads.emplace_back(run_device, std::ref(d), std::cref(server), rng(), std::cref(stop), std::cref(abandon),
                             std::ref(answered));

    int kills = 0, restart_failures = 0;
    long answered_at_last_kill = 0, kills_without_progress = 0;
    for (; kills < o.kills; ++kills) {
        // Mostly short lives, so kills land in requests and commits, sometimes a longer one.
        const auto life = rng() % 8 == 0 ? 100 + rng() % 400 : 1 + rng() % 60;
        std::this_thread::sleep_for(std::chrono::milliseconds(life));
        server.kill_now();
        const long now = answered.load();
        if (now == answered_at_last_kill) ++kills_without_progress;
        answered_at_last_kill = now;
        if (!server.start()) {
            ++restart_failures;
            failure("the server did not restart after kill " + std::to_string(kills + 1) + ":\n" + server.log());
            break;
        }
    }
    // Let every device get its change-set in flight answered, then stop.
    std::this_thread::sleep_for(200ms);
    stop.store(true);
    bool joined = true;
    for (auto& t : threads) t.join();
    const int rc = server.stop();
    if (rc != 0) failure("the server exited " + std::to_string(rc) + " on SIGTERM");
    (void)joined;

    long batches = 0, changes = 0, retries = 0;
    for (const auto& d : devices)
        for (const auto& b : d.batches) {
            ++batches;
            changes += static_cast<long>(b.changes.size());
            retries += b.attempts - 1;
        }
    std::printf("crash: %d kills (%ld with no change-set answered since the last), %ld change-sets of %ld changes "
                "answered, %ld retries\n",
                kills, kills_without_progress, batches, changes, retries);
    if (batches == 0) failure("no change-set was ever answered");

    check_store(db, devices);
    if (server.start()) {
        replay_all(server, devices);
        server.stop();
        check_store(db, devices);  // the replay changed nothing
    } else {
        failure("the server did not start for the replay");
    }
    (void)restart_failures;

    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (g_failures) {
        std::printf("crash: FAILED with %d failures (seed %llu; store kept in %s), %.1f s\n", g_failures,
                    static_cast<unsigned long long>(seed), dir.c_str(), secs);
        return 1;
    }
    if (!o.keep) fs::remove_all(dir);
    std::printf("crash: ok, %.1f s\n", secs);
    return 0;
}

// ---- uploads under kills (issue 19) --------------------------------------------------------
// Devices upload photos chunk by chunk while the server is killed; after each chunk answered,
// the server must hold at least that much of the upload for the rest of the run (an answered
// offset is never lost), a blob answered complete must stay complete, and at the end every
// blob is kept whole: its file hashes to its name.

std::string sha256_hex(std::string_view bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += k_hex[md[i] >> 4];
        out += k_hex[md[i] & 15];
    }
    return out;
}

struct upload_job {
    std::string bytes, sha;
    std::int64_t acked = 0;     // the highest offset the server answered
    bool complete = false;      // answered complete
    std::int64_t sent = 0;      // chunk bytes sent, answered or not
};

// The offset the server holds now, or -1 when it did not answer.
std::int64_t held_offset(std::uint16_t port, const std::string& token, upload_job& j) {
    const auto r = http(port, "GET", "/v1/uploads/" + j.sha, token, "");
    if (r.status != 200) return -1;
    auto b = proto::parse_json(r.body, 8);
    if (!b || !b->contains("offset")) return -1;
    const auto offset = (*b)["offset"].get<std::int64_t>();
    const bool complete = (*b)["complete"].get<bool>();
    if (offset < j.acked) failure(j.sha.substr(0, 12) + ": the server holds " + std::to_string(offset) + " bytes after answering " + std::to_string(j.acked));
    if (j.complete && !complete) failure(j.sha.substr(0, 12) + ": answered complete, now incomplete");
    if (complete) j.complete = true;
    return offset;
}

void run_uploader(std::vector<upload_job>& jobs, const std::string& token, const server_process& server,
                  const std::atomic<bool>& abandon, std::size_t chunk) {
    for (auto& j : jobs) {
        while (!j.complete && !abandon.load()) {
            const auto port = server.port();
            if (port == 0) {
                std::this_thread::sleep_for(5ms);
                continue;
            }
            const auto at = held_offset(port, token, j);
            if (at < 0 || j.complete) continue;
            const auto part = j.bytes.substr(static_cast<std::size_t>(at), chunk);
            j.sent += static_cast<std::int64_t>(part.size());
            const auto r = http(port, "PUT", "/v1/uploads/" + j.sha, token, part, 20'000,
                                "Content-Type: image/jpeg\r\nUpload-Offset: " + std::to_string(at) +
                                    "\r\nUpload-Length: " + std::to_string(j.bytes.size()) + "\r\n");
            if (r.status == 0 || r.status >= 500) continue;  // killed meanwhile: ask again
            if (r.status == 409) continue;                   // another attempt's chunk landed: ask again
            if (r.status != 200 && r.status != 201) {
                failure(j.sha.substr(0, 12) + ": a chunk answered " + std::to_string(r.status) + ": " + r.body);
                return;
            }
            auto b = proto::parse_json(r.body, 8);
            if (!b) continue;
            j.acked = std::max(j.acked, (*b)["offset"].get<std::int64_t>());
            if ((*b)["complete"].get<bool>()) j.complete = true;
        }
    }
}

int uploads_main(const options& o) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t seed = o.have_seed ? o.seed : std::random_device{}();
    std::printf("crash uploads: seed %llu, %d kills, %d devices\n", static_cast<unsigned long long>(seed), o.kills,
                o.devices);
    std::fflush(stdout);
    std::mt19937_64 rng(seed);
    const fs::path dir = fs::temp_directory_path() / ("fieldsync-crash-up-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path db = dir / "store.db";
    constexpr std::size_t chunk = 32 * 1024;

    std::vector<std::string> tokens;
    {
        srv::store_options so;
        so.path = db.string();
        auto st = srv::open_sqlite_store(so);
        if (!st) return 1;
        for (int k = 0; k < o.devices; ++k)
            tokens.push_back((*st)->add_device("uploader " + std::to_string(k), k_unit, srv::device_role::field)->second);
        (*st)->close();
    }
    // Each device: photos of 100 to 400 KiB (JPEG's magic, then seeded noise).
    std::vector<std::vector<upload_job>> jobs(tokens.size());
    std::int64_t total = 0;
    for (auto& list : jobs)
        for (int n = 0; n < 5; ++n) {
            upload_job j;
            j.bytes = std::string("\xFF\xD8\xFF\xE0", 4);
            const auto size = 100 * 1024 + rng() % (300 * 1024);
            while (j.bytes.size() < size) j.bytes.push_back(static_cast<char>(rng() & 0xFF));
            j.sha = sha256_hex(j.bytes);
            total += static_cast<std::int64_t>(j.bytes.size());
            list.push_back(std::move(j));
        }

    server_process server(o.server, db, dir);
    if (!server.start()) return 1;
    std::atomic<bool> abandon{false};
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < tokens.size(); ++k)
        threads.emplace_back(run_uploader, std::ref(jobs[k]), tokens[k], std::cref(server), std::cref(abandon), chunk);
    int kills = 0;
    for (; kills < o.kills; ++kills) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng() % 40));
        server.kill_now();
        if (!server.start()) {
            failure("the server did not restart:\n" + server.log());
            abandon.store(true);
            break;
        }
    }
    // The uploads finish on a live server (bounded, so a broken build fails rather than hangs).
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    for (auto& t : threads) {
        while (std::chrono::steady_clock::now() < deadline) {
            bool all = true;
            for (const auto& list : jobs)
                for (const auto& j : list) all = all && j.complete;
            if (all) break;
            std::this_thread::sleep_for(20ms);
        }
        abandon.store(true);
        t.join();
    }
    std::int64_t sent = 0;
    for (auto& list : jobs)
        for (auto& j : list) {
            sent += j.sent;
            if (!j.complete) failure(j.sha.substr(0, 12) + ": never completed");
            const fs::path file = fs::path(srv::default_blob_dir(db.string())) / j.sha.substr(0, 2) / j.sha;
            std::ifstream in(file, std::ios::binary);
            std::stringstream ss;
            ss << in.rdbuf();
            if (sha256_hex(ss.str()) != j.sha) failure(j.sha.substr(0, 12) + ": the kept file does not hash to its name");
        }
    if (server.port()) server.stop();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("crash uploads: %d kills, %lld bytes in blobs, %lld chunk bytes sent (%.2fx: chunks in flight at a kill "
                "are sent again)\n",
                kills, static_cast<long long>(total), static_cast<long long>(sent),
                static_cast<double>(sent) / static_cast<double>(total));
    if (g_failures) {
        std::printf("crash uploads: FAILED with %d failures (seed %llu; kept in %s), %.1f s\n", g_failures,
                    static_cast<unsigned long long>(seed), dir.c_str(), secs);
        return 1;
    }
    if (!o.keep) fs::remove_all(dir);
    std::printf("crash uploads: ok, %.1f s\n", secs);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (const char* s = std::getenv("FIELDSYNC_CRASH_SEED")) {
        o.seed = std::strtoull(s, nullptr, 10);
        o.have_seed = true;
    }
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "crash: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--disk-full") return disk_full_main();
        if (a == "--uploads") o.uploads = true;
        else if (a == "--kills") o.kills = std::stoi(next());
        else if (a == "--devices") o.devices = std::stoi(next());
        else if (a == "--seed") { o.seed = std::stoull(next()); o.have_seed = true; }
        else if (a == "--server") o.server = next();
        else if (a == "--keep") o.keep = true;
        else {
            std::fprintf(stderr,
                         "usage: fieldsync_crash_test [--uploads] [--kills N] [--devices N] [--seed S] [--server PATH] [--keep]\n"
                         "       fieldsync_crash_test --disk-full\n");
            return 2;
        }
    }
    return o.uploads ? uploads_main(o) : crash_main(o);
}
