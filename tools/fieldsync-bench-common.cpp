// fieldsync-bench's shared plumbing: the HTTP client and its retries, the self-hosted store and
// server, records and their ids, and the figures' formatting.

#include "fieldsync-bench-common.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace fieldsync::bench {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// Retries of one request after a transient failure (connection lost, 503, 5xx). Pushes are
// idempotent (same batch and change ids), so a retry is safe; more than a few means the
// server is down and the run is void.
constexpr int k_max_attempts = 8;
constexpr std::chrono::milliseconds k_first_backoff{50};

}  // namespace

std::optional<endpoint_address> parse_url(std::string url) {
    const std::string scheme = "http://";
    if (url.rfind(scheme, 0) != 0) return std::nullopt;  // TLS belongs to a proxy, not the bench
    url.erase(0, scheme.size());
    if (const auto slash = url.find('/'); slash != std::string::npos) url.erase(slash);
    const auto colon = url.rfind(':');
    if (colon == std::string::npos) return endpoint_address{url, "80"};
    auto host = url.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return endpoint_address{host, url.substr(colon + 1)};
}

// ---- records ---------------------------------------------------------------------------

namespace {

const char* const k_communes[] = {"Bình Hòa", "Bình Thành", "Châu Bình", "Châu Hòa", "Hưng Lễ", "Hưng Nhượng",
                                  "Hưng Phong", "Long Mỹ", "Lương Hòa", "Lương Phú", "Lương Quới", "Mỹ Thạnh",
                                  "Phong Mỹ", "Phong Nẫm", "Phước Long", "Sơn Phú", "Tân Hào", "Tân Lợi Thạnh",
                                  "Tân Thanh", "Thạnh Phú Đông", "Thuận Điền"};
const char* const k_audiences[] = {"giáo viên", "đảng viên", "cán bộ xã", "học sinh trung học phổ thông"};
constexpr std::size_t k_commune_count = std::size(k_communes);

}  // namespace

std::string unit_of(std::int64_t i) { return "xa-" + std::to_string(i % static_cast<std::int64_t>(k_commune_count)); }

std::string record_data(std::int64_t i) {
    const auto commune = static_cast<std::size_t>(i) % k_commune_count;
    const std::int64_t invited = 20 + i % 80;
    const std::int64_t attended = invited - i % 7;
    char date[16];
    std::snprintf(date, sizeof date, "2014-%02d-%02d", static_cast<int>(1 + i % 12), static_cast<int>(1 + i % 28));
    std::string s;
    s.reserve(k_record_bytes + 16);
    s += R"({"unit":")";
    s += unit_of(i);
    s += R"(","date":")";
    s += date;
    s += R"(","audience":")";
    s += k_audiences[static_cast<std::size_t>(i) % std::size(k_audiences)];
    s += R"(","invited":)";
    s += std::to_string(invited);
    s += R"(,"attended":)";
    s += std::to_string(attended);
    s += R"(,"notes":"Học tập chuyên đề tại xã )";
    s += k_communes[commune];
    s += " #";
    s += std::to_string(i);
    // The padding is ASCII so no UTF-8 sequence is cut; the closing `"}` takes two bytes.
    if (s.size() + 2 < k_record_bytes) s.append(k_record_bytes - 2 - s.size(), '.');
    s += "\"}";
    return s;
}

void append_new_record(std::string& body, std::string_view change_prefix, std::int64_t change_n, const record_id& id,
                       std::int64_t i) {
    body += R"({"change_id":"c-)";
    body += change_prefix;
    body += '-';
    body += std::to_string(change_n);
    body += R"(","collection":")";
    body += k_collection;
    body += R"(","id":")";
    body.append(id.data(), id.size());
    body += R"(","unit_id":")";
    body += unit_of(i);
    body += R"(","op":"put","base_version":0,"data":)";
    body += record_data(i);
    body += '}';
}

void id_maker::next(bool random, record_id& out) {
    const std::uint64_t r1 = rng_();
    const std::uint64_t r2 = rng_();
    fproto::uuid_bytes b;
    if (random) {
        for (int i = 0; i < 8; ++i) {
            b[i] = static_cast<std::uint8_t>(r1 >> (8 * i));
            b[8 + i] = static_cast<std::uint8_t>(r2 >> (8 * i));
        }
        b = fproto::uuid_v4(b);
    } else {
        const auto ms = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
        b = v7_.next(ms, r1, r2);
    }
    fproto::format_uuid(b, out.data());
}

// ---- HTTP --------------------------------------------------------------------------------

// The kept-alive connection, so that only this file compiles Asio and Beast headers.
struct http_client::connection {
    connection(endpoint_address w, std::string t) : where(std::move(w)), token(std::move(t)) {}

    endpoint_address where;
    std::string token;
    net::io_context ioc;
    std::unique_ptr<beast::tcp_stream> stream;
    beast::flat_buffer buffer;

    void connect() {
        tcp::resolver resolver(ioc);
        auto s = std::make_unique<beast::tcp_stream>(ioc);
        s->connect(resolver.resolve(where.host, where.port));
        s->socket().set_option(tcp::no_delay(true));
        buffer.clear();
        stream = std::move(s);
    }
};

http_client::http_client(endpoint_address where, std::string token)
    : c_(std::make_unique<connection>(std::move(where), std::move(token))) {}

http_client::~http_client() = default;

