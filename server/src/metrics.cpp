#include <fieldsync/server/metrics.hpp>

#include <cstdio>

namespace fieldsync::server {

void latency_histogram::observe(std::chrono::nanoseconds d) noexcept {
    const double s = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < bounds.size() && s > bounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count()), std::memory_order_relaxed);
}

std::uint64_t latency_histogram::count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
    return n;
}

void latency_histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
    const std::string sep = labels.empty() ? "" : ",";
    // The count is the sum of the buckets read here, so _count always equals the +Inf bucket
    // even while other threads observe.
    std::uint64_t cumulative = 0;
    char le[32];
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        cumulative += buckets_[i].load(std::memory_order_relaxed);
        if (i < bounds.size())
            std::snprintf(le, sizeof le, "%g", bounds[i]);
        else
            std::snprintf(le, sizeof le, "+Inf");
        out.append(name).append("_bucket{").append(labels).append(sep).append("le=\"").append(le).append("\"} ");
        out.append(std::to_string(cumulative)).push_back('\n');
    }
    char sum[48];
    std::snprintf(sum, sizeof sum, "%.9g", static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
    const std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
    out.append(name).append("_sum").append(braces).append(" ").append(sum).push_back('\n');
    out.append(name).append("_count").append(braces).append(" ").append(std::to_string(cumulative)).push_back('\n');
}

std::string prometheus_escape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

}  // namespace fieldsync::server
