// TLS end to end (issue 4, "TLS sync works end to end with a test certificate"): a test CA and
// server certificates made at test time (test_certs.hpp), a real server speaking TLS on
// 127.0.0.1:0, replicas syncing through the library's default transport over https.

#include "e2e_support.hpp"
#include "test_certs.hpp"

#include <fieldsync/fieldsync.h>

#include <sys/time.h>

#include <thread>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;

namespace {

// Both spellings of the same Vietnamese name: precomposed (NFC) and decomposed (NFD).
const std::string k_name_nfc = "Nguy\xe1\xbb\x85n Th\xe1\xbb\x8b Thu Th\xe1\xbb\xa7y";
const std::string k_name_nfd = "Nguye\xcc\x82\xcc\x83n Thi\xcc\xa3 Thu Thu\xcc\x89y";

struct tls_setup {
    temp_dir dir;
    test_ca ca{dir.path().string(), "S\xe1\xbb\x9f N\xe1\xbb\x99i v\xe1\xbb\xa5 B\xe1\xba\xbfn Tre (th\xe1\xbb\xad nghi\xe1\xbb\x87m)"};
    pem_files server = ca.issue("server", "DNS:localhost,IP:127.0.0.1");
};

std::function<void(srv::server_options&)> with_tls(const pem_files& f) {
    return [f](srv::server_options& o) {
        o.tls_cert_file = f.cert;
        o.tls_key_file = f.key;
    };
}

std::unique_ptr<client::replica> tls_replica(const std::string& path, const std::string& url, const std::string& token,
                                             const std::string& ca_file, recording_seams* seams = nullptr) {
    client::replica_options o;
    o.path = path;
    o.http.ca_file = ca_file;
    if (seams) o.seams = seams->make();
    auto r = client::replica::open(std::move(o));
    INFO((r ? std::string() : r.err().message));
    REQUIRE(r);
    ok((*r)->configure(url, token));
    return std::move(*r);
}

std::size_t server_records(srv::store& st) {
    auto page = st.pull(0, 100000);
    REQUIRE(page);
    return page->changes.size();
}

// A raw TCP connection to 127.0.0.1:port, with a receive timeout so a test cannot hang.
int raw_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

}  // namespace

TEST_CASE("TLS: two replicas converge over https, trusting a test CA", "[client][e2e][tls]") {
    tls_setup t;
    live_server server(with_tls(t.server));
    REQUIRE(server.url().rfind("https://127.0.0.1:", 0) == 0);
    temp_dir dir;
    // One replica by IP address (the certificate's IP SAN), one by name (SNI and the DNS SAN).
    auto a = tls_replica(dir.file("a.db"), server.url(), server.add_device("Máy a"), t.ca.cert_file());
    auto b = tls_replica(dir.file("b.db"), "https://localhost:" + std::to_string(server.port()),
                         server.add_device("Máy b"), t.ca.cert_file());

    const auto id_nfc = ok(a->put("members", {{"name", k_name_nfc}, {"cell", "Chi bộ ấp 3"}, {"role", "đảng viên"}},
                                  {.id = "", .unit_id = "xa-binh-hoa"}))
                            .id;
    const auto id_nfd = ok(a->put("members", {{"name", k_name_nfd}, {"cell", "Chi bộ ấp 3"}, {"role", "đảng viên"}},
                                  {.id = "", .unit_id = "xa-binh-hoa"}))
                            .id;
    for (std::size_t i = 0; i < 20; ++i) ok(b->put("members", member(i), {.id = "", .unit_id = "xa-binh-hoa"}));
    ok(a->sync());
    ok(b->sync());
    ok(a->sync());
    // Edits of different fields of one record on both sides merge over TLS like over HTTP.
    ok(a->patch("members", id_nfc, {{"role", "bí thư chi bộ"}}));
    ok(b->patch("members", id_nfc, {{"notes", "Nói đi đôi với làm"}}));
    ok(a->sync());
    ok(b->sync());
    ok(a->sync());

    require_converged(server.store(), *a, {"members"});
    require_converged(server.store(), *b, {"members"});
    CHECK(server_records(server.store()) == 22);
    const auto merged = ok(b->get("members", id_nfc));
    REQUIRE(merged);
    CHECK(merged->data["role"] == "bí thư chi bộ");
    CHECK(merged->data["notes"] == "Nói đi đôi với làm");
    // Byte for byte: TLS carries the two normal forms unchanged.
    CHECK(ok(b->get("members", id_nfc))->data["name"].get<std::string>() == k_name_nfc);
    CHECK(ok(b->get("members", id_nfd))->data["name"].get<std::string>() == k_name_nfd);
}

