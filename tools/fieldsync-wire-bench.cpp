// fieldsync-wire-bench: bytes on the wire per synced record for each body encoding (JSON,
// JSON+gzip, CBOR, CBOR+gzip), for an initial sync (a fresh replica pulls N records) and for
// small edits (a one-field patch pushed and its new head pulled back; and another device's
// one-field edit pulled by a replica that holds the record, as a field diff unless
// --no-diffs), counted by the fault proxy: HTTP headers included, TCP/IP overhead not. With
// --link, also the wall time of the
// issue 6 scenario: N records created offline pushed over 64 kbit/s, 600 ms latency and a
// reset every 20 s.
//
//   fieldsync-wire-bench [--records N] [--edits E] [--link] [--no-diffs] [--seed S]
//
// A benchmark, not a test: it prints figures and asserts nothing.

#include "bench_support.hpp"
#include "proxy/fault_proxy.hpp"

#include <fieldsync/client/replica.hpp>
#include <fieldsync/client/transport.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>

namespace {

namespace fs = std::filesystem;
namespace client = fieldsync::client;
namespace srv = fieldsync::server;
using fieldsync::tools::fault_options;
using fieldsync::tools::fault_proxy;
using json = nlohmann::json;

using fieldsync::bench::die;
using fieldsync::bench::need;

// A member record like the field app's: a Vietnamese name, cell, role, phone, birth year,
// joining date and address, drawn from a seeded generator so every run has the same records.
// (Ids are the replica's UUIDv7s, which compress about as badly as real ones.)
json member(std::mt19937_64& rng) {
    static const char* family[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
                                   "Ngô", "Dương", "Lý", "Phan", "Trương", "Đinh"};
    static const char* middle[] = {"Văn", "Thị", "Hữu", "Ngọc", "Minh", "Thanh", "Đức", "Thu", "Kim", "Quốc"};
    static const char* given[] = {"Hoa", "Tám", "Lan", "Dũng", "Hương", "Phúc", "Tâm", "Bình", "Sơn", "Mai",
                                  "Hạnh", "Tuấn", "Nga", "Khoa", "Yến", "Thảo", "Long", "Trí", "Vy", "Nhân"};
    auto pick = [&](auto& list) { return list[rng() % std::size(list)]; };
    const auto ap = 1 + rng() % 9;
    return {{"name", std::string(pick(family)) + " " + pick(middle) + " " + pick(given)},
            {"cell", "Chi bộ ấp " + std::to_string(ap)},
            {"role", rng() % 11 == 0 ? "bí thư chi bộ" : "đảng viên"},
            {"phone", "09" + std::to_string(10000000 + rng() % 89999999)},
            {"born", 1940 + static_cast<int>(rng() % 65)},
            {"joined", std::to_string(1975 + rng() % 50) + "-0" + std::to_string(1 + rng() % 9) + "-1" +
                           std::to_string(rng() % 10)},
            {"address", "Ấp " + std::to_string(ap) + ", xã Bình Hòa, huyện Giồng Trôm, Bến Tre"}};
}

struct encoding {
    const char* name;
    client::body_format format;
    bool gzip;
};

srv::server_options plain_options() {
    srv::server_options o;
    o.threads = 2;
    return o;
}

struct bench : fieldsync::bench::hosted_server {
    bench() : hosted_server("fieldsync-wire-bench", plain_options()) {}

    bool diffs = true;
    std::unique_ptr<client::replica> replica(const std::string& name, const std::string& url, const encoding& e) {
        client::replica_options o;
        o.path = (dir / (name + ".db")).string();
        o.format = e.format;
        o.pull_diffs = diffs;
        o.transport_override = client::make_http_transport(client::http_transport_options{.gzip = e.gzip});
        auto r = need(client::replica::open(std::move(o)), "open replica");
        need(r->configure(url, token(name)), "configure");
        return r;
    }
};

}  // namespace

