// Several servers on one store (ARCHITECTURE.md, "The store on PostgreSQL"): each store object
// here stands for a fieldsync-server process with its own writer and read pool, all on the same
// database. On PostgreSQL that is the deployment of several stateless servers; on SQLite it is
// the same file opened three times. Writers and pullers run at once; the feed must have no
// hole (a seq committed after a puller passed it) and a change-set must be applied once
// whichever server receives it, however many receive it together.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include <fieldsync/server/store.hpp>

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
using fieldsync::server::device;
using fieldsync::server::device_role;
using fieldsync::server::store;
using proto::json;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("fieldsync-multi-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::vector<std::unique_ptr<store>> open_servers(const fs::path& file, int n) {
    std::vector<std::unique_ptr<store>> out;
    for (int i = 0; i < n; ++i) {
        fieldsync::server::store_options o;
        o.path = file.string();
        auto s = fieldsync::test::open_store_under_test(o);
        INFO((s ? std::string() : s.err().message));
        REQUIRE(s.has_value());
        out.push_back(std::move(s).value());
    }
    return out;
}

proto::change_entry new_member(const std::string& id, const std::string& name) {
    proto::change_entry e;
    e.c.change_id = "c-" + id;
    e.c.collection = "members";
    e.c.id = id;
    e.c.unit_id = "xa-binh-hoa";
    e.c.op = proto::op_kind::put;
    e.c.base_version = 0;
    e.c.data = {{"name", name}, {"cell", "chi-bo-ap-1"}, {"role", "đảng viên"}};
    return e;
}

}  // namespace

TEST_CASE("several servers write while pullers page with stored cursors: every change reaches every puller once",
          "[store][multi]") {
    temp_dir dir;
    constexpr int k_servers = 3, k_sets = 30, k_per_set = 5, k_page = 7;
    auto servers = open_servers(dir.path / "central.db", k_servers);
    std::vector<device> devices;
    for (int i = 0; i < k_servers; ++i) {
        auto d = servers[0]->add_device("Máy " + std::to_string(i + 1), "xa-binh-hoa", device_role::field);
        REQUIRE(d.has_value());
        devices.push_back(d->first);
    }

    std::atomic<int> writers_left{k_servers};
    std::vector<std::set<std::string>> accepted(k_servers);  // per writer: the records it was told are applied
    std::vector<std::thread> threads;
    for (int w = 0; w < k_servers; ++w)
        threads.emplace_back([&, w] {
            for (int b = 0; b < k_sets; ++b) {
                proto::change_set cs;
                cs.batch_id = "b-" + std::to_string(w) + "-" + std::to_string(b);
                for (int k = 0; k < k_per_set; ++k) {
                    const auto id = "m-" + std::to_string(w) + "-" + std::to_string(b) + "-" + std::to_string(k);
                    cs.changes.push_back(new_member(id, "Trần Thị Ánh " + id));
                }
                auto r = servers[static_cast<std::size_t>(w)]->push(devices[static_cast<std::size_t>(w)], std::move(cs));
                if (!r) continue;  // a refusal: nothing was accepted, nothing must show
                for (const auto& res : *r)
                    if (res.status == proto::change_status::applied)
                        accepted[static_cast<std::size_t>(w)].insert(res.change_id.substr(2));
            }
            --writers_left;
        });

    // Each puller reads through its own server, as a device that stores its cursor between
    // pulls; it keeps every record id it is given and the seqs in order.
    struct puller_log {
        std::map<std::string, int> times;
        bool seq_order = true;
        std::string failed;  // a pull refused (Catch's assertions are not for other threads)
    };
    std::vector<puller_log> logs(k_servers);
    for (int p = 0; p < k_servers; ++p)
        threads.emplace_back([&, p] {
            auto& s = *servers[static_cast<std::size_t>((p + 1) % k_servers)];
            auto& log = logs[static_cast<std::size_t>(p)];
            std::int64_t cursor = 0, last = 0;
            for (;;) {
                const bool writers_done = writers_left.load() == 0;
                auto page = s.pull(cursor, k_page);
                if (!page) {
                    log.failed = page.err().message;
                    break;
                }
                for (const auto& c : page->changes) ++log.times[c.id];
                // The cursor only moves forward: a page never starts before the last one ended.
                if (!page->changes.empty()) {
                    if (page->last_seq <= last) log.seq_order = false;
                    last = page->last_seq;
                }
                cursor = page->last_seq;
                // Finished once a pull that began after the last write found nothing more.
                if (writers_done && !page->more && page->changes.empty()) break;
                if (page->changes.empty()) std::this_thread::yield();
            }
        });
    for (auto& t : threads) t.join();

    std::set<std::string> all;
    for (const auto& a : accepted) all.insert(a.begin(), a.end());
    CHECK(all.size() == static_cast<std::size_t>(k_servers * k_sets * k_per_set));
    for (int p = 0; p < k_servers; ++p) {
        const auto& log = logs[static_cast<std::size_t>(p)];
        INFO("puller " << p);
        CHECK(log.failed == "");
        CHECK(log.seq_order);
        CHECK(log.times.size() == all.size());
        std::size_t twice = 0, missing = 0;
        for (const auto& id : all) {
            const auto it = log.times.find(id);
            if (it == log.times.end())
                ++missing;
            else if (it->second != 1)
                ++twice;
        }
        CHECK(missing == 0);
        CHECK(twice == 0);
    }
}

