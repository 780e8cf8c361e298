// Attachments end to end (SPEC.md, "Attachments"): the replica's attach, upload and download
// against the real server on a loopback port. The record goes first and arrives without its
// bytes; the upload follows, resumes after cuts (a seeded transport that loses requests and
// answers, and the fault proxy cutting connections mid-chunk) and after the replica is closed
// mid-way, never sending again what the server acknowledged; another replica pulls the record
// and downloads the same bytes; file names keep their Vietnamese marks as written, NFC or NFD.
// The 64 kbit/s case (uploads never delay records) is tests/client/link/attachment_link_test.cpp.

#include "e2e_support.hpp"

#include "blobs/sha256.hpp"
#include "proxy/fault_proxy.hpp"

#include <fieldsync/client/tuning.hpp>

#include <fstream>
#include <iostream>
#include <mutex>
#include <random>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::upload_state;

namespace {

constexpr std::size_t kib = 1024;
constexpr std::size_t chunk = client::tuning::blob_chunk_bytes;

// A JPEG-looking file: the magic bytes, then seeded noise (which no gzip shrinks).
std::string photo(std::size_t size, std::uint64_t seed) {
    std::string out("\xFF\xD8\xFF\xE0", 4);
    std::mt19937_64 rng(seed);
    while (out.size() < size) out.push_back(static_cast<char>(rng()));
    out.resize(size);
    return out;
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
    REQUIRE(out.good());
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// The default transport without gzip, wrapped: counts the chunk bytes that reached the server
// (a PUT that got an answer, or whose answer this transport threw away), and, from a seeded
// generator, loses some requests before they are sent and some answers after the server
// handled them. Single-threaded use only.
class lossy_transport final : public client::transport {
public:
    explicit lossy_transport(std::uint64_t seed, double lose_request = 0, double lose_answer = 0)
        : inner_(client::make_http_transport(client::http_transport_options{.gzip = false})),
          rng_(seed),
          lose_request_(lose_request),
          lose_answer_(lose_answer) {}
    client::result<client::http_response> send(const client::http_request& req, std::chrono::milliseconds timeout) override {
        const bool put = req.method == "PUT";
        std::uniform_real_distribution<double> u(0, 1);
        if (put && u(rng_) < lose_request_) {
            ++lost_requests;
            return client::make_error(errc::network, "lossy: request lost");
        }
        auto r = inner_->send(req, timeout);
        if (put && r) chunk_bytes_at_server += static_cast<std::int64_t>(req.body.size());
        if (put && r && u(rng_) < lose_answer_) {
            ++lost_answers;
            return client::make_error(errc::network, "lossy: answer lost after the server handled it");
        }
        return r;
    }
    std::int64_t chunk_bytes_at_server = 0;
    int lost_requests = 0;
    int lost_answers = 0;

private:
    std::unique_ptr<client::transport> inner_;
    std::mt19937_64 rng_;
    double lose_request_, lose_answer_;
};

// GET /v1/uploads/{sha} straight to the server, with a device's token: what it holds.
json upload_status(live_server& server, const std::string& token, const std::string& sha) {
    auto t = client::make_http_transport();
    client::http_request req;
    req.method = "GET";
    req.url = server.url() + "/v1/uploads/" + sha;
    req.headers = {{"Authorization", "Bearer " + token}};
    auto r = t->send(req, std::chrono::seconds(10));
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    return json::parse(r->body);
}

std::string put_registration(client::replica& r, const std::string& id) {
    return ok(r.put("registrations", registration("dv-01", 0), {.id = id, .unit_id = "huyen-giong-trom"})).id;
}

}  // namespace

TEST_CASE("an attached photo: the record arrives first, then its bytes, and another replica downloads the same bytes",
          "[client][e2e][attachments]") {
    live_server server;
    temp_dir dir;
    auto phone = live_replica(server, dir, "phone");
    auto office = live_replica(server, dir, "office");
    const auto id = put_registration(*phone, "dk-2015-07");
    const auto bytes = photo(700 * kib, 1);
    const std::string nfc = "Bản đăng ký rèn luyện.jpg";
    const std::string nfd = "Ba\xCC\x89n \xC4\x91\x61\xCC\x86ng ky\xCC\x81 re\xCC\x80n luye\xCC\xA3\xCC\x82n.jpg";
    REQUIRE(nfc != nfd);
    write_file(dir.file("anh.jpg"), bytes);
    const auto ref = ok(phone->attach("registrations", id, "scans", dir.file("anh.jpg"), nfc));
    const auto second = photo(40 * kib, 2);
    const auto ref2 = ok(phone->attach_bytes("registrations", id, "scans", second, nfd));
    CHECK(ref.sha256 == client::detail::sha256::of(bytes));

    // The sync takes the record with both references, and no byte of either file.
    const auto rep = ok(phone->sync());
    CHECK(rep.pushed == 1);
    const auto head = store_head(server.store(), "registrations", id);
    REQUIRE(head.data["scans"].size() == 2);
    CHECK(head.data["scans"][0] == protocol::to_json(ref));
    CHECK(head.data["scans"][1]["name"] == nfd);
    CHECK(rep.bytes_sent < static_cast<std::int64_t>(40 * kib));
    // The other replica has the record and may not read the bytes yet: "not sent yet".
    ok(office->sync());
    auto early = office->download(ref.sha256);
    REQUIRE_FALSE(early);
    CHECK(early.err().code == errc::not_found);

    const auto up = ok(phone->upload());
    CHECK(up.completed == 2);
    CHECK(up.bytes_sent == static_cast<std::int64_t>(bytes.size() + second.size()));
    for (const auto& e : ok(phone->upload_queue())) CHECK(e.state == upload_state::sent);

    const auto path = ok(office->download(ref.sha256));
    CHECK(slurp(path) == bytes);
    CHECK(slurp(ok(office->download(ref2.sha256))) == second);
    // The names arrive as written: precomposed and decomposed are different bytes, both kept.
    const auto rec = ok(office->get("registrations", id));
    REQUIRE(rec);
    CHECK(rec->data["scans"][0]["name"] == nfc);
    CHECK(rec->data["scans"][1]["name"] == nfd);
    // The phone reads its own copy without asking the server.
    CHECK(slurp(ok(phone->download(ref.sha256))) == bytes);
}

TEST_CASE("an upload through a link that loses requests and answers resumes without sending acknowledged bytes again",
          "[client][e2e][attachments]") {
    live_server server;
    temp_dir dir;
    const std::uint64_t seed = std::random_device{}();
    INFO("seed " << seed);
    std::cout << "lossy upload: seed " << seed << "\n";
    auto lossy = std::make_shared<lossy_transport>(seed, 0.3, 0.3);
    auto phone = live_replica(server, dir, "phone", lossy);
    const auto id = put_registration(*phone, "dk-2015-08");
    const auto bytes = photo(10 * chunk + 1234, 3);
    const auto ref = ok(phone->attach_bytes("registrations", id, "scans", bytes, "Biên bản.jpg"));
    ok(phone->sync());

    int calls = 0;
    for (; calls < 200; ++calls) {
        auto r = phone->upload();
        if (r && r->waiting == 0) break;
        if (!r) CHECK(r.err().code == errc::network);
    }
    CHECK(calls > 0);  // the losses cut it at least once (none in 11 chunks: 0.49^11, under 0.1 %)
    CHECK(ok(phone->upload_queue())[0].state == upload_state::sent);
    // Each chunk reached the server once: answers lost were not resent, the GET said where to go on.
    CHECK(lossy->chunk_bytes_at_server == ref.size);
    std::cout << "lossy upload: " << calls + 1 << " calls, " << lossy->lost_requests << " requests and "
              << lossy->lost_answers << " answers lost\n";

    // The server checked the hash; the bytes come back whole.
    auto office = live_replica(server, dir, "office");
    ok(office->sync());
    CHECK(slurp(ok(office->download(ref.sha256))) == bytes);
}

TEST_CASE("an upload through the fault proxy, connections reset mid-chunk, completes with the right bytes",
          "[client][e2e][attachments]") {
    live_server server;
    temp_dir dir;
    tools::fault_options fo;
    fo.target_port = server.port();
    fo.reset_after_bytes = 300 * kib;  // every connection dies inside its second chunk
    fo.seed = 20150901;
    tools::fault_proxy link(fo);
    link.start();
    client::replica_options o;
    o.path = dir.file("phone.db");
    auto phone = ok(client::replica::open(std::move(o)));
    const auto token = server.add_device("Máy ấp 5");
    ok(phone->configure(link.url(), token));
    const auto id = put_registration(*phone, "dk-2015-09");
    const auto bytes = photo(3 * chunk + 99, 4);
    const auto ref = ok(phone->attach_bytes("registrations", id, "scans", bytes, "a.jpg"));
    ok(phone->sync());
    // A chunk cut mid-body is lost whole; each call gets at most the chunk before the cut.
    int calls = 0;
    for (; calls < 50; ++calls) {
        auto r = phone->upload();
        if (r && r->waiting == 0) break;
    }
    link.stop();
    CHECK(link.stats().resets > 0);
    CHECK(ok(phone->upload_queue())[0].state == upload_state::sent);
    CHECK(upload_status(server, token, ref.sha256)["complete"] == true);
    auto office = live_replica(server, dir, "office");
    ok(office->sync());
    CHECK(slurp(ok(office->download(ref.sha256))) == bytes);
}

TEST_CASE("a replica closed mid-upload goes on from the server's offset when reopened", "[client][e2e][attachments]") {
    live_server server;
    temp_dir dir;
    const auto token = server.add_device("Máy ấp 6");
    const auto path = dir.file("phone.db");
    const auto bytes = photo(5 * chunk, 5);
    const auto hash = client::detail::sha256::of(bytes);
    std::int64_t first = 0;
    {
        auto lossy = std::make_shared<lossy_transport>(1);
        auto phone = open_replica(path, lossy);
        ok(phone->configure(server.url(), token));
        const auto id = put_registration(*phone, "dk-2015-10");
        ok(phone->attach_bytes("registrations", id, "scans", bytes, "a.jpg"));
        ok(phone->sync());
        int chunks = 0;
        auto r = phone->upload({.progress = [&](const client::upload_progress&) { return ++chunks < 2; }});
        REQUIRE_FALSE(r);
        CHECK(r.err().code == errc::cancelled);
        first = lossy->chunk_bytes_at_server;
        CHECK(first == static_cast<std::int64_t>(2 * chunk));
        CHECK(ok(phone->upload_queue())[0].sent == first);
    }
    CHECK(upload_status(server, token, hash)["offset"] == first);
    auto lossy = std::make_shared<lossy_transport>(2);
    auto phone = open_replica(path, lossy);
    const auto r = ok(phone->upload());
    CHECK(r.completed == 1);
    CHECK(lossy->chunk_bytes_at_server == static_cast<std::int64_t>(bytes.size()) - first);
    CHECK(upload_status(server, token, hash)["complete"] == true);
}

TEST_CASE("a throughput figure: a 5 MiB photo uploaded over loopback", "[client][e2e][attachments]") {
    live_server server;
    temp_dir dir;
    auto phone = live_replica(server, dir, "phone");
    const auto id = put_registration(*phone, "dk-2015-11");
    const auto bytes = photo(5 * 1024 * kib, 6);
    ok(phone->attach_bytes("registrations", id, "scans", bytes, "a.jpg"));
    const auto r = ok(phone->upload());
    CHECK(r.completed == 1);
    const double seconds = std::max<double>(static_cast<double>(r.duration.count()), 1.0) / 1000.0;
    std::cout << "upload over loopback: " << r.bytes_sent << " bytes in " << seconds << " s, "
              << static_cast<std::int64_t>(static_cast<double>(r.bytes_sent) / seconds) << " bytes/s, "
              << r.requests << " requests\n";
}
