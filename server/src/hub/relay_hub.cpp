// The relay hub's loop (relay_hub.hpp; ARCHITECTURE.md, "Relay hub").

#include "relay_hub.hpp"

#include <fieldsync/client/replica.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

namespace fieldsync::server {

namespace proto = fieldsync::protocol;
using proto::errc;

struct relay_hub::impl {
    hub_options options;
    relay_store& st;
    std::unique_ptr<client::replica> link;

    std::mutex round_mutex;             // one round at a time
    std::int64_t handed_seq = 0;        // forwards up to this seq are in the replica's outbox

    mutable std::mutex mutex;           // guards what follows
    std::condition_variable cv;
    bool stopping = false;
    hub_status stats;
    std::thread thread;

    impl(hub_options o, relay_store& s) : options(std::move(o)), st(s) {}

    // Waits up to `d`, or less if stop() is called. Returns false when stopping.
    bool wait_for(std::chrono::milliseconds d) {
        std::unique_lock lock(mutex);
        cv.wait_for(lock, d, [&] { return stopping; });
        return !stopping;
    }
    bool stopped() const {
        std::lock_guard lock(mutex);
        return stopping;
    }

    std::optional<proto::error> run_round();
    void loop();
};

namespace {

proto::error link_error(const client::error& e) {
    // Whatever failed on the link (network, timeout, 5xx, a refused token) is the upstream
    // being unavailable to the hub's devices; the message says which.
    const auto code = static_cast<client::errc>(e.code.value());
    if (e.code.category() == client::client_category() && code == client::errc::storage)
        return {errc::storage_error, "the upstream replica: " + e.message};
    return {errc::unavailable, "the upstream link: " + e.message};
}

}  // namespace

relay_hub::relay_hub(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

relay_hub::~relay_hub() { stop(); }

proto::expected<std::unique_ptr<relay_hub>> relay_hub::open(hub_options options, relay_store& st) {
    if (options.upstream_url.empty() || options.upstream_token.empty())
        return proto::error{errc::bad_request, "a relay hub needs the upstream URL and the hub's device token there"};
    if (options.replica_path.empty()) return proto::error{errc::bad_request, "a relay hub needs a replica file"};
    auto p = std::make_unique<impl>(std::move(options), st);
    client::replica_options ro;
    ro.path = p->options.replica_path;
    ro.schema = nullptr;  // forwarded changes were checked by the hub; the upstream decides
    ro.tuning.max_attempts = tuning::hub_request_attempts;
    // Whole records: the hub mirrors what it pulls into its own store (relay_answer).
    ro.pull_diffs = false;
    ro.http.ca_file = p->options.upstream_ca_file;
    auto* self = p.get();
    // The replica's backoff sleeps end early when the hub stops.
    ro.seams.sleep = [self](std::chrono::milliseconds d) { self->wait_for(d); };
    auto r = client::replica::open(std::move(ro));
    if (!r) return proto::error{errc::storage_error, "cannot open the upstream replica: " + r.err().message};
    p->link = std::move(*r);
    if (auto c = p->link->configure(p->options.upstream_url, p->options.upstream_token); !c)
        return proto::error{errc::storage_error, "cannot configure the upstream replica: " + c.err().message};
    return std::unique_ptr<relay_hub>(new relay_hub(std::move(p)));
}

std::optional<proto::error> relay_hub::impl::run_round() {
    std::lock_guard one(round_mutex);
    // 1. Devices' changes not yet in the replica's outbox, in the order they reached the hub.
    //    After a restart handed_seq is 0 and everything unsettled is handed again: forward()
    //    skips what the outbox holds, and the upstream answers a change it has decided with
    //    its first answer, so nothing is applied twice.
    for (;;) {
        auto batch = st.relay_forwards(handed_seq, tuning::hub_hand_batch);
        if (!batch) return batch.err();
        if (batch->empty()) break;
        for (const auto& f : *batch) {
            if (auto ok = link->forward(f.change); !ok) return link_error(ok.err());
            handed_seq = f.seq;
        }
    }

    // 2. Push and pull. Each answer goes into the hub's store before the replica commits it;
    //    a crash between the two makes the replica ask again, and relay_answer is idempotent.
    std::int64_t forwarded = 0, pulled = 0;
    auto on_answer = [&](const proto::sync_response& a) -> client::result<void> {
        if (auto done = st.relay_answer(a); !done)
            return client::make_error(client::errc::storage, "the hub's store: " + done.err().message);
        for (const auto& r : a.results)
            if (r.status != proto::change_status::queued) ++forwarded;
        pulled += static_cast<std::int64_t>(a.changes.size());
        return {};
    };
    auto keep_going = [this](const client::sync_progress&) { return !stopped(); };
    auto r = link->sync(keep_going, on_answer);
    auto backlog = st.relay_backlog();

    std::lock_guard lock(mutex);
    stats.forwarded += forwarded;
    stats.pulled += pulled;
    if (backlog) stats.backlog = *backlog;
    if (!r) {
        ++stats.failed_rounds;
        stats.link_up = false;
        const auto e = link_error(r.err());
        stats.last_error = e.message;
        return e;
    }
    ++stats.rounds;
    stats.link_up = true;
    return std::nullopt;
}

void relay_hub::impl::loop() {
    using clock = std::chrono::steady_clock;
    auto next_pull = clock::now();
    int failures = 0;
    bool was_up = true;
    while (!stopped()) {
        auto waiting = st.relay_forwards(handed_seq, 1);
        const bool due = clock::now() >= next_pull || !waiting || !waiting->empty();
        if (!due) {
            wait_for(options.poll_interval);
            continue;
        }
        const auto e = run_round();
        if (stopped()) break;
        if (e) {
            ++failures;
            if (was_up) std::cerr << "fieldsync-server: upstream unreachable, devices' changes wait at the hub: "
                                  << e->message << std::endl;
            was_up = false;
            const auto delay = std::min(options.retry_cap,
                                        std::chrono::milliseconds(options.retry_interval.count()
                                                                  << std::min(failures - 1, 16)));
            next_pull = clock::now() + delay;
            // A failed round is retried only when the delay is over, even if devices push.
            wait_for(delay);
            continue;
        }
        if (!was_up) std::cerr << "fieldsync-server: upstream reachable again" << std::endl;
        was_up = true;
        failures = 0;
        next_pull = clock::now() + options.pull_interval;
        wait_for(options.poll_interval);
    }
}

void relay_hub::start() {
    std::lock_guard lock(impl_->mutex);
    if (impl_->thread.joinable() || impl_->stopping) return;
    impl_->thread = std::thread([p = impl_.get()] { p->loop(); });
}

void relay_hub::stop() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        impl_->cv.notify_all();
    }
    if (impl_->thread.joinable()) impl_->thread.join();
}

std::optional<proto::error> relay_hub::round() { return impl_->run_round(); }

hub_status relay_hub::status() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->stats;
}

}  // namespace fieldsync::server