TEST_CASE("the same change-set sent to two servers at once is applied once and both answer alike",
          "[store][multi][idempotency]") {
    temp_dir dir;
    auto servers = open_servers(dir.path / "central.db", 2);
    auto d = servers[0]->add_device("Điện thoại Bí thư", "xa-binh-hoa", device_role::field);
    REQUIRE(d.has_value());
    const auto dev = d->first;
    constexpr int k_rounds = 25;
    std::barrier start(2);
    std::vector<std::vector<proto::change_result>> answers[2];
    std::vector<std::thread> threads;
    for (int s = 0; s < 2; ++s)
        threads.emplace_back([&, s] {
            for (int round = 0; round < k_rounds; ++round) {
                proto::change_set cs;
                cs.batch_id = "retry-" + std::to_string(round);
                cs.changes.push_back(new_member("r-" + std::to_string(round) + "-a", "Lê Văn Ất"));
                cs.changes.push_back(new_member("r-" + std::to_string(round) + "-b", "Phạm Thị Bích"));
                start.arrive_and_wait();
                auto r = servers[static_cast<std::size_t>(s)]->push(dev, std::move(cs));
                answers[s].push_back(r ? *r : std::vector<proto::change_result>{});
            }
        });
    for (auto& t : threads) t.join();

    for (int round = 0; round < k_rounds; ++round) {
        INFO("round " << round);
        const auto& a = answers[0][static_cast<std::size_t>(round)];
        const auto& b = answers[1][static_cast<std::size_t>(round)];
        REQUIRE(a.size() == 2);
        REQUIRE(b.size() == 2);
        for (std::size_t k = 0; k < 2; ++k) {
            CHECK(a[k].status == proto::change_status::applied);
            CHECK(b[k].status == a[k].status);
            CHECK(b[k].version == a[k].version);
        }
        for (const char* suffix : {"-a", "-b"}) {
            auto h = servers[0]->history("members", "r-" + std::to_string(round) + suffix);
            REQUIRE(h.has_value());
            CHECK(h->size() == 1);
        }
    }
    // And the feed holds each record once.
    auto page = servers[1]->pull(0, 1000);
    REQUIRE(page.has_value());
    CHECK(page->changes.size() == 2 * k_rounds);
}