TEST_CASE("TLS: a certificate the client cannot accept fails with errc::tls, unretried, and changes nothing",
          "[client][e2e][tls]") {
    tls_setup t;
    // The same CA signs a certificate for another host: only the name check can refuse it.
    const auto elsewhere = t.ca.issue("elsewhere", "DNS:elsewhere.example");
    // A certificate whose validity ended yesterday.
    const auto expired = t.ca.issue("expired", "IP:127.0.0.1", -30L * 86400, -86400);
    // Another CA: a well-formed chain the client was not told to trust.
    temp_dir other_dir;
    test_ca other(other_dir.path().string(), "CA không được tin");

    live_server good(with_tls(t.server));
    live_server wrong_name(with_tls(elsewhere));
    live_server stale(with_tls(expired));
    const std::string token = good.add_device("Máy a");
    temp_dir dir;

    struct attempt {
        std::string name;
        std::string url;
        std::string ca_file;
        std::string reason;  // what OpenSSL's verification says, in the message
    };
    const std::vector<attempt> attempts = {
        {"system store (no CA file)", good.url(), "", "unable to get local issuer certificate"},
        {"another CA", good.url(), other.cert_file(), "unable to get local issuer certificate"},
        {"wrong IP address", wrong_name.url(), t.ca.cert_file(), "IP address mismatch"},
        {"wrong host name", "https://localhost:" + std::to_string(wrong_name.port()), t.ca.cert_file(), "hostname mismatch"},
        {"expired", stale.url(), t.ca.cert_file(), "certificate has expired"},
    };
    for (const auto& at : attempts) {
        SECTION(at.name) {
            recording_seams seams;
            auto r = tls_replica(dir.file("r.db"), at.url, token, at.ca_file, &seams);
            const auto id = ok(r->put("members", member(3), {.id = "", .unit_id = "xa-binh-hoa"})).id;
            auto s = r->sync();
            REQUIRE_FALSE(s);
            CHECK(s.err().code == make_error_code(errc::tls));
            CHECK(client::classify(errc::tls) == protocol::retry_class::permanent);
            INFO(s.err().message);
            CHECK(s.err().message.find(at.reason) != std::string::npos);
            CHECK(seams.waits.empty());  // permanent: no backoff, no second try
            // Nothing moved: the edit is still pending locally and no server has it.
            CHECK(ok(r->pending_count()) == 1);
            CHECK(ok(r->get("members", id))->state == client::sync_state::pending);
            CHECK(server_records(good.store()) == 0);
            CHECK(server_records(wrong_name.store()) == 0);
            CHECK(server_records(stale.store()) == 0);

            // Given the right trust and URL, the same replica then syncs what it held.
            ok(r->set_http_options({.gzip = true, .ca_file = t.ca.cert_file()}));
            ok(r->configure(good.url(), token));
            ok(r->sync());
            CHECK(ok(r->pending_count()) == 0);
            CHECK(server_records(good.store()) == 1);
        }
    }
}

TEST_CASE("TLS: a CA file that cannot be read is invalid_argument, before and at sync", "[client][e2e][tls]") {
    temp_dir dir;
    auto r = open_replica(dir.file("r.db"));
    auto set = r->set_http_options({.gzip = true, .ca_file = dir.file("missing.pem")});
    REQUIRE_FALSE(set);
    CHECK(set.err().code == make_error_code(errc::invalid_argument));
    // Set at open (no early check there): the first https sync says so, without retrying.
    std::ofstream(dir.file("not-pem.pem")) << "Đây không phải là chứng chỉ\n";
    recording_seams seams;
    auto r2 = tls_replica(dir.file("r2.db"), "https://127.0.0.1:9", "token", dir.file("not-pem.pem"), &seams);
    ok(r2->put("members", member(1), {.id = "", .unit_id = "xa-binh-hoa"}));
    auto s = r2->sync();
    REQUIRE_FALSE(s);
    CHECK(s.err().code == make_error_code(errc::invalid_argument));
    CHECK(seams.waits.empty());
    CHECK(ok(r2->pending_count()) == 1);
}

