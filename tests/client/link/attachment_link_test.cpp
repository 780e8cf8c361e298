// Issue 19, "Done when": a 5 MiB photo being uploaded over the 64 kbit/s link does not delay
// the sync of 100 records made after it: they reach the server while the photo is still on
// its way. upload() runs on one thread and sync() on another, both through the fault proxy;
// the upload is then stopped through its progress callback, as an app stops it. Prints the
// upload's throughput over the link; nothing asserts on time.

#include "e2e/e2e_support.hpp"

#include "blobs/sha256.hpp"
#include "proxy/fault_proxy.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <iostream>
#include <random>
#include <thread>

namespace fieldsync::test {
namespace {

TEST_CASE("a 5 MiB photo uploading over 64 kbit/s does not delay the sync of 100 records made after it",
          "[client][link][slow][attachments]") {
    live_server server;
    temp_dir dir;
    tools::fault_options fo;
    fo.target_port = server.port();
    fo.bytes_per_second = 64'000 / 8;
    fo.seed = 20151119;
    tools::fault_proxy link(fo);
    link.start();

    client::replica_options o;
    o.path = dir.file("phone.db");
    auto opened = client::replica::open(std::move(o));
    REQUIRE(opened);
    auto phone = std::move(*opened);
    const auto token = server.add_device("Điện thoại ấp 3");
    ok(phone->configure(link.url(), token));

    // The photo is attached (and its registration synced) first.
    ok(phone->put("registrations", registration("dv-01", 0), {.id = "dk-anh", .unit_id = "huyen-giong-trom"}));
    std::string bytes("\xFF\xD8\xFF\xE0", 4);
    std::mt19937_64 rng(5);
    while (bytes.size() < 5u * 1024 * 1024) bytes.push_back(static_cast<char>(rng()));
    const auto ref = ok(phone->attach_bytes("registrations", "dk-anh", "scans", bytes, "Ảnh biên bản.jpg"));
    ok(phone->sync());

    std::atomic<bool> stop{false};
    std::atomic<std::int64_t> acknowledged{0};
    client::result<client::upload_report> uploaded = client::upload_report{};
    const auto started = std::chrono::steady_clock::now();
    std::thread uploader([&] {
        uploaded = phone->upload({.progress = [&](const client::upload_progress& p) {
            acknowledged = p.sent;
            return !stop.load();
        }});
    });

    // 100 records made after the photo, synced while it uploads.
    std::vector<client::replica::put_item> items;
    for (int i = 0; i < 100; ++i)
        items.push_back({"members", member(static_cast<std::size_t>(i)),
                         {.id = "sau-anh-" + std::to_string(i), .unit_id = "huyen-giong-trom"}});
    ok(phone->put_many(items));
    const auto sync_started = std::chrono::steady_clock::now();
    auto rep = phone->sync();
    const auto sync_took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sync_started);
    INFO((rep ? std::string() : rep.err().message));
    REQUIRE(rep);
    CHECK(rep->pushed == 100);

    // Every record is on the server, and the photo is not.
    for (int i = 0; i < 100; ++i) store_head(server.store(), "members", "sau-anh-" + std::to_string(i));
    auto t = client::make_http_transport();
    client::http_request req;
    req.method = "GET";
    req.url = server.url() + "/v1/uploads/" + ref.sha256;
    req.headers = {{"Authorization", "Bearer " + token}};
    auto status = t->send(req, std::chrono::seconds(10));
    REQUIRE(status);
    REQUIRE(status->status == 200);
    const auto held = json::parse(status->body);
    CHECK(held["complete"] == false);
    CHECK(held["offset"].get<std::int64_t>() < ref.size);

    // Stopped as an app stops it: the callback says no after the chunk in flight.
    stop = true;
    uploader.join();
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    link.stop();
    REQUIRE_FALSE(uploaded);
    CHECK(uploaded.err().code == client::errc::cancelled);
    const auto queue = ok(phone->upload_queue());
    REQUIRE(queue.size() == 1);
    CHECK(queue[0].state == client::upload_state::waiting);
    CHECK(queue[0].sent == acknowledged.load());
    const double seconds = static_cast<double>(took.count()) / 1000.0;
    std::cout << "upload over 64 kbit/s: " << acknowledged.load() << " of " << ref.size << " bytes acknowledged in "
              << seconds << " s, " << static_cast<std::int64_t>(static_cast<double>(acknowledged.load()) / seconds)
              << " bytes/s; the sync of 100 records beside it took " << sync_took.count() / 1000.0 << " s ("
              << rep->bytes_sent << " bytes up, " << rep->bytes_received << " down)\n";
}

}  // namespace
}  // namespace fieldsync::test
