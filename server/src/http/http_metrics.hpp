#pragma once
// The server's counters for GET /metrics and its rendering in the Prometheus text format
// 0.0.4 (ARCHITECTURE.md, "Operations", names each metric). Counting is relaxed atomic
// increments on fixed arrays indexed by route and status: no lock, no allocation on the
// request path. Labels are route templates, never raw paths, so ids never become series.
//
// Thread safety: every member may be used from any thread at once.

#include "http/router.hpp"

#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/server/metrics.hpp>
#include <fieldsync/server/store.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace fieldsync::server::detail {

class http_metrics {
public:
    static constexpr std::size_t k_routes = static_cast<std::size_t>(endpoint::unmatched) + 1;

    /// One answered request: its route (endpoint::unmatched when it matched none), status and
    /// how long it took from its header to its answer written.
    void count_request(endpoint route, unsigned status, std::chrono::nanoseconds took) noexcept;
    /// The store's answer to one change-set: every change's outcome, or a failure.
    void count_change_set(const protocol::expected<std::vector<protocol::change_result>>& answer) noexcept;

    /// The whole exposition: these counters, the store's commit histogram, and the gauges
    /// read from the store now (open conflicts, devices' last sync). `connections`: open now;
    /// `waiting_syncs`: syncs waiting for a change now.
    std::string render(const store_roles& st, std::size_t connections, std::size_t waiting_syncs) const;

    /// Attachments (SPEC.md, "Attachments"): chunk bytes written, blob bytes answered, and
    /// uploads finished: kept, or refused with one of the upload refusals.
    enum class upload_result { kept, too_large, type_refused, hash_mismatch, quota, count_ };
    void count_blob_bytes_in(std::uint64_t n) noexcept { blob_bytes_in_.fetch_add(n, std::memory_order_relaxed); }
    void count_blob_bytes_out(std::uint64_t n) noexcept { blob_bytes_out_.fetch_add(n, std::memory_order_relaxed); }
    void count_upload(upload_result r) noexcept {
        uploads_[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
    }

private:
    static constexpr unsigned k_min_status = 100;
    static constexpr unsigned k_statuses = 500;  // 100..599
    std::array<std::array<std::atomic<std::uint64_t>, k_statuses>, k_routes> requests_{};
    std::array<latency_histogram, k_routes> durations_{};
    std::atomic<std::uint64_t> change_sets_answered_{0};
    std::atomic<std::uint64_t> change_sets_failed_{0};
    std::array<std::atomic<std::uint64_t>, 5> changes_{};  // applied, merged, conflict, rejected, queued
    std::atomic<std::uint64_t> blob_bytes_in_{0};
    std::atomic<std::uint64_t> blob_bytes_out_{0};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(upload_result::count_)> uploads_{};
};

}  // namespace fieldsync::server::detail
