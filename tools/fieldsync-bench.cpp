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
//
// Other modes: --soak (fieldsync-bench-soak.cpp), --rate (open-loop latency: devices send on a
// fixed schedule, latency counted from the scheduled time) and --idle-connections (memory per
// idle keep-alive connection), both in fieldsync-bench-rate.cpp.
//
// This file reads the options; the run is fieldsync-bench-throughput.cpp, what the modes share
// fieldsync-bench-common.{hpp,cpp}.

#include "fieldsync-bench-common.hpp"

#include <climits>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

namespace {

using fieldsync::bench::options;
namespace fproto = fieldsync::protocol;

constexpr const char* k_usage =
    "usage: fieldsync-bench [--devices N] [--batch B] [--changes C] [--random-ids]\n"
    "                       [--db PATH | --store sqlite:PATH|postgres:CONNINFO | --url http://HOST:PORT --token TOKEN]\n"
    "                       [--server-threads T] [--pull-limit L] [--edit-pull] [--prefill N] [--keep]\n"
    "       fieldsync-bench --soak SECONDS [--devices N] [--batch B] [--seed S] [--db PATH] [--keep]\n"
    "       fieldsync-bench --rate R [--rate-sweep] [--seconds S] [--devices N] [--batch B] [--random-ids]\n"
    "                       [--db PATH | --store ... | --url URL --token T] [--server-threads T]\n"
    "       fieldsync-bench --idle-connections N [--max-connections M] [--server-threads T]\n"
    "\n"
    "  --devices N         concurrent devices, each with its own connection (default 50)\n"
    "  --batch B           changes per change-set, 1 to 1000 (default 1000)\n"
    "  --changes C         changes in all (default 1000000)\n"
    "  --random-ids        UUIDv4 record ids instead of time-ordered UUIDv7\n"
    "  --db PATH           self-hosted: the store file (default: a temporary file)\n"
    "  --store postgres:CONNINFO\n"
    "                      self-hosted on a PostgreSQL database that holds no store yet\n"
    "  --url URL --token T drive a running server instead of hosting one\n"
    "  --server-threads T  self-hosted server's I/O threads (default: the server's default)\n"
    "  --pull-limit L      page size of the pull phase (default and most: 5000)\n"
    "  --edit-pull         then patch one field of every record and pull the edits from the\n"
    "                      cursor of the full pull, whole and as field diffs\n"
    "  --prefill N         first push N records (change-sets of 1000, not measured) and put the\n"
    "                      same N rows in the raw SQLite table (not timed): with --random-ids,\n"
    "                      random-key inserts into a store that already holds N records\n"
    "  --keep              keep the temporary store and the raw SQLite file\n"
    "\n"
    "  --soak SECONDS      self-hosted soak: N devices write for SECONDS (new records, edits of\n"
    "                      shared and own records, deletes; change-sets of 1 to B changes,\n"
    "                      default 8), each pulling as it goes; then the store invariants are\n"
    "                      checked and every device's pulled copy is compared with a full pull.\n"
    "                      Prints figures and PASS or FAIL; exits 1 on a broken invariant.\n"
    "  --seed S            soak: the seed of the devices' choices (default: random, printed)\n"
    "\n"
    "  --rate R            open-loop latency: each of N devices (default 200) sends a change-set of\n"
    "                      B new records (default 10) R times a second (R may be 0.5, 5...) on a\n"
    "                      fixed schedule, whatever the answers do; latency is counted from the\n"
    "                      scheduled time, so queueing behind a slow server counts (no coordinated\n"
    "                      omission). The first second is warm-up. Prints the offered and answered\n"
    "                      rates, p50/p99/p99.9/max latency and the late change-sets.\n"
    "  --seconds S         rate: length of a run (default 20)\n"
    "  --rate-sweep        rate: then double R each run (same server) until p99 >= 100 ms or an\n"
    "                      error; prints the highest rate with p99 < 100 ms\n"
    "\n"
    "  --idle-connections N\n"
    "                      self-hosted memory run: open N keep-alive connections (each sends one\n"
    "                      pull of 1 record, then idles), 1000 at a time, and print the process's\n"
    "                      resident memory after each step (server and client sockets share the\n"
    "                      process). N = 0: up to the server's connection cap\n"
    "  --max-connections M self-hosted server's connection cap (default: the server's, 1024)\n";

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
            o.devices_given = true;
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
        } else if (a == "--store") {
            // sqlite:PATH is --db PATH; postgres:CONNINFO is kept whole (open_store reads it).
            const auto v = value();
            if (!v || !(v->rfind("sqlite:", 0) == 0 || v->rfind("postgres:", 0) == 0)) {
                std::cerr << "fieldsync-bench: --store needs sqlite:PATH or postgres:CONNINFO\n";
                return std::nullopt;
            }
            o.db = v->rfind("sqlite:", 0) == 0 ? v->substr(7) : *v;
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
        } else if (a == "--prefill") {
            const auto v = count(0, 100'000'000);
            if (!v) return std::nullopt;
            o.prefill = *v;
        } else if (a == "--rate") {
            const auto v = value();
            if (!v) return std::nullopt;
            char* end = nullptr;
            o.rate = std::strtod(v->c_str(), &end);
            if (end == v->c_str() || *end != '\0' || !(o.rate > 0) || o.rate > 100'000) return std::nullopt;
        } else if (a == "--rate-sweep") {
            o.rate_sweep = true;
        } else if (a == "--seconds") {
            const auto v = count(2, 24 * 3600);  // the first second is warm-up
            if (!v) return std::nullopt;
            o.seconds = *v;
        } else if (a == "--idle-connections") {
            const auto v = count(0, 1'000'000);
            if (!v) return std::nullopt;
            o.idle_connections = *v;
        } else if (a == "--max-connections") {
            const auto v = count(1, 1'000'000);
            if (!v) return std::nullopt;
            o.max_connections = *v;
        } else {
            return std::nullopt;
        }
    }
    if (o.url.empty() != o.token.empty()) return std::nullopt;  // --url and --token go together
    if (!o.url.empty() && !o.db.empty()) return std::nullopt;
    // A soak checks the store file afterwards, so it hosts the server itself.
    if (o.soak_seconds > 0 && !o.url.empty()) return std::nullopt;
    // The memory run reads this process's memory, so the server must be in it.
    if (o.idle_connections >= 0 && !o.url.empty()) return std::nullopt;
    if (o.rate_sweep && o.rate == 0) o.rate = 1;
    // Rate mode's defaults describe many phones sending small change-sets.
    if (o.rate > 0 && !o.devices_given) o.devices = 200;
    if (o.rate > 0 && !o.batch_given) o.batch = 10;
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const auto o = parse_args(argc, argv);
    if (!o) {
        std::cerr << k_usage;
        return 2;
    }
    try {
        if (o->idle_connections >= 0) return fieldsync::bench::run_idle_connections(*o);
        if (o->rate > 0) return fieldsync::bench::run_rate(*o);
        return o->soak_seconds > 0 ? fieldsync::bench::run_soak(*o) : fieldsync::bench::run_throughput(*o);
    } catch (const std::exception& e) {
        std::cerr << "fieldsync-bench: " << e.what() << "\n";
        return 1;
    }
}
