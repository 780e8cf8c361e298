#include "http/http_metrics.hpp"

#include <cstdio>

namespace fieldsync::server::detail {

namespace proto = fieldsync::protocol;

namespace {

void help(std::string& out, std::string_view name, std::string_view type, std::string_view text) {
    out.append("# HELP ").append(name).append(" ").append(text).push_back('\n');
    out.append("# TYPE ").append(name).append(" ").append(type).push_back('\n');
}

std::size_t outcome_index(proto::change_status s) {
    switch (s) {
        case proto::change_status::applied: return 0;
        case proto::change_status::merged: return 1;
        case proto::change_status::conflict: return 2;
        case proto::change_status::rejected: return 3;
        case proto::change_status::queued: return 4;
    }
    return 3;
}

constexpr std::array<std::string_view, 5> k_outcomes{"applied", "merged", "conflict", "rejected", "queued"};

}  // namespace

void http_metrics::count_request(endpoint route, unsigned status, std::chrono::nanoseconds took) noexcept {
    const auto r = static_cast<std::size_t>(route);
    if (r >= k_routes) return;
    if (status >= k_min_status && status < k_min_status + k_statuses)
        requests_[r][status - k_min_status].fetch_add(1, std::memory_order_relaxed);
    durations_[r].observe(took);
}

void http_metrics::count_change_set(const proto::expected<std::vector<proto::change_result>>& answer) noexcept {
    if (!answer) {
        change_sets_failed_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    change_sets_answered_.fetch_add(1, std::memory_order_relaxed);
    for (const auto& r : *answer) changes_[outcome_index(r.status)].fetch_add(1, std::memory_order_relaxed);
}

std::string http_metrics::render(const store_roles& st, std::size_t connections, std::size_t waiting_syncs) const {
    std::string out;
    out.reserve(16 * 1024);

    help(out, "fieldsync_http_requests_total", "counter", "HTTP requests answered, by route template and status.");
    for (std::size_t r = 0; r < k_routes; ++r) {
        const auto route = route_template(static_cast<endpoint>(r));
        for (unsigned i = 0; i < k_statuses; ++i) {
            const auto n = requests_[r][i].load(std::memory_order_relaxed);
            if (n == 0) continue;
            out.append("fieldsync_http_requests_total{route=\"").append(route).append("\",status=\"");
            out.append(std::to_string(k_min_status + i)).append("\"} ").append(std::to_string(n)).push_back('\n');
        }
    }

    help(out, "fieldsync_http_request_duration_seconds", "histogram",
         "Time from a request's header read to its answer written, by route template.");
    for (std::size_t r = 0; r < k_routes; ++r) {
        if (durations_[r].count() == 0) continue;
        durations_[r].render(out, "fieldsync_http_request_duration_seconds",
                             "route=\"" + std::string(route_template(static_cast<endpoint>(r))) + "\"");
    }

    help(out, "fieldsync_http_connections", "gauge", "Open HTTP connections.");
    out.append("fieldsync_http_connections ").append(std::to_string(connections)).push_back('\n');
    help(out, "fieldsync_waiting_syncs", "gauge", "Syncs waiting for a change (wait_ms) now.");
    out.append("fieldsync_waiting_syncs ").append(std::to_string(waiting_syncs)).push_back('\n');

    help(out, "fieldsync_change_sets_total", "counter",
         "Change-sets the store answered (result=\"answered\") or failed on without applying (\"failed\").");
    out.append("fieldsync_change_sets_total{result=\"answered\"} ")
        .append(std::to_string(change_sets_answered_.load(std::memory_order_relaxed)))
        .push_back('\n');
    out.append("fieldsync_change_sets_total{result=\"failed\"} ")
        .append(std::to_string(change_sets_failed_.load(std::memory_order_relaxed)))
        .push_back('\n');

    help(out, "fieldsync_changes_total", "counter", "Changes in answered change-sets, by outcome.");
    for (std::size_t i = 0; i < k_outcomes.size(); ++i)
        out.append("fieldsync_changes_total{outcome=\"")
            .append(k_outcomes[i])
            .append("\"} ")
            .append(std::to_string(changes_[i].load(std::memory_order_relaxed)))
            .push_back('\n');

    const auto& sm = st.sync.metrics();
    help(out, "fieldsync_store_commit_duration_seconds", "histogram",
         "The writer's group commits: BEGIN IMMEDIATE to COMMIT returned (with its fsync).");
    sm.commit_seconds.render(out, "fieldsync_store_commit_duration_seconds", "");
    help(out, "fieldsync_store_failed_commits_total", "counter",
         "Group transactions that failed to begin or commit (their change-sets were answered 5xx).");
    out.append("fieldsync_store_failed_commits_total ")
        .append(std::to_string(sm.failed_commits.load(std::memory_order_relaxed)))
        .push_back('\n');

    // Gauges read from the store at scrape time. A store that cannot answer leaves its gauge
    // out and says so in fieldsync_scrape_errors, instead of failing the whole scrape.
    int errors = 0;
    if (const auto open = st.review.open_conflicts()) {
        help(out, "fieldsync_open_conflicts", "gauge", "Conflicts waiting for review.");
        out.append("fieldsync_open_conflicts ").append(std::to_string(*open)).push_back('\n');
    } else {
        ++errors;
    }
    if (const auto syncs = st.directory.last_syncs()) {
        help(out, "fieldsync_device_last_sync_timestamp_seconds", "gauge",
             "When each device last completed a sync (Unix time).");
        char value[32];
        for (const auto& [id, ms] : *syncs) {
            std::snprintf(value, sizeof value, "%.3f", static_cast<double>(ms) / 1000.0);
            out.append("fieldsync_device_last_sync_timestamp_seconds{device=\"")
                .append(prometheus_escape(id))
                .append("\"} ")
                .append(value)
                .push_back('\n');
        }
    } else {
        ++errors;
    }
    help(out, "fieldsync_blob_received_bytes_total", "counter", "Attachment bytes written by upload chunks.");
    out.append("fieldsync_blob_received_bytes_total ")
        .append(std::to_string(blob_bytes_in_.load(std::memory_order_relaxed)))
        .push_back('\n');
    help(out, "fieldsync_blob_sent_bytes_total", "counter", "Attachment bytes answered by downloads.");
    out.append("fieldsync_blob_sent_bytes_total ")
        .append(std::to_string(blob_bytes_out_.load(std::memory_order_relaxed)))
        .push_back('\n');
    help(out, "fieldsync_uploads_total", "counter",
         "Uploads finished: the blob kept, or refused (too large, type, hash, daily allowance).");
    static constexpr std::array<std::string_view, 5> k_upload_results{"kept", "too_large", "type_refused",
                                                                      "hash_mismatch", "quota"};
    for (std::size_t i = 0; i < k_upload_results.size(); ++i)
        out.append("fieldsync_uploads_total{result=\"")
            .append(k_upload_results[i])
            .append("\"} ")
            .append(std::to_string(uploads_[i].load(std::memory_order_relaxed)))
            .push_back('\n');
    if (const auto totals = st.attachments.blob_totals()) {
        help(out, "fieldsync_blobs", "gauge", "Attachments kept.");
        out.append("fieldsync_blobs ").append(std::to_string(totals->first)).push_back('\n');
        help(out, "fieldsync_blob_bytes", "gauge", "Bytes of the attachments kept.");
        out.append("fieldsync_blob_bytes ").append(std::to_string(totals->second)).push_back('\n');
    } else {
        ++errors;
    }
    help(out, "fieldsync_scrape_errors", "gauge", "Store gauges this scrape could not read.");
    out.append("fieldsync_scrape_errors ").append(std::to_string(errors)).push_back('\n');
    return out;
}

}  // namespace fieldsync::server::detail