std::pair<unsigned, std::string> http_client::post_sync(const std::string& body) {
    for (int attempt = 0;; ++attempt) {
        try {
            if (!c_->stream) c_->connect();
            http::request<http::string_body> req{http::verb::post, "/v1/sync", 11};
            req.set(http::field::host, c_->where.host);
            req.set(http::field::authorization, "Bearer " + c_->token);
            req.set(http::field::content_type, "application/json");
            req.keep_alive(true);
            req.body() = body;
            req.prepare_payload();
            http::write(*c_->stream, req);
            http::response_parser<http::string_body> parser;
            parser.body_limit(boost::none);  // a pull page of 5000 records is a few MiB
            http::read(*c_->stream, c_->buffer, parser);
            auto res = parser.release();
            if (!res.keep_alive()) c_->stream.reset();
            return {res.result_int(), std::move(res.body())};
        } catch (const boost::system::system_error&) {
            c_->stream.reset();
            if (attempt > 0) throw;
        }
    }
}

namespace {

bool transient_status(unsigned status) { return status == 408 || status == 429 || status >= 500; }

}  // namespace

std::pair<unsigned, std::string> post_with_retry(http_client& client, const std::string& body,
                                                 std::atomic<std::int64_t>& retries) {
    auto backoff = k_first_backoff;
    std::string last_error;
    for (int attempt = 1; attempt <= k_max_attempts; ++attempt) {
        try {
            auto res = client.post_sync(body);
            if (!transient_status(res.first)) return res;
            last_error = "HTTP " + std::to_string(res.first) + ": " + res.second;
        } catch (const std::exception& e) {
            last_error = e.what();
        }
        ++retries;
        std::this_thread::sleep_for(backoff);
        backoff *= 2;
    }
    throw std::runtime_error("giving up after " + std::to_string(k_max_attempts) + " attempts: " + last_error);
}

// ---- the self-hosted server ----------------------------------------------------------------

std::unique_ptr<fsrv::store> open_store(const std::string& path) {
    // "postgres:CONNINFO" (--store): the store in a PostgreSQL database; anything else a file.
    const bool postgres = path.rfind("postgres:", 0) == 0;
    fsrv::store_options so;
    so.path = postgres ? path.substr(9) : path;
    auto opened = postgres ? fsrv::open_postgres_store(so) : fsrv::open_sqlite_store(so);
    if (!opened) throw std::runtime_error("opening the store: " + opened.err().message);
    return std::move(opened).value();
}

std::vector<std::string> add_devices(fsrv::store& st, int count, const std::string& prefix, const std::string& unit,
                                     fsrv::device_role role) {
    std::vector<std::string> tokens;
    for (int d = 0; d < count; ++d) {
        auto dev = st.add_device(prefix + std::to_string(d), unit, role);
        if (!dev) throw std::runtime_error("adding a device: " + dev.err().message);
        tokens.push_back(dev->second);
    }
    return tokens;
}

std::unique_ptr<fsrv::server> start_server(const fsrv::server_options& options, fsrv::store& st,
                                           endpoint_address& where) {
    auto srv = std::make_unique<fsrv::server>(options, st);
    auto port = srv->start();
    if (!port) throw std::runtime_error("starting the server: " + port.err().message);
    where = {"127.0.0.1", std::to_string(*port)};
    return srv;
}

bench_target host_or_connect(const options& o) {
    bench_target t;
    t.store_path = o.db;
    if (o.url.empty() && t.store_path.empty()) {
        t.temp_dir = make_temp_dir();
        t.store_path = (t.temp_dir / "bench-store.db").string();
    }
    if (!t.temp_dir.empty())
        t.raw_path = (t.temp_dir / "raw-upsert.db").string();
    else if (!t.store_path.empty() && t.store_path.rfind("postgres:", 0) != 0)
        t.raw_path = t.store_path + ".raw-upsert.db";
    else
        t.raw_path = (std::filesystem::temp_directory_path() / ("fieldsync-bench-raw-" + std::to_string(std::random_device{}()) + ".db")).string();

    // Self-hosted: the store, one device per simulated device, the server on an ephemeral port.
    if (o.url.empty()) {
        t.st = open_store(t.store_path);
        // The records name communes ("xa-N") that no unit tree places under the district, so
        // a field device of the district would have them refused out_of_scope (issue 4):
        // the simulated devices write anywhere, as admins do.
        t.tokens = add_devices(*t.st, o.devices, "bench-device-", "huyen-giong-trom", fsrv::device_role::admin);
        fsrv::server_options sopt;
        sopt.host = "127.0.0.1";
        sopt.port = 0;
        if (o.server_threads > 0) sopt.threads = o.server_threads;
        if (o.max_connections > 0) sopt.max_connections = static_cast<std::size_t>(o.max_connections);
        t.srv = start_server(sopt, *t.st, t.where);
        std::cout << "fieldsync-bench: self-hosted server on 127.0.0.1:" << t.where.port << " ("
                  << (o.server_threads > 0 ? o.server_threads : fsrv::tuning::default_threads)
                  << " I/O threads), store " << t.store_path << "\n";
    } else {
        auto parsed = parse_url(o.url);
        if (!parsed) throw std::runtime_error("--url must look like http://HOST:PORT");
        t.where = *parsed;
        t.tokens.assign(static_cast<std::size_t>(o.devices), o.token);
        std::cout << "fieldsync-bench: server " << o.url << "\n";
    }
    return t;
}

std::string make_run_id() {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(std::random_device{}()) << 32 | std::random_device{}());
    return buf;
}

// ---- figures -------------------------------------------------------------------------------

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::filesystem::path make_temp_dir() {
    const auto base = std::filesystem::temp_directory_path();
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
        auto p = base / ("fieldsync-bench-" + std::to_string(rd()));
        if (std::filesystem::create_directory(p)) return p;
    }
    throw std::runtime_error("cannot create a temporary directory in " + base.string());
}

}  // namespace fieldsync::bench
