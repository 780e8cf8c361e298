#include "http/guard.hpp"

#include <fieldsync/server/tuning.hpp>

#include <algorithm>

namespace fieldsync::server::detail {

address_guard::address_guard(std::size_t max_connections_per_address, int max_auth_failures,
                             std::chrono::seconds failure_window, std::chrono::milliseconds over_allowance_delay)
    : max_connections_(max_connections_per_address),
      max_failures_(max_auth_failures),
      window_(failure_window),
      delay_(over_allowance_delay) {}

bool address_guard::admit_connection(const boost::asio::ip::address& a) {
    std::lock_guard lock(mutex_);
    auto& e = entries_[a];
    if (e.connections >= max_connections_) return false;
    ++e.connections;
    return true;
}

void address_guard::release_connection(const boost::asio::ip::address& a) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(a);
    if (it == entries_.end() || it->second.connections == 0) return;
    --it->second.connections;
}

std::optional<std::chrono::seconds> address_guard::auth_failed(const boost::asio::ip::address& a,
                                                               clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (entries_.size() >= tuning::max_tracked_addresses && !entries_.count(a)) prune(now);
    auto& e = entries_[a];
    if (e.failures == 0 || now >= e.window_start + window_) {
        e.failures = 0;  // the window is over: a fresh allowance
        e.window_start = now;
    }
    if (e.failures < max_failures_) {
        ++e.failures;
        return std::nullopt;
    }
    return std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(e.window_start + window_ - now));
}

void address_guard::prune(clock::time_point now) {
    // Entries with no connection whose failure window is over carry nothing worth keeping.
    // If every entry is live (a flood from very many addresses), the oldest windows go first,
    // so the table stays bounded even then.
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.connections == 0 && now >= it->second.window_start + window_)
            it = entries_.erase(it);
        else
            ++it;
    }
    while (entries_.size() >= tuning::max_tracked_addresses) {
        auto oldest = entries_.end();
        for (auto it = entries_.begin(); it != entries_.end(); ++it)
            if (it->second.connections == 0 &&
                (oldest == entries_.end() || it->second.window_start < oldest->second.window_start))
                oldest = it;
        if (oldest == entries_.end()) break;  // all hold connections: bounded by the connection cap
        entries_.erase(oldest);
    }
}

}  // namespace fieldsync::server::detail