TEST_CASE("TLS: plain HTTP to the TLS port and TLS to a plain port fail cleanly, both servers keep serving",
          "[client][e2e][tls]") {
    tls_setup t;
    live_server secure(with_tls(t.server));
    live_server plain;
    temp_dir dir;
    const std::string plain_url_of_secure = "http://127.0.0.1:" + std::to_string(secure.port());
    const std::string tls_url_of_plain = "https://127.0.0.1:" + std::to_string(plain.port());

    SECTION("a plain HTTP client is told to use https, permanently") {
        recording_seams seams;
        auto r = tls_replica(dir.file("p.db"), plain_url_of_secure, secure.add_device("Máy p"), "", &seams);
        ok(r->put("members", member(2), {.id = "", .unit_id = "xa-binh-hoa"}));
        auto s = r->sync();
        REQUIRE_FALSE(s);
        CHECK(s.err().code == make_error_code(errc::bad_request));
        INFO(s.err().message);
        CHECK(s.err().message.find("https://") != std::string::npos);
        CHECK(seams.waits.empty());
        CHECK(ok(r->pending_count()) == 1);
    }
    SECTION("a TLS client to a plain port gets errc::tls, unretried") {
        recording_seams seams;
        auto r = tls_replica(dir.file("t.db"), tls_url_of_plain, plain.add_device("Máy t"), t.ca.cert_file(), &seams);
        ok(r->put("members", member(2), {.id = "", .unit_id = "xa-binh-hoa"}));
        auto s = r->sync();
        REQUIRE_FALSE(s);
        CHECK(s.err().code == make_error_code(errc::tls));
        CHECK(seams.waits.empty());
        CHECK(ok(r->pending_count()) == 1);
    }
    SECTION("garbage where a ClientHello belongs, and a connection that never says hello") {
        const int garbage = raw_connect(secure.port());
        // A handshake record holding a ClientHello of length 0: malformed at once.
        const std::string junk("\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9);
        REQUIRE(::send(garbage, junk.data(), junk.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(junk.size()));
        char buf[256];
        // The server drops the connection (an alert at most), without an HTTP answer.
        std::string got;
        for (ssize_t n; (n = ::recv(garbage, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
        CHECK(got.find("HTTP/") == std::string::npos);
        ::close(garbage);
        const int silent = raw_connect(secure.port());  // held open during the syncs below
        auto r = tls_replica(dir.file("g.db"), secure.url(), secure.add_device("Máy g"), t.ca.cert_file());
        ok(r->put("members", member(5), {.id = "", .unit_id = "xa-binh-hoa"}));
        ok(r->sync());
        ::close(silent);
    }
    // Whatever the failures above, both servers go on serving the right clients.
    auto good_tls = tls_replica(dir.file("gt.db"), secure.url(), secure.add_device("Máy gt"), t.ca.cert_file());
    auto good_plain = tls_replica(dir.file("gp.db"), plain.url(), plain.add_device("Máy gp"), "");
    ok(good_tls->put("members", member(7), {.id = "", .unit_id = "xa-binh-hoa"}));
    ok(good_plain->put("members", member(8), {.id = "", .unit_id = "xa-binh-hoa"}));
    ok(good_tls->sync());
    ok(good_plain->sync());
    CHECK(ok(good_tls->pending_count()) == 0);
    CHECK(ok(good_plain->pending_count()) == 0);
}

TEST_CASE("TLS: connection caps apply before the handshake", "[client][e2e][tls]") {
    tls_setup t;
    live_server server([&](srv::server_options& o) {
        with_tls(t.server)(o);
        o.max_connections_per_address = 2;
    });
    temp_dir dir;
    recording_seams seams;
    auto r = tls_replica(dir.file("r.db"), server.url(), server.add_device("Máy r"), t.ca.cert_file(), &seams);
    ok(r->put("members", member(4), {.id = "", .unit_id = "xa-binh-hoa"}));
    // Two connections that never start a handshake take this address's allowance.
    const int first = raw_connect(server.port());
    const int second = raw_connect(server.port());
    // The third is closed before any handshake: a transient failure, retried with backoff
    // (the seams record the waits instead of sleeping, so the allowance stays taken).
    auto s = r->sync();
    REQUIRE_FALSE(s);
    CHECK(s.err().code == make_error_code(errc::network));
    CHECK_FALSE(seams.waits.empty());
    CHECK(ok(r->pending_count()) == 1);

    ::close(first);
    ::close(second);
    // The server notices the closes on its own time; until then the cap still holds.
    for (int i = 0; i < 100 && !(s = r->sync()); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    INFO((s ? std::string() : s.err().message));
    CHECK(s);
    CHECK(ok(r->pending_count()) == 0);
}

TEST_CASE("TLS: a client that never says hello is cut after the handshake timeout", "[client][e2e][tls]") {
    tls_setup t;
    live_server server([&](srv::server_options& o) {
        with_tls(t.server)(o);
        o.tls_handshake_timeout = std::chrono::milliseconds(200);
    });
    const int silent = raw_connect(server.port());
    char buf[16];
    CHECK(::recv(silent, buf, sizeof buf, 0) == 0);  // closed by the server, not by our 20 s timeout
    ::close(silent);
}

TEST_CASE("TLS: stop() returns with an idle kept-alive TLS connection open", "[client][e2e][tls]") {
    tls_setup t;
    temp_dir dir;
    auto first = std::make_unique<live_server>(with_tls(t.server));
    recording_seams seams;
    auto r = tls_replica(dir.file("a.db"), first->url(), first->add_device("Máy a"), t.ca.cert_file(), &seams);
    ok(r->put("members", member(6), {.id = "", .unit_id = "xa-binh-hoa"}));
    ok(r->sync());  // leaves its keep-alive connection open and idle
    first->stop();  // sends close_notify, waits at most tls_shutdown_timeout, joins
    ok(r->put("members", member(9), {.id = "", .unit_id = "xa-binh-hoa"}));
    auto s = r->sync();
    REQUIRE_FALSE(s);
    CHECK((s.err().code == make_error_code(errc::network) || s.err().code == make_error_code(errc::timeout)));
    CHECK(ok(r->pending_count()) == 1);
}

TEST_CASE("TLS and loopback: the server's start checks", "[client][e2e][tls]") {
    tls_setup t;
    temp_dir dir;
    srv::store_options so;
    so.path = dir.file("central.db");
    auto st = srv::open_sqlite_store(so);
    REQUIRE(st);
    auto start = [&](const std::function<void(srv::server_options&)>& tune) {
        srv::server_options o;
        o.host = "127.0.0.1";
        o.threads = 1;
        tune(o);
        srv::server s(o, **st);
        return s.start();
    };
    auto refused = [&](const std::function<void(srv::server_options&)>& tune, const std::string& says) {
        auto p = start(tune);
        REQUIRE_FALSE(p);
        CHECK(p.err().code == protocol::errc::bad_request);
        INFO(p.err().message);
        CHECK(p.err().message.find(says) != std::string::npos);
    };
    // Plain HTTP on an address others can reach, without the explicit allowance.
    refused([](auto& o) { o.host = "0.0.0.0"; }, "not a loopback address");
    refused([](auto& o) { o.host = "::"; }, "not a loopback address");
    // Only one of the two TLS files; a missing file; a key that is not the certificate's.
    refused([&](auto& o) { o.tls_cert_file = t.server.cert; }, "both");
    refused([&](auto& o) { o.tls_key_file = t.server.key; }, "both");
    refused([&](auto& o) {
        o.tls_cert_file = dir.file("missing.crt");
        o.tls_key_file = t.server.key;
    }, "missing.crt");
    const auto other = t.ca.issue("other", "IP:127.0.0.1");
    refused([&](auto& o) {
        o.tls_cert_file = t.server.cert;
        o.tls_key_file = other.key;
    }, "other.key");

    // Allowed: plain on loopback, plain elsewhere with insecure_listen, TLS anywhere.
    CHECK(srv::server_options{}.insecure_listen == false);
    CHECK(start([](auto&) {}));
    CHECK(start([](auto& o) { o.host = "0.0.0.0"; o.insecure_listen = true; }));
    CHECK(start([&](auto& o) {
        o.host = "0.0.0.0";
        with_tls(t.server)(o);
    }));
    (*st)->close();
}

TEST_CASE("TLS through the C ABI: FS_ERR_TLS without the CA, fs_replica_set_ca_file, then a sync", "[client][e2e][tls][c]") {
    tls_setup t;
    live_server server(with_tls(t.server));
    temp_dir dir;
    fs_error err{};
    fs_replica* r = fs_replica_open(dir.file("c.db").c_str(), &err);
    REQUIRE(r);
    REQUIRE(fs_replica_configure(r, server.url().c_str(), server.add_device("Máy C").c_str(), &err) == FS_OK);
    char* id = fs_replica_put(r, "members", nullptr, "xa-binh-hoa",
                              R"({"name":"Trần Văn Tám","cell":"Chi bộ ấp 3","role":"đảng viên"})", &err);
    REQUIRE(id);
    fs_free(id);

    CHECK(fs_replica_sync(r, nullptr, nullptr, nullptr, &err) == FS_ERR_TLS);
    CHECK(err.code == FS_ERR_TLS);
    CHECK(std::string(err.message).find("not accepted") != std::string::npos);
    CHECK(fs_replica_pending_count(r, &err) == 1);

    CHECK(fs_replica_set_ca_file(r, dir.file("missing.crt").c_str(), &err) == FS_ERR_INVALID_ARGUMENT);
    REQUIRE(fs_replica_set_ca_file(r, t.ca.cert_file().c_str(), &err) == FS_OK);
    fs_sync_report rep{};
    REQUIRE(fs_replica_sync(r, nullptr, nullptr, &rep, &err) == FS_OK);
    CHECK(rep.pushed == 1);
    CHECK(fs_replica_pending_count(r, &err) == 0);
    CHECK(server_records(server.store()) == 1);
    // NULL restores the system store, which does not know the test CA.
    REQUIRE(fs_replica_set_ca_file(r, nullptr, &err) == FS_OK);
    CHECK(fs_replica_sync(r, nullptr, nullptr, nullptr, &err) == FS_ERR_TLS);
    fs_replica_close(r);
}
