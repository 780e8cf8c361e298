#pragma once
// Per-address limits against abuse (ARCHITECTURE.md, "Hardened access"): how many connections
// one address may hold, and how fast it may guess tokens. Failed sign-ins are counted per
// address in a fixed window; past the allowance each further failure from that address is
// answered 429 rate_limited (with the seconds left) after a delay, holding one of the
// address's connections meanwhile, so guessing stays slow. Valid tokens are never throttled:
// checking one costs a hash and an index lookup, and many honest phones share one carrier
// NAT address with whoever presents a stale token.
//
// Thread safety: every member may be called from any thread. Memory is bounded: at most
// tuning::max_tracked_addresses entries; expired ones are pruned as new ones arrive.

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>

namespace fieldsync::server::detail {

class address_guard {
public:
    using clock = std::chrono::steady_clock;

    address_guard(std::size_t max_connections_per_address, int max_auth_failures,
                  std::chrono::seconds failure_window, std::chrono::milliseconds over_allowance_delay);

    /// Counts a new connection of `a`; false (and nothing counted) when it holds the most.
    bool admit_connection(const boost::asio::ip::address& a);
    void release_connection(const boost::asio::ip::address& a);

    /// A request from `a` presented an unknown or revoked token; counts it. nullopt while `a`
    /// is within its allowance (answer 401); past it, the seconds until its window ends
    /// (answer 429 after over_allowance_delay()).
    std::optional<std::chrono::seconds> auth_failed(const boost::asio::ip::address& a,
                                                    clock::time_point now = clock::now());
    std::chrono::milliseconds over_allowance_delay() const noexcept { return delay_; }

private:
    struct entry {
        std::size_t connections = 0;
        int failures = 0;
        clock::time_point window_start{};
    };
    void prune(clock::time_point now);

    const std::size_t max_connections_;
    const int max_failures_;
    const std::chrono::seconds window_;
    const std::chrono::milliseconds delay_;
    std::mutex mutex_;
    std::map<boost::asio::ip::address, entry> entries_;
};

}  // namespace fieldsync::server::detail
