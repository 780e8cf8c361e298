#pragma once
// Syncs waiting for changes: POST /v1/sync with `wait_ms` whose answer would tell the device
// nothing new (protocol/SPEC.md, "Waiting for changes"). Each waiting sync holds a timer on
// its session's executor and a way to read its answer again; nothing in the store (no read
// transaction, no pooled connection) while it waits. The store tells of each commit that
// moved the feed (sync_store::watch_commits); every waiting sync then reads again on its own
// executor, and answers if its page is no longer empty, else waits on until its deadline.
//
// Thread safety: every member may be called from any thread, except that park()'s poll runs,
// and the function park() returns must be called, on the executor given to park().

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace fieldsync::server {
class sync_store;
}

namespace fieldsync::server::detail {

class sync_waits {
public:
    /// Reads the waiting sync again. When it has something to tell, or always when `last`
    /// (the deadline passed, the server stops, the client left), returns the function that
    /// sends its answer; the wait has ended (its place is free) before that is called, and
    /// poll is not called again. An empty function: nothing to tell, wait on.
    using send_fn = std::function<void()>;
    using poll_fn = std::function<send_fn(bool last)>;

    /// Listens to `st`'s commits until stop() or destruction; `max_waiting` syncs wait at once
    /// at most. The store must outlive this object.
    sync_waits(sync_store& st, std::size_t max_waiting);
    ~sync_waits();
    sync_waits(const sync_waits&) = delete;
    sync_waits& operator=(const sync_waits&) = delete;

    /// A count of the commits seen so far. Read it before the read whose answer is empty and
    /// give it to park(): a commit between the two makes the sync read again at once.
    std::uint64_t commits() const;

    /// Parks a sync until `deadline`: `poll` runs on `ex` after each commit (many commits
    /// while it runs make one more run), at the deadline (`last`), and when stop() is called
    /// (`last`). Returns a function that ends the wait now, answering it (for a client that
    /// left; call it on `ex`). Returns an empty function, and leaves `poll` as it was, when
    /// the sync may not wait: `max_waiting` syncs wait already, or stop() was called; the
    /// caller answers at once.
    std::function<void()> park(const boost::asio::any_io_executor& ex, std::chrono::steady_clock::time_point deadline,
                               std::uint64_t seen, poll_fn&& poll);

    /// Ends every wait (each answered on its executor, as at its deadline), refuses new ones
    /// and stops listening to the store. Idempotent.
    void stop();

    /// Syncs waiting now (the gauge of GET /metrics).
    std::size_t waiting() const;

private:
    class waiter;
    void committed();
    void forget(const waiter* w);

    const std::size_t max_waiting_;
    mutable std::mutex mutex_;
    std::uint64_t commits_ = 0;
    bool stopped_ = false;
    std::map<const waiter*, std::shared_ptr<waiter>> waiters_;
    std::shared_ptr<void> watch_;  // the store's subscription; reset outside mutex_
};

}  // namespace fieldsync::server::detail
