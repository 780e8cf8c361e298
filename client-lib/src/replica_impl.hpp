#pragma once
// The private state of a replica, shared by replica.cpp (local edits and reads) and sync.cpp
// (the sync engine).

#include "blobs/blob_files.hpp"
#include "store/local_store.hpp"

#include <fieldsync/client/replica.hpp>
#include <fieldsync/protocol/hlc.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>

namespace fieldsync::client {

namespace detail {

// Runs `f` and turns library failures into errors: nothing but bad_alloc leaves the API.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const failure& e) {
        return e.err();
    } catch (const sqlite::error& e) {
        return make_error(errc::storage, std::string("local store: ") + e.what());
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        return make_error(errc::internal, e.what());
    }
}

/// Maps a server's non-2xx answer to an error (sync.cpp); `transient` says whether retrying
/// can help, `code` is the answer's error code when it had one.
error answer_error(const http_response& r, bool& transient, std::optional<protocol::errc>& code);

}  // namespace detail

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

    // Attachments (attachments.cpp).
    detail::blob_folder blobs;
    std::int64_t blob_cache_bytes;
    std::mutex attach_mutex;                // attaches take turns (their files, replica.cpp)
    std::mutex upload_mutex;                // one upload() at a time
    std::mutex download_mutex;              // one download() at a time: they share .part files
    std::string uploading;                  // the blob upload() is sending now; under mutex
    // upload()'s transport, apart from sync()'s so that both run at once: the default transport
    // is one connection and not thread-safe. An app's own transport serves both (transport.hpp).
    // Replaced under upload_mutex.
    std::shared_ptr<transport> blob_net;
    /// The transport a blob exchange should use: the app's, or a default one without gzip
    /// (photos and PDFs are compressed already). nullptr in the embedded build without one.
    std::shared_ptr<transport> make_blob_transport();
    /// Removes the least recently used blobs past blob_cache_bytes, never `keep`. With mutex held.
    void evict_blobs(const std::string& keep);
    std::int64_t now_ms() const;
    result<upload_report> run_upload(const upload_options& o);
    result<std::string> run_download(const std::string& sha256);
};

}  // namespace fieldsync::client
