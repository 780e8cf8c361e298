// The server's registry of live sessions (server/src/http/session.hpp, server_state) under
// concurrent use: sessions ending on their own threads while a full server looks for an idle
// one to evict. A session's destructor takes the registry's lock to forget itself, so no
// session may be destroyed while that lock is held; evict_idle once did exactly that when a
// session ended between being found and being let go, and the server hung.

#include "e2e/support.hpp"

#include "http/session.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

namespace fieldsync::e2e {
namespace {

namespace detail = fieldsync::server::detail;

// A session that has been idle forever and ends (forgets itself) when its last owner lets go,
// as http_session does; evicting it does nothing.
class idle_session final : public detail::session_base {
public:
    explicit idle_session(detail::server_state& state) : state_(state) { idle_since_ = 1; }
    ~idle_session() override {
        if (key_) state_.forget(key_);
    }
    void shutdown() override {}
    bool evict(std::int64_t) override { return false; }
    void remember(const std::shared_ptr<idle_session>& self) { key_ = state_.remember(self); }

private:
    detail::server_state& state_;
    std::uint64_t key_ = 0;
};

}  // namespace

TEST_CASE("sessions ending while a full server looks for one to evict: no session is destroyed under the registry's lock",
          "[e2e][lifecycle][sessions]") {
    temp_dir dir;
    srv::store_options so;
    so.path = (dir.path() / "registry.db").string();
    auto st = srv::open_sqlite_store(so);
    REQUIRE(st);
    auto state = std::make_shared<detail::server_state>(server_fixture::quick_options(), srv::store_roles::of(**st));

    std::atomic<bool> stop{false};
    std::atomic<long> ended{0}, scans{0};
    auto run = std::async(std::launch::async, [&] {
        // Sixteen sessions live at a time; each round one of them, picked at random as
        // connections end in any order, ends and a new one begins. One that ends while a scan
        // holds it ends in the scan's hands.
        std::thread enders([&] {
            std::vector<std::shared_ptr<idle_session>> live(16);
            std::uint64_t pick = 0x9e3779b97f4a7c15u;
            while (!stop) {
                pick = pick * 6364136223846793005u + 1442695040888963407u;  // an LCG: seeded, replayable
                auto& slot = live[(pick >> 33) % live.size()];
                if (slot) ++ended;
                slot = std::make_shared<idle_session>(*state);
                slot->remember(slot);
            }
        });
        std::thread evicter([&] {
            while (!stop) {
                state->evict_idle();
                ++scans;
            }
        });
        std::this_thread::sleep_for(std::chrono::seconds(2));
        stop = true;
        enders.join();  // its last sixteen end here
        evicter.join();
    });
    // A deadlocked registry never returns: fail with a message instead of hanging the suite.
    if (run.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
        std::fprintf(stderr, "session registry deadlocked after %ld sessions and %ld scans\n", ended.load(), scans.load());
        std::abort();
    }
    run.get();
    INFO(ended.load() << " sessions ended, " << scans.load() << " scans");
    CHECK(ended.load() > 0);
    CHECK(scans.load() > 0);
    CHECK(state->sessions() == 0);
    (*st)->close();
}

}  // namespace fieldsync::e2e
