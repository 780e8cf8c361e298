#include "http/sync_waits.hpp"

#include <fieldsync/server/store.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <utility>

namespace fieldsync::server::detail {

namespace net = boost::asio;

// One waiting sync. Its timer, `done_` and `poll_` belong to its executor (a session's
// strand); wake() and end() may come from any thread and only post there.
class sync_waits::waiter : public std::enable_shared_from_this<waiter> {
public:
    waiter(sync_waits& owner, const net::any_io_executor& ex, poll_fn&& poll)
        : owner_(owner), ex_(ex), timer_(ex), poll_(std::move(poll)) {}

    void start(std::chrono::steady_clock::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->check(true);
        });
    }

    // A commit: one read again, however many commits come before it runs (a read begun after
    // a commit sees it, so none is missed).
    void wake() {
        if (scheduled_.exchange(true)) return;
        net::post(ex_, [self = shared_from_this()] {
            self->scheduled_ = false;
            self->check(false);
        });
    }

    void end() {
        net::post(ex_, [self = shared_from_this()] { self->check(true); });
    }

    void check(bool last) {
        if (done_) return;
        auto send = poll_(last);
        if (!send) return;
        done_ = true;
        poll_ = nullptr;
        timer_.cancel();
        // Forgotten before the answer goes out: a client that asks again at once finds its
        // place free.
        owner_.forget(this);
        send();
    }

private:
    // Used on the executor only, so never after the server joined its threads and destroyed
    // the owner (a waiter left in a pending handler is destroyed with the io_context).
    sync_waits& owner_;
    net::any_io_executor ex_;
    net::steady_timer timer_;
    poll_fn poll_;
    std::atomic<bool> scheduled_{false};
    bool done_ = false;
};

sync_waits::sync_waits(sync_store& st, std::size_t max_waiting) : max_waiting_(max_waiting) {
    watch_ = st.watch_commits([this] { committed(); });
}

sync_waits::~sync_waits() {
    // Unsubscribing waits for a call in progress, which takes mutex_: not under it.
    std::shared_ptr<void> watch;
    {
        std::lock_guard lock(mutex_);
        watch = std::move(watch_);
    }
    watch.reset();
}

std::uint64_t sync_waits::commits() const {
    std::lock_guard lock(mutex_);
    return commits_;
}

std::size_t sync_waits::waiting() const {
    std::lock_guard lock(mutex_);
    return waiters_.size();
}

void sync_waits::committed() {
    std::lock_guard lock(mutex_);
    ++commits_;
    for (const auto& [key, w] : waiters_) w->wake();
}

std::function<void()> sync_waits::park(const net::any_io_executor& ex, std::chrono::steady_clock::time_point deadline,
                                       std::uint64_t seen, poll_fn&& poll) {
    std::shared_ptr<waiter> w;
    bool missed = false;
    {
        std::lock_guard lock(mutex_);
        if (stopped_ || waiters_.size() >= max_waiting_) return {};
        w = std::make_shared<waiter>(*this, ex, std::move(poll));
        waiters_.emplace(w.get(), w);
        missed = commits_ != seen;
    }
    w->start(deadline);
    // A commit between the caller's read and now found no waiter to wake.
    if (missed) w->wake();
    return [weak = std::weak_ptr<waiter>(w)] {
        if (auto self = weak.lock()) self->check(true);
    };
}

void sync_waits::forget(const waiter* w) {
    std::lock_guard lock(mutex_);
    waiters_.erase(w);
}

void sync_waits::stop() {
    std::map<const waiter*, std::shared_ptr<waiter>> all;
    std::shared_ptr<void> watch;
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
        all.swap(waiters_);
        watch = std::move(watch_);
    }
    watch.reset();
    for (const auto& [key, w] : all) w->end();
}

}  // namespace fieldsync::server::detail
