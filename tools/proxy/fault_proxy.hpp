#pragma once
// A TCP proxy that makes a loopback link behave like a bad mobile one: limited bandwidth each
// way, latency, random stalls, connections reset after a time or a number of bytes, and
// answers cut short. Tests run it in-process; tools/fieldsync-proxy.cpp runs it by hand.
//
// Faults are drawn from one seeded generator, per connection in accept order, so the same seed
// and the same traffic give the same faults: a failing run is replayed by passing its seed.
// (Stalls depend on the chunking of reads, which the kernel decides; resets by time, resets
// by bytes and truncation offsets do not.)
//
// Thread safety: the proxy runs its own io_context on one thread (start) or the caller's
// (run); stats() and stop() may be called from any thread. Construction throws
// std::system_error when the listening socket cannot be opened.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace fieldsync::tools {

struct fault_options {
    std::string listen_host = "127.0.0.1";
    std::uint16_t listen_port = 0;              // 0: an ephemeral port (see port())
    std::string target_host = "127.0.0.1";
    std::uint16_t target_port = 0;

    std::uint64_t bytes_per_second = 0;         // each way; 0 = unlimited
    std::chrono::milliseconds latency{0};       // one way, added to every byte
    double stall_probability = 0;               // per forwarded chunk: the link stops ...
    std::chrono::milliseconds stall_max{0};     // ... for a uniform time up to this
    std::chrono::milliseconds reset_after{0};   // each connection is cut this long after it opens
    std::uint64_t reset_after_bytes = 0;        // ... or after this many bytes (both ways)
    double truncate_probability = 0;            // per connection: the server's bytes stop ...
    std::uint64_t truncate_within = 64 * 1024;  // ... after a uniform count in [1, this]
    std::uint64_t seed = 0;                     // 0: drawn from std::random_device
};

struct fault_stats {
    std::uint64_t connections = 0;
    std::uint64_t bytes_up = 0;     // client -> server, forwarded
    std::uint64_t bytes_down = 0;   // server -> client, forwarded
    std::uint64_t resets = 0;       // connections cut by reset_after / reset_after_bytes
    std::uint64_t truncations = 0;  // connections whose server bytes were cut
    std::uint64_t stalls = 0;
};

class fault_proxy {
public:
    explicit fault_proxy(fault_options options);
    ~fault_proxy();
    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;

    std::uint16_t port() const;
    std::string url() const;                    // "http://127.0.0.1:<port>"
    std::uint64_t seed() const;                 // the seed in use (drawn when options.seed == 0)
    fault_stats stats() const;
    /// Receives one line per fault (connection number, what, when); called on the proxy's thread.
    void on_event(std::function<void(const std::string&)> log);

    /// Serves on a thread of its own until stop().
    void start();
    /// Serves on the calling thread until stop().
    void run();
    /// Closes the listener and every connection and waits until their handlers have run
    /// (joins the thread of start()). Idempotent; the destructor calls it.
    void stop();

    struct impl;

private:
    std::shared_ptr<impl> impl_;
    bool stopped_ = false;
};

}  // namespace fieldsync::tools
