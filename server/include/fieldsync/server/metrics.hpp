#pragma once
// Building blocks of the metrics endpoint (GET /metrics, Prometheus text format 0.0.4;
// ARCHITECTURE.md, "Operations", lists every metric). Light on purpose: included by store.hpp.
//
// Thread safety: observe() and add() may be called from any thread at once; they are relaxed
// atomic increments, no lock. render() may run concurrently with them and sees each counter at
// some recent value (a scrape is a snapshot of independent counters, not a transaction).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace fieldsync::server {

/// A latency histogram with fixed bucket bounds, in seconds.
class latency_histogram {
public:
    /// Upper bounds of the buckets. A group commit with fsync takes about a millisecond on an
    /// SSD and tens on a spinning disk or a busy SD card; a pull on 2G a few seconds. The
    /// bounds span 0.5 ms to 10 s so both ends stay visible.
    static constexpr std::array<double, 14> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1.0,   2.5,   5.0,   10.0};

    void observe(std::chrono::nanoseconds d) noexcept;
    /// Appends `name`_bucket{labels,le=...} (cumulative), `name`_sum and `name`_count.
    /// `labels` is "" or already formatted, e.g. `route="/v1/sync"`.
    void render(std::string& out, std::string_view name, std::string_view labels) const;
    std::uint64_t count() const noexcept;

private:
    std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets_{};  // last: +Inf
    std::atomic<std::uint64_t> sum_ns_{0};
};

/// A label value escaped for the text format (backslash, double quote, newline).
std::string prometheus_escape(std::string_view value);

}  // namespace fieldsync::server
