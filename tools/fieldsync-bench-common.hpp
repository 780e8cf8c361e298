#pragma once
// What the modes of fieldsync-bench share: the options, the HTTP client with its retries, the
// self-hosted store and server, the records and their ids, and the figures' formatting.

#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/protocol/tuning.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fieldsync::bench {

namespace fsrv = fieldsync::server;
namespace fproto = fieldsync::protocol;
using clock_type = std::chrono::steady_clock;

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
    bool devices_given = false;
    std::optional<std::uint64_t> seed;
    std::int64_t prefill = 0;           // throughput: records pushed (and put in raw) unmeasured first
    double rate = 0;                    // > 0: open-loop latency mode, change-sets/s per device
    bool rate_sweep = false;            // rate mode: double the rate until p99 >= 100 ms
    std::int64_t seconds = 20;          // rate mode: length of one run
    std::int64_t idle_connections = -1; // >= 0: memory mode (0: up to the connection cap)
    std::int64_t max_connections = 0;   // self-hosted server's connection cap (0: its default)
};

/// The throughput run (push, pull, --edit-pull, raw SQLite), the soak, the open-loop latency
/// run and the idle-connection memory run; each returns the exit code and throws on a failure
/// that voids the run.
int run_throughput(const options& o);
int run_soak(const options& o);
int run_rate(const options& o);
int run_idle_connections(const options& o);

// ---- connections ---------------------------------------------------------------------------

struct endpoint_address {
    std::string host;
    std::string port;
};

std::optional<endpoint_address> parse_url(std::string url);

/// One keep-alive connection to a server's POST /v1/sync.
class http_client {
public:
    http_client(endpoint_address where, std::string token);
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    // POSTs a body to /v1/sync and returns (status, body). Reconnects once per call when the
    // kept-alive connection turns out closed; throws on a connection failure.
    std::pair<unsigned, std::string> post_sync(const std::string& body);

private:
    struct connection;
    std::unique_ptr<connection> c_;
};

// Sends `body` until it gets a non-transient answer; returns it, or throws after
// k_max_attempts. Counts retries.
std::pair<unsigned, std::string> post_with_retry(http_client& client, const std::string& body,
                                                 std::atomic<std::int64_t>& retries);

// ---- the self-hosted server ----------------------------------------------------------------

/// The store at `path`; throws "opening the store: ...".
std::unique_ptr<fsrv::store> open_store(const std::string& path);

/// Adds `count` devices named "<prefix>N" to `st`; their tokens, in order. Throws "adding a
/// device: ...".
std::vector<std::string> add_devices(fsrv::store& st, int count, const std::string& prefix, const std::string& unit,
                                     fsrv::device_role role);

/// A server on `st` with `options`, started; `where` is set to its address. Throws "starting
/// the server: ...".
std::unique_ptr<fsrv::server> start_server(const fsrv::server_options& options, fsrv::store& st,
                                           endpoint_address& where);

/// Where a run writes: the server it hosts (store, one device per simulated device) or the
/// one at --url (every simulated device with the same token), and the files it leaves.
struct bench_target {
    std::filesystem::path temp_dir;
    std::string store_path;
    std::string raw_path;
    std::unique_ptr<fsrv::store> st;
    std::unique_ptr<fsrv::server> srv;
    endpoint_address where;
    std::vector<std::string> tokens;
};

/// Hosts the server (a store at o.db or a temporary file, o.devices admin devices, 127.0.0.1:0,
/// o.server_threads and o.max_connections) or connects to o.url; prints which.
bench_target host_or_connect(const options& o);

/// A fresh 16-hex-digit id for a run's change and batch ids: the server answers repeated ids
/// from its decided table without writing anything, so every run against a store needs new ones.
std::string make_run_id();

// ---- records -------------------------------------------------------------------------------

std::string unit_of(std::int64_t i);

// The JSON text of record i: a study session (default schema) padded to about 200 bytes.
// A pure function of i, so the raw SQLite phase writes the very same bytes.
std::string record_data(std::int64_t i);

using record_id = std::array<char, 36>;

// Appends to `body` the change that puts record i as new (base version 0) under `id`, with
// change id "c-<change_prefix>-<change_n>": what every simulated device sends.
void append_new_record(std::string& body, std::string_view change_prefix, std::int64_t change_n, const record_id& id,
                       std::int64_t i);

// Record ids as devices make them. Time-ordered ids (UUIDv7, RFC 9562: 48-bit Unix ms, then a
// 12-bit sequence for ids made in the same millisecond) keep inserts near the right edge of
// the primary-key B-tree; UUIDv4 scatters them, which is what --random-ids measures.
class id_maker {
public:
    explicit id_maker(std::uint64_t seed) : rng_(seed) {}

    void next(bool random, record_id& out);

private:
    std::mt19937_64 rng_;
    fproto::uuid_v7_maker v7_;
};

// ---- figures -------------------------------------------------------------------------------

double percentile(std::vector<double> v, double q);

std::string fixed(double v, int decimals = 1);

std::filesystem::path make_temp_dir();

}  // namespace fieldsync::bench
