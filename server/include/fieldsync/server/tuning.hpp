#pragma once
// Server-only tunables, each with the reason for its value. Limits that both sides of the wire
// must agree on live in protocol/include/fieldsync/protocol/tuning.hpp.

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace fieldsync::server::tuning {

/// Largest request body. A full change-set of protocol::tuning::max_changes_per_batch records
/// of a few KiB each fits well below it; anything larger is refused from its Content-Length,
/// before the body is read, so one client cannot make the server buffer an unbounded upload.
inline constexpr std::size_t body_limit = 8 * 1024 * 1024;
/// Attachments (SPEC.md, "Attachments"): one blob at most (a photo shrunk on the phone is
/// well under 1 MiB; a scanned PDF of a few pages fits), a device's uploads per UTC day, and
/// one chunk (under body_limit).
inline constexpr std::int64_t max_blob_bytes = 10 * 1024 * 1024;
inline constexpr std::int64_t blob_quota_bytes = 500LL * 1024 * 1024;
inline constexpr std::int64_t max_chunk_bytes = 4 * 1024 * 1024;

/// Largest request header block (request line plus fields). Our clients send a handful of
/// short fields; 16 KiB leaves room for proxies' additions and bounds what a client can make
/// the server hold before any routing happens.
inline constexpr std::size_t header_limit = 16 * 1024;

/// How long a connection may take to deliver a request's header block, counted from when the
/// server starts waiting for it, which also makes it the idle timeout of a kept-alive
/// connection. 30 s lets a phone on a 2G link send its headers, yet a client that sends slowly
/// or not at all (slowloris) frees its connection after at most this long.
inline constexpr std::chrono::milliseconds read_timeout{30'000};

/// How long the body may go without any bytes arriving. An inactivity bound rather than a
/// deadline, so a large change-set over a slow link still completes while it makes progress.
inline constexpr std::chrono::milliseconds body_idle_timeout{30'000};

/// How long writing one response may take. A client that stops reading is cut off so its
/// connection and response buffer are freed.
inline constexpr std::chrono::milliseconds write_timeout{30'000};

/// After refusing a request and closing our side (413, 431, 400 on a malformed request), how
/// long the server keeps reading and discarding what the client still sends. Closing with
/// unread data makes the kernel send a reset that can destroy the error response before the
/// client reads it; a short linger lets the client see why it was refused.
inline constexpr std::chrono::milliseconds linger_timeout{2'000};

/// How long a TLS client may take to complete its handshake, counted from the accept. A phone
/// on 2G needs two round trips of a few hundred milliseconds plus a certificate chain of a
/// few KiB; 10 s is ample, and a client that opens connections and never says hello holds
/// each for at most this long.
inline constexpr std::chrono::milliseconds tls_handshake_timeout{10'000};

/// How long the server waits for the client's close_notify after sending its own when it
/// closes a TLS connection. Our clients close the TCP connection without one; the wait only
/// bounds a client that keeps the connection open.
inline constexpr std::chrono::milliseconds tls_shutdown_timeout{2'000};

/// TLS 1.2 cipher suites (TLS 1.3 uses OpenSSL's defaults, all AEAD): forward secrecy (ECDHE)
/// and AEAD only, ECDSA or RSA certificates. Every client of the last decade (Android 5+,
/// iOS 9+, OpenSSL 1.0.2+) has one of them; CBC, RSA key exchange and SHA-1 are left out.
inline constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// Open connections at most. Each costs a file descriptor and up to body_limit of buffered
/// request; 1024 stays under the default `ulimit -n` with room for SQLite's files and bounds
/// memory to what a small district server has. Connections past the cap get 503 unavailable.
inline constexpr std::size_t max_connections = 1024;

/// When max_connections are open and a new one arrives, the connection that has waited
/// longest for a request header (idle keep-alive, or a slowloris trickling its header) is
/// closed to make room, so a flood of idle connections cannot lock honest clients out; one
/// idle for less than read_timeout / 8 is left alone (a new client gets time to send). The
/// closed one takes a moment to go: up to this many connections may be accepted past the cap
/// meanwhile. Past that, or with no idle connection to close, new ones get 503.
inline constexpr std::size_t evicting_connections = 16;

/// Refused connections (over a cap) answered 503 at the same time at most. Each holds a
/// session and a small linger buffer for up to linger_timeout; a flood of connects past the
/// caps would otherwise grow them without bound. Past this, refused connections are closed
/// without an answer.
inline constexpr std::size_t refusing_connections = 64;

/// Open connections one address may hold. A district office behind one NAT may sync dozens of
/// devices at once; 64 covers that while one host cannot take the whole max_connections.
inline constexpr std::size_t max_connections_per_address = 64;

/// Failed sign-ins (unknown or revoked tokens) one address may make per window before its
/// further failures are answered 429 rate_limited, each after failed_sign_in_delay, until the
/// window ends. Valid tokens from that address are served as ever: many phones share one
/// carrier NAT address, and one stale token must not lock the others out. A guesser is held
/// to max_connections_per_address guesses per delay (64 per 5 s) against 2^256 tokens.
inline constexpr int max_auth_failures = 10;
inline constexpr std::chrono::seconds auth_failure_window{60};
inline constexpr std::chrono::milliseconds failed_sign_in_delay{5000};

/// Addresses tracked at most by the limits above; beyond, expired entries are pruned first.
inline constexpr std::size_t max_tracked_addresses = 65536;

/// I/O threads when the caller names none. Request handling is short (parsing, a read
/// transaction, handing change-sets to the store's single writer), so a few threads keep the
/// cores busy without contending for the read connections.
inline constexpr int default_threads = 4;

/// Longest a sync may wait for a change (SPEC.md, "Waiting for changes"); a longer `wait_ms`
/// is lowered to it. Proxies, load balancers and carrier NATs commonly drop a connection
/// that stays silent for 30 to 60 s; 25 s answers every wait before the shortest of them, so
/// a wait never ends as a cut connection the client takes for a network failure.
inline constexpr std::chrono::milliseconds max_sync_wait{25'000};

/// Syncs that may wait for a change at once; past it a sync is answered at once (as without
/// `wait_ms`), never refused. Each waiting sync holds a connection: half of max_connections
/// leaves the other half to pushes and to devices that do not wait, whatever the waiting
/// ones do. A wait costs a socket, a timer and a read again per commit, no store connection.
inline constexpr std::size_t max_waiting_syncs = 512;

/// How often a waiting sync's connection is looked at again when the client has sent more
/// bytes behind its request (so the socket stays readable and cannot be waited on): a client
/// that closes such a connection frees its wait within this time. Without such bytes the
/// close is seen as it happens.
inline constexpr std::chrono::milliseconds peer_check_interval{1000};

/// Smallest answer body the server gzips for a client that accepts it. Below about 1 KiB the
/// gzip header and trailer (18 bytes) and the deflate block eat most of the gain, and HTTP
/// headers dominate the exchange anyway; a pull page of a few records is already above it.
inline constexpr std::size_t gzip_min_bytes = 1024;


// ---- the central store (server/src/store) ----

/// How long a connection waits for a lock held by another connection (the admin tool, a
/// backup) before failing with SQLITE_BUSY. Long enough to ride out another process's
/// short transaction, short enough that a stuck lock surfaces as a 503 the client retries.
inline constexpr int busy_timeout_ms = 5000;
/// Change-sets committed together in one transaction at most. Group commit shares one fsync
/// among waiting requests; the cap keeps one commit (and the latency of the first request in
/// it) bounded when hundreds of devices push at once.
inline constexpr std::size_t max_group_jobs = 64;
/// Changes in one group at most (a second bound, for groups of large change-sets).
inline constexpr std::size_t max_group_changes = 8000;
/// Page cache of each store connection, in KiB (SQLite's default is 2 MiB). Random ids (UUIDv4)
/// scatter writes over the whole heads and history b-trees; with the default cache most
/// pages are read again from disk for every change-set, which the bench shows as a 6x drop.
/// 64 MiB holds the interior pages of a district's store; memory is plentiful on a server.
inline constexpr int cache_kib = 64 * 1024;

/// The writer's WAL is checkpointed by a background thread once it holds this many pages
/// (SQLite's own default threshold, which it runs inside the commit that crosses it, an
/// fsync of the database file on the writer's time), and by the writer itself once it holds
/// the second figure. The WAL starts over only at a write that finds it all copied, which
/// under a steady stream of commits the background thread, always a commit behind, never
/// leaves it: the writer's own checkpoint then copies just its last commit and lets the WAL
/// start over, so the WAL stays under about 16 MiB. It also bounds the WAL when the thread
/// falls behind (a slow disk).
inline constexpr int wal_background_checkpoint_pages = 1000;
inline constexpr int wal_writer_checkpoint_pages = 4000;
/// A pull of a subtree merges one feed per unit of the subtree (reads.cpp), so a cell device's
/// pull reads its own changes only. Past this many units (a district-wide subtree) one walk of
/// the whole feed in seq order costs less than keeping a cursor open per unit.
inline constexpr std::size_t max_merged_unit_feeds = 256;
/// How long a device may go without syncing and still count as active for gc: its tombstones
/// and drop notices are kept, and it resumes from its cursor. A hamlet phone may stay in a
/// drawer through a rainy season or a long leave; 90 days covers that, and a device away
/// longer re-snapshots (it loses nothing it has not sent: its pending edits go first).
inline constexpr std::chrono::hours retention_window{90 * 24};
/// gc deletes at most this many rows per write transaction, so the server's writer (which
/// shares SQLite's write lock) waits milliseconds, never the length of a whole purge. Measured
/// with fieldsync-gc-bench (100,000 records, 20,000 deleted, pushes back to back, on a shared
/// 2-core machine, so noisy): at 1,000 rows a batch holds the lock 40-100 ms and the pushes'
/// p99 during gc was 93-170 ms (8-27 ms without gc); at 250 it was 12-68 ms and pushes kept
/// their rate, while gc took 3-6 s instead of 1 s, which nobody waits for.
inline constexpr std::int64_t gc_batch_rows = 250;
/// How long a recorded acknowledgement may wait in memory for a write transaction to carry
/// it. Pushes carry them for free; a server that only answers pulls writes them in one
/// transaction per interval instead of one fsync per pull. Losing them (a crash) only makes
/// gc more careful and may make a device re-snapshot once.
inline constexpr std::chrono::milliseconds ack_flush_interval{1000};
/// How long a backup waits before trying again when the store is locked at the moment its
/// read transaction begins (the backup API does not use the busy timeout).
inline constexpr int backup_busy_wait_ms = 20;
/// History rows read at open to restore the clock past every stamp already stored.
inline constexpr int hlc_recovery_rows = 1000;

// ---- the relay hub (server/src/hub) ----

/// How often the hub looks for devices' changes to forward. A device's edit waits at most this
/// long (plus the upstream's answer) before it leaves for the district; a cheap indexed read.
inline constexpr std::chrono::milliseconds hub_poll_interval{250};
/// How often the hub pulls from the upstream when nothing is forwarded: district edits reach
/// the commune within this time once the link is up, and an idle hub costs the district one
/// small request per commune per interval.
inline constexpr std::chrono::milliseconds hub_pull_interval{10'000};
/// After a failed round the hub waits this long, doubled per consecutive failure up to
/// hub_retry_cap: a commune link that is down for hours costs a few requests an hour, and one
/// that comes back is used again within a minute.
inline constexpr std::chrono::milliseconds hub_retry_interval{1'000};
inline constexpr std::chrono::milliseconds hub_retry_cap{60'000};
/// Attempts of one upstream request inside a round (the replica's own backoff); the hub's
/// loop retries beyond that, so a cut link does not hold a round for long.
inline constexpr int hub_request_attempts = 2;
/// Forwards handed to the upstream replica per read of the hub's store.
inline constexpr std::int64_t hub_hand_batch = 1000;

}  // namespace fieldsync::server::tuning