// PostgreSQL restarted, failed over, or a backend killed: every connection of a server is cut
// at once. The writes in flight are answered unavailable (retryable, never success), the
// store opens its connections again at the next transaction, and the retries are decided by
// their change ids: nothing applied twice, nothing lost.
TEST_CASE("a store whose PostgreSQL connections are all cut answers unavailable, then reconnects and applies each change once",
          "[store][multi][postgres]") {
    temp_dir dir;
    const auto name = "fs_cut_" + std::to_string(std::random_device{}());
    auto arg = fieldsync::test::store_argument_under_test((dir.path / "central.db").string());
    REQUIRE(arg.rfind("postgres:", 0) == 0);
    fieldsync::server::store_options o;
    o.path = arg.substr(9) + " application_name=" + name;
    auto opened = fieldsync::server::open_postgres_store(o);
    REQUIRE(opened.has_value());
    auto& st = **opened;
    auto d = st.add_device("Điện thoại ấp Phú Lợi", "xa-binh-hoa", device_role::field);
    REQUIRE(d.has_value());
    const auto dev = d->first;
    auto change_set = [](const std::string& batch, const std::string& id) {
        proto::change_set cs;
        cs.batch_id = batch;
        cs.changes.push_back(new_member(id, "Võ Thị Lợi " + id));
        return cs;
    };
    auto cut = [&] {
        fieldsync::test::run_on_postgres_under_test(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" + name + "'");
    };
    // Pushes until an answer comes: each failure must be a retryable one.
    auto push_until_answered = [&](const std::string& batch, const std::string& id) {
        for (int attempt = 0; attempt < 5; ++attempt) {
            auto r = st.push(dev, change_set(batch, id));
            if (r) return *r;
            INFO(r.err().message);
            CHECK(r.err().code == proto::errc::unavailable);
        }
        FAIL("no answer after 5 attempts");
        return std::vector<proto::change_result>{};
    };

    auto first = push_until_answered("b-1", "m-1");
    REQUIRE(first.size() == 1);
    CHECK(first[0].status == proto::change_status::applied);
    for (int round = 2; round <= 4; ++round) {
        cut();
        const auto id = "m-" + std::to_string(round);
        auto r = push_until_answered("b-" + std::to_string(round), id);
        REQUIRE(r.size() == 1);
        CHECK(r[0].status == proto::change_status::applied);
        // Reads come back too.
        bool read = false;
        for (int attempt = 0; attempt < 5 && !read; ++attempt) read = st.get("members", id).has_value();
        CHECK(read);
    }
    cut();
    // The first change-set sent again after the cut is answered from its first answer.
    auto again = push_until_answered("b-1", "m-1");
    REQUIRE(again.size() == 1);
    CHECK(again[0].status == proto::change_status::applied);
    CHECK(again[0].version == first[0].version);
    for (int i = 1; i <= 4; ++i) {
        auto h = st.history("members", "m-" + std::to_string(i));
        REQUIRE(h.has_value());
        CHECK(h->size() == 1);
    }
    auto page = st.pull(0, 100);
    REQUIRE(page.has_value());
    CHECK(page->changes.size() == 4);

    // Cuts while change-sets are being written: some land in the middle of a transaction or of
    // its COMMIT. Each change-set is sent until it is answered; each is applied once.
    constexpr int k_sets = 40;
    std::atomic<bool> done{false};
    std::thread cutter([&] {
        while (!done.load()) {
            cut();
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
        }
    });
    std::vector<std::vector<proto::change_result>> answers;
    int refused = 0;
    for (int i = 0; i < k_sets; ++i) {
        const auto n = std::to_string(i);
        for (int attempt = 0; attempt < 200; ++attempt) {
            auto r = st.push(dev, change_set("cut-" + n, "cut-" + n));
            if (r) {
                answers.push_back(*r);
                break;
            }
            REQUIRE(r.err().code == proto::errc::unavailable);
            ++refused;
        }
    }
    done = true;
    cutter.join();
    WARN(refused << " pushes answered unavailable while connections were cut");
    REQUIRE(answers.size() == k_sets);
    for (int i = 0; i < k_sets; ++i) {
        INFO("change-set " << i);
        CHECK(answers[static_cast<std::size_t>(i)].at(0).status == proto::change_status::applied);
        CHECK(answers[static_cast<std::size_t>(i)].at(0).version == 1);
        auto h = st.history("members", "cut-" + std::to_string(i));
        REQUIRE(h.has_value());
        CHECK(h->size() == 1);
    }
    auto all = st.pull(0, 1000);
    REQUIRE(all.has_value());
    CHECK(all->changes.size() == 4 + k_sets);
}

// A sync waiting on one server is answered by a change written through another: each server
// hears the others' commits (PostgreSQL's LISTEN/NOTIFY), not only its own.
TEST_CASE("a server hears of commits made through another server on the same database",
          "[store][multi][postgres]") {
    temp_dir dir;
    auto servers = open_servers(dir.path / "central.db", 2);
    auto d = servers[0]->add_device("Điện thoại chi bộ ấp Phú Hòa", "xa-binh-hoa", device_role::field);
    REQUIRE(d.has_value());
    std::mutex m;
    std::condition_variable cv;
    int heard = 0;
    auto subscription = servers[1]->watch_commits([&] {
        std::lock_guard lock(m);
        ++heard;
        cv.notify_all();
    });
    auto wait_for_news = [&] {
        std::unique_lock lock(m);
        heard = 0;
        lock.unlock();
        return [&] {
            std::unique_lock l(m);
            return cv.wait_for(l, std::chrono::seconds(10), [&] { return heard > 0; });
        };
    };
    {
        auto heard_it = wait_for_news();
        proto::change_set cs;
        cs.batch_id = "b-1";
        cs.changes.push_back(new_member("m-1", "Đặng Văn Hòa"));
        auto r = servers[0]->push(d->first, std::move(cs));
        REQUIRE(r.has_value());
        CHECK(heard_it());
    }
    {
        // An administrative write (a unit added) through the other server, too.
        auto heard_it = wait_for_news();
        auto u = servers[0]->put_unit({"huyen-cho-lach", "", "Huyện Chợ Lách", "district", ""});
        INFO((u ? std::string() : u.err().message));
        REQUIRE(u.has_value());
        CHECK(heard_it());
    }
}

// ARCHITECTURE.md, "Failover": after a promotion the new primary's feed ends where its standby's
// copy ended; seqs the lost primary may have shown past that are written off, so a cursor that
// holds one starts over instead of skipping what the new primary writes under the same numbers.
// The promotion is played by telling the store's meta that its last write ran on another
// timeline (the real one is tests/cluster's failover test).
TEST_CASE("after a promotion, a cursor the lost primary may have issued starts over and older cursors go on",
          "[store][multi][postgres]") {
    temp_dir dir;
    const auto file = (dir.path / "central.db").string();
    auto servers = open_servers(file, 2);
    auto d = servers[0]->add_device("Điện thoại chi bộ ấp 1", "xa-binh-hoa", device_role::field);
    REQUIRE(d.has_value());
    const auto dev = d->first;
    auto push_one = [&](store& s, const std::string& id, const std::string& name) {
        proto::change_set cs;
        cs.batch_id = "b-" + id;
        cs.changes.push_back(new_member(id, name));
        auto r = s.push(dev, std::move(cs));
        INFO((r ? std::string() : r.err().message));
        REQUIRE(r.has_value());
        REQUIRE(r->size() == 1);
        CHECK((*r)[0].status == proto::change_status::applied);
    };
    push_one(*servers[0], "m-truoc", "Phạm Thị Thu Trước");
    auto before = servers[0]->device_pull(dev, 0, 100);
    REQUIRE(before.has_value());
    REQUIRE(before->changes.size() == 1);
    const auto held = before->last_seq;  // a cursor both lines share

    fieldsync::test::run_on_postgres_under_test("UPDATE meta SET value = 'FFFFFFFF' WHERE key = 'timeline'", file);
    // The first write after it, through either server, writes off what the old line may have
    // shown; the second server's write after it does not write off more.
    push_one(*servers[1], "m-sau-1", "Nguyễn Văn Sau");
    push_one(*servers[0], "m-sau-2", "Lê Thị Sáu");

    // A cursor of the shared part: only what came after it, no reset.
    auto on = servers[1]->device_pull(dev, held, 100);
    REQUIRE(on.has_value());
    CHECK_FALSE(on->restarted);
    std::set<std::string> ids;
    for (const auto& c : on->changes) ids.insert(c.id);
    CHECK(ids == std::set<std::string>{"m-sau-1", "m-sau-2"});
    // The new line's seqs start past the written-off ones.
    CHECK(on->last_seq > held + 1'000'000);

    // Cursors the lost primary may have issued (its next seqs) start over from the beginning.
    for (const std::int64_t lost : {held + 1, held + 3, held + 1000}) {
        INFO("cursor " << lost);
        auto page = servers[0]->device_pull(dev, lost, 100);
        REQUIRE(page.has_value());
        CHECK(page->restarted);
        CHECK(page->changes.size() == 3);
    }
    // A cursor of the new line is no lost one.
    auto last = servers[0]->device_pull(dev, on->last_seq, 100);
    REQUIRE(last.has_value());
    CHECK_FALSE(last->restarted);
    CHECK(last->changes.empty());

    // A store opened again reads the same (nothing of this is kept in memory).
    servers.clear();
    auto again = open_servers(file, 1);
    auto page = again[0]->device_pull(dev, held + 2, 100);
    REQUIRE(page.has_value());
    CHECK(page->restarted);
}
