#pragma once
// The HTTP server: Asio/Beast sessions in front of the store's roles (store_roles; ARCHITECTURE.md,
// "Server"; the endpoints are those of protocol/SPEC.md), over plain TCP or TLS
// (server_options::tls_cert_file; SPEC.md, "Transport"). Its members are defined in
// server/src/http/server.cpp; the sessions in session.cpp, the routes in router.cpp.
//
//   GET  /admin/...                               the review page (server/web), no token needed
//   GET  /v1/health                               liveness, no token needed
//   POST /v1/sync                                 push a change-set, pull a page
//   GET  /v1/schema                               the collections the server serves
//   GET  /v1/me                                   the calling device: its name, unit and role
//   GET  /v1/records/{collection}/{id}            a record's head
//   GET  /v1/records/{collection}/{id}/history    every version, with who, when and how
//   GET  /v1/conflicts?status=&limit=&offset=     conflicts, newest first
//   GET  /v1/conflicts/{id}                       one conflict
//   POST /v1/conflicts/{id}/resolve               a reviewer's decision
//   GET  /v1/reports, /v1/reports/{name}          the district's reports
//   GET  /metrics                                 Prometheus text format; an admin token
//
// Every non-2xx answer has the body {"error": {"code", "message"}} and the HTTP status of its
// code (protocol::http_status). No input makes a handler throw out of a session: anything
// unexpected is answered 500 `internal` and the server goes on serving.
//
// Ownership: the server keeps references to the store (its roles), which must outlive it. The owner
// closes the store after stop() (stop() waits for every change-set in flight to be answered,
// so nothing is lost by closing then).
//
// Thread safety: start() and stop() must be called from the owner's thread, not from a
// handler thread of this server (stop() joins those threads). port() may be called from any
// thread. The destructor calls stop().

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/server/blob_store.hpp>
#include <fieldsync/server/store.hpp>
#include <fieldsync/server/tuning.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace fieldsync::server {

struct server_options {
    std::string host = "127.0.0.1";     // an IP address to bind (v4 or v6)
    std::uint16_t port = 0;             // 0 = an ephemeral port, see start()
    int threads = tuning::default_threads;
    std::chrono::milliseconds read_timeout = tuning::read_timeout;
    std::chrono::milliseconds body_idle_timeout = tuning::body_idle_timeout;
    std::chrono::milliseconds write_timeout = tuning::write_timeout;
    std::chrono::milliseconds linger_timeout = tuning::linger_timeout;
    std::size_t body_limit = tuning::body_limit;
    std::size_t header_limit = tuning::header_limit;
    std::size_t max_connections = tuning::max_connections;
    std::size_t max_connections_per_address = tuning::max_connections_per_address;
    int max_auth_failures = tuning::max_auth_failures;
    std::chrono::seconds auth_failure_window = tuning::auth_failure_window;
    std::chrono::milliseconds failed_sign_in_delay = tuning::failed_sign_in_delay;
    /// Clients speaking an older protocol may still push, but their pulls and other calls are
    /// refused with client_too_old (SPEC.md, "Versions and the handshake"). 1 = serve all.
    std::int64_t min_client_protocol = 1;
    /// TLS: both set = every connection is HTTPS (PEM files; the certificate file holds the
    /// server's certificate first, then any intermediates). Both empty = plain HTTP.
    std::string tls_cert_file;
    std::string tls_key_file;
    std::chrono::milliseconds tls_handshake_timeout = tuning::tls_handshake_timeout;
    std::chrono::milliseconds tls_shutdown_timeout = tuning::tls_shutdown_timeout;
    /// Waiting syncs (SPEC.md, "Waiting for changes"): a sync's `wait_ms` is lowered to
    /// max_sync_wait (0: no sync waits), and at most max_waiting_syncs wait at once; past
    /// that a sync is answered at once.
    std::chrono::milliseconds max_sync_wait = tuning::max_sync_wait;
    std::size_t max_waiting_syncs = tuning::max_waiting_syncs;
    /// Plain HTTP is served only on a loopback address (127.0.0.0/8, ::1) unless this is set:
    /// tokens and records would otherwise cross the network readable by anyone on the path.
    bool insecure_listen = false;
    /// Receives one JSON object per answered request (ARCHITECTURE.md, "Operations"), without
    /// a trailing newline. Empty: each line goes to stderr. It is called from the I/O threads,
    /// several at once, so it must be thread-safe; tests capture lines through it.
    std::function<void(std::string_view line)> log;
    /// Attachments (SPEC.md, "Attachments"): where their bytes live (open_blob_dir; null: the
    /// server keeps none and its attachment endpoints answer 404), the largest blob, and what
    /// one device may upload per UTC day.
    std::shared_ptr<blob_store> blobs;
    std::int64_t max_blob_bytes = tuning::max_blob_bytes;
    std::int64_t blob_quota_bytes = tuning::blob_quota_bytes;
};

class server {
public:
    /// Serves `st`: every role of one store.
    server(server_options options, store& st);
    /// Serves the given roles (store_roles: normally one store's; a test may stand in for one).
    server(server_options options, store_roles st);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds, listens and starts the I/O threads. Returns the bound port (the ephemeral one
    /// when options.port is 0). Errors: bad_request for an unparsable host, for plain HTTP on
    /// a non-loopback address without insecure_listen, for only one of the two TLS files or
    /// one that cannot be loaded (checked before anything is bound); unavailable when the
    /// address cannot be bound (in use, not local); internal if already started.
    protocol::expected<std::uint16_t> start();

    /// Stops accepting, closes idle connections, lets requests in flight finish and be
    /// answered (with "Connection: close"; a sync waiting for changes is answered at once, as
    /// at its deadline), then joins the I/O threads. Idempotent. Waits at most about
    /// write_timeout for a client that does not read its answer.
    void stop();

    /// The bound port, 0 before start().
    std::uint16_t port() const noexcept;

    /// Connections the server holds now, those being refused included. Never more than
    /// max_connections + tuning::evicting_connections + tuning::refusing_connections. Any thread.
    std::size_t open_connections() const;

    /// Syncs waiting for a change now (SPEC.md, "Waiting for changes"). Any thread.
    std::size_t waiting_syncs() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace fieldsync::server
