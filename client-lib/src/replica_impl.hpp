#pragma once
// The private state of a replica, shared by replica.cpp (local edits and reads) and sync.cpp
// (the sync engine).

#include "store/local_store.hpp"

#include <fieldsync/client/replica.hpp>
#include <fieldsync/protocol/hlc.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>

namespace fieldsync::client {

struct replica::impl {
    explicit impl(replica_options o);

    replica_options options;
    // Resolved tunables (options.tuning with the defaults of tuning.hpp filled in).
    std::size_t push_batch_size;
    std::size_t push_batch_bytes;
    std::int64_t pull_page_limit;
    std::chrono::milliseconds backoff_base, backoff_cap, request_timeout;
    int max_attempts;
    double jitter;

    std::mutex mutex;                       // guards store and the read-modify-write of edits
    std::unique_ptr<detail::local_store> store;
    std::shared_ptr<transport> net;
    protocol::hlc_clock clock;
    std::mutex sync_mutex;                  // one sync at a time
    std::mt19937_64 rng;
    // How many times the pull page and new change-sets are halved for this link (sync.cpp);
    // kept across syncs, since the next sync goes over the same link. Touched under sync_mutex.
    int link_shrink = 0;

    // Test seam (replica_internal.hpp): called after each local transaction of a sync with
    // its ordinal (1, 2, ...); returning false ends the sync at once with errc::cancelled and
    // writes nothing more, as if the process had been killed there.
    std::function<bool(std::int64_t)> test_after_commit;
    // Test seam: the protocol version this replica claims in the handshake, so tests can play
    // a client older or newer than the server (protocol::protocol_version otherwise).
    std::int64_t test_protocol_version = 0;

    result<sync_report> run_sync(const progress_fn& progress, const replica::answer_fn& on_answer);
};

}  // namespace fieldsync::client