int main(int argc, char** argv) {
    std::size_t records = 1000;
    int edits = 50;
    bool link = false;
    bool diffs = true;
    std::uint64_t seed = 20260611;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--records" && i + 1 < argc)
            records = std::stoul(argv[++i]);
        else if (a == "--edits" && i + 1 < argc)
            edits = std::stoi(argv[++i]);
        else if (a == "--seed" && i + 1 < argc)
            seed = std::stoull(argv[++i]);
        else if (a == "--link")
            link = true;
        else if (a == "--no-diffs")
            diffs = false;
        else
            die("usage: fieldsync-wire-bench [--records N] [--edits E] [--link] [--no-diffs] [--seed S]");
    }

    const encoding encodings[] = {{"JSON", client::body_format::json, false},
                                  {"JSON+gzip", client::body_format::json, true},
                                  {"CBOR", client::body_format::cbor, false},
                                  {"CBOR+gzip", client::body_format::cbor, true}};
    bench b;
    b.diffs = diffs;
    std::vector<std::string> ids;
    {
        // The records every reader pulls, written straight to the server (not counted).
        auto seeder = b.replica("seeder", "http://127.0.0.1:" + std::to_string(b.port), encodings[1]);
        std::mt19937_64 rng(seed);
        std::vector<client::replica::put_item> items;
        for (std::size_t i = 0; i < records; ++i) items.push_back({"members", member(rng), {.unit_id = "huyen-giong-trom"}});
        for (const auto& rec : need(seeder->put_many(items), "put_many")) ids.push_back(rec.id);
        need(seeder->sync(), "seed sync");
    }

    std::mt19937_64 sample_rng(seed);
    std::printf("%zu member records (about %zu bytes of JSON data each); %d one-field edits;\n"
                "bytes through the proxy per record (initial) or per edit: HTTP headers and bodies, not TCP/IP\n",
                records, member(sample_rng).dump().size(), edits);
    std::printf("pulled field diffs: %s\n", diffs ? "asked for" : "off (--no-diffs)");
    std::printf("%-10s  %14s %14s %14s   %14s %14s   %14s %14s\n", "encoding", "initial up/rec", "initial dn/rec",
                "initial total", "edit up", "edit down", "pulled up", "pulled down");
    // Another device's edits, pulled by the reader: the writer syncs straight with the server.
    auto writer = b.replica("writer", "http://127.0.0.1:" + std::to_string(b.port), encodings[1]);
    need(writer->sync(), "writer sync");
    for (const auto& e : encodings) {
        fault_options fo;
        fo.target_port = b.port;
        fault_proxy proxy(fo);
        proxy.start();
        auto r = b.replica(std::string("reader-") + e.name, proxy.url(), e);
        need(r->sync(), "initial sync");
        const auto after_pull = proxy.stats();
        for (int k = 0; k < edits; ++k) {
            const auto& id = ids[(static_cast<std::size_t>(k) * 37) % records];
            need(r->patch("members", id, {{"phone", "08" + std::to_string(20000000 + k)}}), "patch");
            need(r->sync(), "edit sync");
        }
        const auto end = proxy.stats();
        for (int k = 0; k < edits; ++k) {
            const auto& id = ids[(static_cast<std::size_t>(k) * 53 + 11) % records];
            need(writer->patch("members", id, {{"role", k % 2 ? "phó bí thư" : "đảng viên"}}), "writer patch");
            need(writer->sync(), "writer sync");
            need(r->sync(), "pull sync");
        }
        proxy.stop();
        const auto pulled = proxy.stats();
        const double n = static_cast<double>(records);
        std::printf("%-10s  %14.1f %14.1f %14.0f   %14.1f %14.1f   %14.1f %14.1f\n", e.name, after_pull.bytes_up / n,
                    after_pull.bytes_down / n, static_cast<double>(after_pull.bytes_up + after_pull.bytes_down),
                    static_cast<double>(end.bytes_up - after_pull.bytes_up) / edits,
                    static_cast<double>(end.bytes_down - after_pull.bytes_down) / edits,
                    static_cast<double>(pulled.bytes_up - end.bytes_up) / edits,
                    static_cast<double>(pulled.bytes_down - end.bytes_down) / edits);
    }

    if (link) {
        std::printf("\n%zu records created offline, pushed over 64 kbit/s each way, 600 ms latency, a reset every 20 s:\n",
                    records);
        for (const auto& e : {encodings[1], encodings[3]}) {
            bench fresh;  // a server holding nothing else, as in the scenario
            fresh.diffs = diffs;
            fault_options fo;
            fo.target_port = fresh.port;
            fo.bytes_per_second = 64'000 / 8;
            fo.latency = std::chrono::milliseconds(600);
            fo.reset_after = std::chrono::seconds(20);
            fo.seed = seed;
            fault_proxy proxy(fo);
            proxy.start();
            auto r = fresh.replica(std::string("phone-") + e.name, proxy.url(), e);
            std::mt19937_64 rng(seed + 1);
            std::vector<client::replica::put_item> items;
            for (std::size_t i = 0; i < records; ++i) items.push_back({"members", member(rng), {.unit_id = "huyen-giong-trom"}});
            need(r->put_many(items), "put_many");
            const auto t0 = std::chrono::steady_clock::now();
            int calls = 0;
            while (calls < 200) {
                ++calls;
                auto rep = r->sync();
                if (rep && need(r->pending_count(), "pending") == 0) break;
            }
            const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            proxy.stop();
            const auto s = proxy.stats();
            std::printf("  %-10s %.1f s, %d sync calls, %llu connections, %llu resets, %llu bytes up, %llu bytes down (seed %llu)\n",
                        e.name, secs, calls, static_cast<unsigned long long>(s.connections),
                        static_cast<unsigned long long>(s.resets), static_cast<unsigned long long>(s.bytes_up),
                        static_cast<unsigned long long>(s.bytes_down), static_cast<unsigned long long>(proxy.seed()));
        }
    }
}
