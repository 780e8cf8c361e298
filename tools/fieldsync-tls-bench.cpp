// fieldsync-tls-bench: what TLS costs on loopback. Two servers on 127.0.0.1 with fresh stores,
// one plain and one TLS (the given certificate), and the library's default transport:
// - a request on a new connection (connect, the TLS handshake, GET /v1/health) and one on the
//   kept-alive connection, median of --handshakes;
// - a replica pushing --records member records in one sync, and a fresh replica pulling them,
//   median of --rounds (fresh servers each round).
//
//   fieldsync-tls-bench --cert FILE --key FILE --ca FILE [--records N] [--rounds R] [--handshakes H]
//
// The certificate must name 127.0.0.1 (an IP SAN) and chain to the CA file (README.md, "Running
// with TLS", shows how to make both). A benchmark, not a test: it prints figures, asserts nothing.

#include "bench_support.hpp"

#include <fieldsync/client/replica.hpp>
#include <fieldsync/client/transport.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace client = fieldsync::client;
namespace srv = fieldsync::server;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

using fieldsync::bench::die;
using fieldsync::bench::need;

double ms_since(clock_type::time_point t) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

json member(std::mt19937_64& rng) {
    static const char* family[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi"};
    static const char* given[] = {"Hoa", "Tám", "Lan", "Dũng", "Hương", "Phúc", "Tâm", "Bình", "Sơn", "Mai"};
    auto pick = [&](auto& list) { return list[rng() % std::size(list)]; };
    return {{"name", std::string(pick(family)) + " Thị " + pick(given)},
            {"cell", "Chi bộ ấp " + std::to_string(1 + rng() % 9)},
            {"role", "đảng viên"},
            {"phone", "09" + std::to_string(10000000 + rng() % 89999999)}};
}

// A store and a server on 127.0.0.1:0, plain or TLS, in their own temporary directory.
srv::server_options tls_options(const std::string& cert, const std::string& key) {
    srv::server_options o;
    o.threads = 2;
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    return o;
}
struct hosted : fieldsync::bench::hosted_server {
    std::string url;
    hosted(const std::string& cert, const std::string& key)
        : hosted_server("fieldsync-tls-bench", tls_options(cert, key)),
          url(std::string(cert.empty() ? "http" : "https") + "://127.0.0.1:" + std::to_string(port)) {}
};

struct figures {
    double first_request = 0, reused_request = 0, push = 0, pull = 0;
};

figures measure(const std::string& cert, const std::string& key, const std::string& ca, std::size_t records,
                int rounds, int handshakes) {
    figures f;
    const client::http_transport_options http{.gzip = true, .ca_file = ca};
    {
        hosted h(cert, key);
        std::vector<double> first, reused;
        const client::http_request health{"GET", h.url + "/v1/health", {}, {}};
        for (int i = 0; i < handshakes; ++i) {
            auto t = client::make_http_transport(http);
            auto start = clock_type::now();
            auto r = need(t->send(health, std::chrono::seconds(30)), "first request");
            first.push_back(ms_since(start));
            start = clock_type::now();
            r = need(t->send(health, std::chrono::seconds(30)), "reused request");
            reused.push_back(ms_since(start));
            if (r.status != 200) die("health answered " + std::to_string(r.status));
        }
        f.first_request = median(first);
        f.reused_request = median(reused);
    }
    std::vector<double> push, pull;
    for (int round = 0; round < rounds; ++round) {
        hosted h(cert, key);
        auto open = [&](const std::string& name) {
            client::replica_options o;
            o.path = (h.dir / (name + ".db")).string();
            o.http = http;
            auto r = need(client::replica::open(std::move(o)), "open replica");
            need(r->configure(h.url, h.token(name)), "configure");
            return r;
        };
        auto writer = open("writer");
        std::mt19937_64 rng(20260611 + round);
        std::vector<client::replica::put_item> items;
        for (std::size_t i = 0; i < records; ++i) items.push_back({"members", member(rng), {.unit_id = "huyen-giong-trom"}});
        need(writer->put_many(items), "put_many");
        auto start = clock_type::now();
        const auto pushed = need(writer->sync(), "push sync");
        push.push_back(ms_since(start));
        if (static_cast<std::size_t>(pushed.pushed) != records) die("pushed " + std::to_string(pushed.pushed));
        auto reader = open("reader");
        start = clock_type::now();
        const auto pulled = need(reader->sync(), "pull sync");
        pull.push_back(ms_since(start));
        if (static_cast<std::size_t>(pulled.pulled) < records) die("pulled " + std::to_string(pulled.pulled));
    }
    f.push = median(push);
    f.pull = median(pull);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    std::string cert, key, ca;
    std::size_t records = 1000;
    int rounds = 5, handshakes = 50;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--cert" && i + 1 < argc)
            cert = argv[++i];
        else if (a == "--key" && i + 1 < argc)
            key = argv[++i];
        else if (a == "--ca" && i + 1 < argc)
            ca = argv[++i];
        else if (a == "--records" && i + 1 < argc)
            records = std::stoul(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc)
            rounds = std::max(1, std::stoi(argv[++i]));
        else if (a == "--handshakes" && i + 1 < argc)
            handshakes = std::max(1, std::stoi(argv[++i]));
        else
            die("usage: fieldsync-tls-bench --cert FILE --key FILE --ca FILE [--records N] [--rounds R] [--handshakes H]");
    }
    if (cert.empty() || key.empty() || ca.empty()) die("--cert, --key and --ca are required");

    const auto plain = measure("", "", "", records, rounds, handshakes);
    const auto tls = measure(cert, key, ca, records, rounds, handshakes);
    std::printf("loopback, medians: %d fresh connections; %d rounds of %zu records pushed in one sync, then pulled\n",
                handshakes, rounds, records);
    std::printf("%-34s %10s %10s %8s\n", "", "plain ms", "TLS ms", "TLS/plain");
    auto row = [](const char* what, double p, double t) {
        std::printf("%-34s %10.2f %10.2f %8.2f\n", what, p, t, p > 0 ? t / p : 0.0);
    };
    row("new connection + GET /v1/health", plain.first_request, tls.first_request);
    row("kept-alive GET /v1/health", plain.reused_request, tls.reused_request);
    row("push sync", plain.push, tls.push);
    row("pull sync (fresh replica)", plain.pull, tls.pull);
    return 0;
}
