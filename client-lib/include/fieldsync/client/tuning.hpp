#pragma once
// Tunables of the client library, each with the reason for its value. A replica copies them
// from replica_options::tuning, so tests and apps may change any of them per replica.

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace fieldsync::client::tuning {

/// Changes per pushed change-set. Well below protocol::tuning::max_changes_per_batch (1000):
/// about 60 KB of JSON per request, which a 2G link sends in a few seconds, so a dropped link
/// loses little work, while 100 000 outbox rows still take only 500 round trips.
inline constexpr std::size_t push_batch_size = 200;

/// Bytes of changes per pushed change-set (the batch ends before the change that would pass
/// it; a single larger change still goes alone). The server refuses bodies over its limit
/// (8 MiB by default) with a permanent 413, which would block the outbox for good; 1 MiB keeps
/// far below it and bounds what a dropped 2G link has to resend.
inline constexpr std::size_t push_batch_bytes = 1024 * 1024;

/// Heads per pulled page. The protocol's default page (500) keeps one page under ~250 KB for
/// typical records; each page is one local transaction, so this is also the granularity at
/// which an interrupted initial sync resumes.
inline constexpr std::int64_t pull_page_limit = 500;

/// Adaptation to a bad link: every transient failure halves the pull page limit and the size
/// of new change-sets (count and bytes), every answer doubles them back, at most
/// max_link_shrink halvings (500 heads -> 16 -> floor 25; 200 changes -> 6 -> floor 10). At
/// 64 kbit/s with a drop every 20 s about 100 KB get through between drops; a gzipped page of
/// 25 member records is about 2 KB, so even the worst link makes progress, while one
/// successful round trip per halving restores full pages on a good link.
inline constexpr int max_link_shrink = 5;
inline constexpr std::int64_t min_pull_page_limit = 25;
inline constexpr std::size_t min_push_batch_size = 10;
inline constexpr std::size_t min_push_batch_bytes = 16 * 1024;

/// First retry delay after a transient failure, and the ceiling of the exponential growth.
/// 500 ms lets a restarting server come back without the client hammering it; 30 s caps the
/// wait so that a user watching the progress bar sees a retry within half a minute.
inline constexpr std::chrono::milliseconds backoff_base{500};
inline constexpr std::chrono::milliseconds backoff_cap{30'000};

/// Attempts of one request before sync() gives up and reports the transient error. With the
/// delays above, 6 attempts span about 15 s on average: long enough to ride out a server
/// restart or a short signal gap, short enough that sync() returns while the user still waits.
inline constexpr int max_attempts = 6;

/// Fraction of each backoff delay that is randomised ("equal jitter": half fixed, half random).
/// Without jitter the phones of a commune that lost signal together would retry in lockstep.
inline constexpr double jitter = 0.5;

/// Time for one HTTP exchange (connect, send, receive) before it counts as a timeout. A pull
/// page of 500 records on a slow 2G link (~30 KB/s) takes under 10 s; 30 s leaves margin.
inline constexpr std::chrono::milliseconds request_timeout{30'000};

/// Largest response body the default transport accepts. A page is bounded by the server's
/// page cap; 64 MB protects a phone's memory from a broken or hostile server.
inline constexpr std::size_t max_response_bytes = 64u * 1024 * 1024;

/// Smallest request body the default transport gzips. Below about 1 KiB the gzip framing and
/// deflate block eat most of the gain; a pull-only request (a cursor and a limit) stays plain.
inline constexpr std::size_t gzip_min_bytes = 1024;

/// SQLite busy timeout: another process (the CLI while an app syncs) may hold the write lock
/// for one local transaction, which is milliseconds; 5 s rides that out without hanging.
inline constexpr std::chrono::milliseconds busy_timeout{5'000};

/// How long answered changes are kept to be sent again if the server's store is restored from
/// a backup (SPEC.md, "After a restore"). Servers are backed up at least daily (README); a
/// week covers restoring the last good backup after a problem noticed days later (a weekend,
/// a long power cut). Changes answered before it are not sent again: if the restored backup is
/// older, the server lost them and the replica takes the restored versions.
inline constexpr std::chrono::hours acked_retention{24 * 7};
/// At most this many answered changes are kept (the newest): about 1 KiB each, 20 MiB on a
/// phone at most, which a field device writing a few hundred changes a day never reaches
/// within the week.
inline constexpr std::int64_t acked_retention_changes = 20'000;

/// The largest file attach() takes: the server's default blob limit (SPEC.md, "Attachments",
/// 10 MiB). A file over the server's limit would be refused after its record had gone out
/// with a reference to it; refusing it at attach lets the person shrink it first.
inline constexpr std::int64_t max_blob_bytes = 10 * 1024 * 1024;

/// Bytes per upload chunk and per download range. A cut link loses at most one chunk;
/// 256 KiB takes about 8 s on a 2G link of 30 KB/s and 33 s at 64 kbit/s, and a 10 MiB photo
/// is 40 requests, whose headers cost well under 1 %.
inline constexpr std::size_t blob_chunk_bytes = 256 * 1024;

/// Time for one chunk's exchange: a chunk at 64 kbit/s takes about 33 s, more than a sync
/// request's timeout, so blobs get their own, with the same margin.
inline constexpr std::chrono::milliseconds blob_request_timeout{120'000};

/// Bytes of blobs the server already has that the blob folder keeps (downloads, and sent
/// uploads): about twenty 10 MiB files, or two hundred shrunk phone photos, which is what a
/// person looks at again in a few days of work, on phones with a few GB free.
inline constexpr std::int64_t blob_cache_bytes = 200LL * 1024 * 1024;

}  // namespace fieldsync::client::tuning
