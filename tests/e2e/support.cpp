#include "e2e/support.hpp"
#include "store_under_test.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>

namespace fieldsync::e2e {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// ---- http_reply -----------------------------------------------------------------------------

json http_reply::body_json() const {
    json j = json::parse(body, nullptr, false);
    return j.is_discarded() ? json() : j;
}

std::string http_reply::error_code() const {
    const auto e = proto::decode_error(body_json());
    return e ? std::string(proto::errc_name(e->code)) : std::string();
}

std::string http_reply::error_message() const {
    const auto j = body_json();
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string())
        return j["error"]["message"].get<std::string>();
    return {};
}

// ---- raw_connection -------------------------------------------------------------------------

raw_connection::~raw_connection() {
    boost::system::error_code ec;
    socket_.close(ec);
}

template <class Start>
bool raw_connection::run_for(std::chrono::milliseconds timeout, Start start) {
    bool done = false;
    ioc_.restart();
    start(done);
    ioc_.run_for(timeout);
    if (!done) {
        // Cancel and let the handler run, so nothing refers to this frame afterwards.
        boost::system::error_code ec;
        socket_.cancel(ec);
        ioc_.restart();
        ioc_.run();
        return false;
    }
    return true;
}

raw_connection::raw_connection(std::uint16_t port) : socket_(ioc_) {
    // Bounded like every step: a server too busy to accept leaves its backlog full, the kernel
    // drops the SYN, and a blocking connect waits through its retries (about two minutes).
    // A refusal throws as before; a connect still pending at the timeout leaves the socket
    // closed, so the request fails with status 0 (what a client retries).
    boost::system::error_code result;
    const bool finished = run_for(k_client_timeout, [&](bool& done) {
        socket_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                              [&](boost::system::error_code ec) {
                                  result = ec;
                                  done = true;
                              });
    });
    if (finished && result) throw boost::system::system_error(result, "connect");
    if (!finished) {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }
}

bool raw_connection::send(std::string_view bytes) {
    boost::system::error_code result;
    const bool finished = run_for(k_client_timeout, [&](bool& done) {
        net::async_write(socket_, net::buffer(bytes.data(), bytes.size()),
                         [&](boost::system::error_code ec, std::size_t) {
                             result = ec;
                             done = true;
                         });
    });
    return finished && !result;
}

std::optional<http_reply> raw_connection::read_reply(std::chrono::milliseconds timeout) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    boost::system::error_code result;
    const bool finished = run_for(timeout, [&](bool& done) {
        http::async_read(socket_, buffer_, parser, [&](boost::system::error_code ec, std::size_t) {
            result = ec;
            done = true;
        });
    });
    if (!finished || result) return std::nullopt;
    auto msg = parser.release();
    http_reply r;
    r.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        r.headers[name] = std::string(f.value());
    }
    r.body = std::move(msg.body());
    return r;
}

bool raw_connection::wait_closed(std::chrono::milliseconds timeout) {
    std::array<char, 4096> scratch{};
    buffer_.consume(buffer_.size());
    std::function<void()> step;  // lives in this frame, which outlasts every handler of run_for
    return run_for(timeout, [&](bool& done) {
        step = [&] {
            socket_.async_read_some(net::buffer(scratch), [&](boost::system::error_code ec, std::size_t) {
                if (ec)
                    done = true;
                else
                    step();
            });
        };
        step();
    });
}

std::string format_request(const std::string& method, const std::string& target, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
    std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    if (!body.empty() || method == "POST") out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "Connection: close\r\n\r\n";
    out += body;
    return out;
}

http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers) {
    raw_connection c(port);
    if (!c.send(format_request(method, target, body, headers))) return {};
    auto r = c.read_reply();
    return r ? std::move(*r) : http_reply{};
}

// ---- temp_dir -------------------------------------------------------------------------------

temp_dir::temp_dir() {
    static std::atomic<unsigned> counter{0};
    std::random_device rd;
    const auto base = std::filesystem::temp_directory_path();
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto p = base / ("fieldsync-e2e-" + std::to_string(rd()) + "-" + std::to_string(counter++));
        if (std::filesystem::create_directory(p)) {
            path_ = p;
            return;
        }
    }
    throw std::runtime_error("cannot create a temporary directory");
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

// ---- server_fixture -------------------------------------------------------------------------

server_fixture::server_fixture(srv::server_options tweak, const proto::schema* schema)
    : options_(std::move(tweak)), schema_(schema) {
    open_and_start();
    auto added = store_->add_device("Máy tính bảng ấp 3 Bình Hòa", "xa-binh-hoa", srv::device_role::field);
    if (!added) throw std::runtime_error("add_device: " + added.err().message);
    device_ = added->first;
    token_ = added->second;
}

server_fixture::~server_fixture() { shut_down(); }

srv::server_options server_fixture::quick_options() {
    srv::server_options o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    o.read_timeout = 1000ms;
    o.body_idle_timeout = 1000ms;
    o.write_timeout = 5000ms;
    o.linger_timeout = 500ms;
    return o;
}

void server_fixture::open_and_start() {
    srv::store_options so;
    so.path = (dir_.path() / "central.db").string();
    so.schema = schema_;
    auto st = fieldsync::test::open_store_under_test(so);
    if (!st) throw std::runtime_error("open_store_under_test: " + st.err().message);
    store_ = std::move(*st);
    // Attachments' bytes beside the store, as fieldsync-server keeps them (unless the test
    // gave its own blob store).
    if (!options_.blobs) {
        auto blobs = srv::open_blob_dir(srv::default_blob_dir(so.path));
        if (!blobs) throw std::runtime_error("open_blob_dir: " + blobs.err().message);
        options_.blobs = std::move(*blobs);
    }
    server_ = std::make_unique<srv::server>(options_, *store_);
    auto port = server_->start();
    if (!port) throw std::runtime_error("server start: " + port.err().message);
    port_ = *port;
}

void server_fixture::shut_down() {
    if (server_) server_->stop();
    server_.reset();
    if (store_) store_->close();
    store_.reset();
}

void server_fixture::restart() {
    shut_down();
    open_and_start();
}

std::string server_fixture::add_device(const std::string& name, const std::string& unit, srv::device_role role) {
    auto added = store_->add_device(name, unit, role);
    if (!added) throw std::runtime_error("add_device: " + added.err().message);
    return added->second;
}

http_reply server_fixture::get(const std::string& target, std::optional<std::string> token) const {
    return http_request(port_, "GET", target, "", {{"Authorization", "Bearer " + token.value_or(token_)}});
}

http_reply server_fixture::post_sync_text(const std::string& body, std::optional<std::string> token) const {
    return http_request(port_, "POST", "/v1/sync", body,
                        {{"Authorization", "Bearer " + token.value_or(token_)}, {"Content-Type", "application/json"}});
}

http_reply server_fixture::post_sync(const json& body, std::optional<std::string> token) const {
    return post_sync_text(body.dump(), std::move(token));
}

json server_fixture::sync(const json& body, std::optional<std::string> token) const {
    const auto r = post_sync(body, std::move(token));
    if (r.status != 200)
        throw std::runtime_error("POST /v1/sync answered " + std::to_string(r.status) + ": " + r.body);
    return r.body_json();
}

// ---- requests -------------------------------------------------------------------------------

json put_change(const std::string& change_id, const std::string& collection, const std::string& id,
                std::int64_t base_version, const json& data, const std::string& unit) {
    return {{"change_id", change_id}, {"collection", collection}, {"id", id},    {"unit_id", unit},
            {"op", "put"},            {"base_version", base_version},             {"data", data}};
}

json patch_change(const std::string& change_id, const std::string& collection, const std::string& id,
                  std::int64_t base_version, const json& data, const std::string& unit) {
    auto j = put_change(change_id, collection, id, base_version, data, unit);
    j["op"] = "patch";
    return j;
}

json delete_change(const std::string& change_id, const std::string& collection, const std::string& id,
                   std::int64_t base_version, const std::string& unit) {
    return {{"change_id", change_id}, {"collection", collection}, {"id", id},
            {"unit_id", unit},        {"op", "delete"},           {"base_version", base_version}};
}

json batch(const std::string& batch_id, std::vector<json> changes, const std::string& cursor) {
    json list = json::array();
    for (auto& c : changes) list.push_back(std::move(c));
    return {{"batch_id", batch_id}, {"changes", std::move(list)}, {"cursor", cursor}};
}

json only_result(const json& response) {
    if (!response.is_object() || !response.contains("results") || response["results"].size() != 1)
        throw std::runtime_error("expected exactly one result in " + response.dump());
    return response["results"][0];
}

// ---- data -----------------------------------------------------------------------------------

const json& giong_trom() {
    static const json doc = [] {
        std::ifstream in(std::string(FIELDSYNC_SOURCE_DIR) + "/tools/demo/giong-trom.json", std::ios::binary);
        if (!in) throw std::runtime_error("cannot read " FIELDSYNC_SOURCE_DIR "/tools/demo/giong-trom.json");
        std::ostringstream s;
        s << in.rdbuf();
        return json::parse(s.str());
    }();
    return doc;
}

namespace {

struct decomposition {
    char32_t precomposed;
    std::array<char32_t, 3> parts;  // 0 = unused
};

// Generated from Python's unicodedata (NFD) for every precomposed Vietnamese vowel letter.
constexpr decomposition k_nfd[] = {
    {0x00C0, {0x0041, 0x0300}},
    {0x00C1, {0x0041, 0x0301}},
    {0x00C2, {0x0041, 0x0302}},
    {0x00C3, {0x0041, 0x0303}},
    {0x00C8, {0x0045, 0x0300}},
    {0x00C9, {0x0045, 0x0301}},
    {0x00CA, {0x0045, 0x0302}},
    {0x00CC, {0x0049, 0x0300}},
    {0x00CD, {0x0049, 0x0301}},
    {0x00D2, {0x004F, 0x0300}},
    {0x00D3, {0x004F, 0x0301}},
    {0x00D4, {0x004F, 0x0302}},
    {0x00D5, {0x004F, 0x0303}},
    {0x00D9, {0x0055, 0x0300}},
    {0x00DA, {0x0055, 0x0301}},
    {0x00DD, {0x0059, 0x0301}},
    {0x00E0, {0x0061, 0x0300}},
    {0x00E1, {0x0061, 0x0301}},
    {0x00E2, {0x0061, 0x0302}},
    {0x00E3, {0x0061, 0x0303}},
    {0x00E8, {0x0065, 0x0300}},
    {0x00E9, {0x0065, 0x0301}},
    {0x00EA, {0x0065, 0x0302}},
    {0x00EC, {0x0069, 0x0300}},
    {0x00ED, {0x0069, 0x0301}},
    {0x00F2, {0x006F, 0x0300}},
    {0x00F3, {0x006F, 0x0301}},
    {0x00F4, {0x006F, 0x0302}},
    {0x00F5, {0x006F, 0x0303}},
    {0x00F9, {0x0075, 0x0300}},
    {0x00FA, {0x0075, 0x0301}},
    {0x00FD, {0x0079, 0x0301}},
    {0x0102, {0x0041, 0x0306}},
    {0x0103, {0x0061, 0x0306}},
    {0x0128, {0x0049, 0x0303}},
    {0x0129, {0x0069, 0x0303}},
    {0x0168, {0x0055, 0x0303}},
    {0x0169, {0x0075, 0x0303}},
    {0x01A0, {0x004F, 0x031B}},
    {0x01A1, {0x006F, 0x031B}},
    {0x01AF, {0x0055, 0x031B}},
    {0x01B0, {0x0075, 0x031B}},
    {0x1EA0, {0x0041, 0x0323}},
    {0x1EA1, {0x0061, 0x0323}},
    {0x1EA2, {0x0041, 0x0309}},
    {0x1EA3, {0x0061, 0x0309}},
    {0x1EA4, {0x0041, 0x0302, 0x0301}},
    {0x1EA5, {0x0061, 0x0302, 0x0301}},
    {0x1EA6, {0x0041, 0x0302, 0x0300}},
    {0x1EA7, {0x0061, 0x0302, 0x0300}},
    {0x1EA8, {0x0041, 0x0302, 0x0309}},
    {0x1EA9, {0x0061, 0x0302, 0x0309}},
    {0x1EAA, {0x0041, 0x0302, 0x0303}},
    {0x1EAB, {0x0061, 0x0302, 0x0303}},
    {0x1EAC, {0x0041, 0x0323, 0x0302}},
    {0x1EAD, {0x0061, 0x0323, 0x0302}},
    {0x1EAE, {0x0041, 0x0306, 0x0301}},
    {0x1EAF, {0x0061, 0x0306, 0x0301}},
    {0x1EB0, {0x0041, 0x0306, 0x0300}},
    {0x1EB1, {0x0061, 0x0306, 0x0300}},
    {0x1EB2, {0x0041, 0x0306, 0x0309}},
    {0x1EB3, {0x0061, 0x0306, 0x0309}},
    {0x1EB4, {0x0041, 0x0306, 0x0303}},
    {0x1EB5, {0x0061, 0x0306, 0x0303}},
    {0x1EB6, {0x0041, 0x0323, 0x0306}},
    {0x1EB7, {0x0061, 0x0323, 0x0306}},
    {0x1EB8, {0x0045, 0x0323}},
    {0x1EB9, {0x0065, 0x0323}},
    {0x1EBA, {0x0045, 0x0309}},
    {0x1EBB, {0x0065, 0x0309}},
    {0x1EBC, {0x0045, 0x0303}},
    {0x1EBD, {0x0065, 0x0303}},
    {0x1EBE, {0x0045, 0x0302, 0x0301}},
    {0x1EBF, {0x0065, 0x0302, 0x0301}},
    {0x1EC0, {0x0045, 0x0302, 0x0300}},
    {0x1EC1, {0x0065, 0x0302, 0x0300}},
    {0x1EC2, {0x0045, 0x0302, 0x0309}},
    {0x1EC3, {0x0065, 0x0302, 0x0309}},
    {0x1EC4, {0x0045, 0x0302, 0x0303}},
    {0x1EC5, {0x0065, 0x0302, 0x0303}},
    {0x1EC6, {0x0045, 0x0323, 0x0302}},
    {0x1EC7, {0x0065, 0x0323, 0x0302}},
    {0x1EC8, {0x0049, 0x0309}},
    {0x1EC9, {0x0069, 0x0309}},
    {0x1ECA, {0x0049, 0x0323}},
    {0x1ECB, {0x0069, 0x0323}},
    {0x1ECC, {0x004F, 0x0323}},
    {0x1ECD, {0x006F, 0x0323}},
    {0x1ECE, {0x004F, 0x0309}},
    {0x1ECF, {0x006F, 0x0309}},
    {0x1ED0, {0x004F, 0x0302, 0x0301}},
    {0x1ED1, {0x006F, 0x0302, 0x0301}},
    {0x1ED2, {0x004F, 0x0302, 0x0300}},
    {0x1ED3, {0x006F, 0x0302, 0x0300}},
    {0x1ED4, {0x004F, 0x0302, 0x0309}},
    {0x1ED5, {0x006F, 0x0302, 0x0309}},
    {0x1ED6, {0x004F, 0x0302, 0x0303}},
    {0x1ED7, {0x006F, 0x0302, 0x0303}},
    {0x1ED8, {0x004F, 0x0323, 0x0302}},
    {0x1ED9, {0x006F, 0x0323, 0x0302}},
    {0x1EDA, {0x004F, 0x031B, 0x0301}},
    {0x1EDB, {0x006F, 0x031B, 0x0301}},
    {0x1EDC, {0x004F, 0x031B, 0x0300}},
    {0x1EDD, {0x006F, 0x031B, 0x0300}},
    {0x1EDE, {0x004F, 0x031B, 0x0309}},
    {0x1EDF, {0x006F, 0x031B, 0x0309}},
    {0x1EE0, {0x004F, 0x031B, 0x0303}},
    {0x1EE1, {0x006F, 0x031B, 0x0303}},
    {0x1EE2, {0x004F, 0x031B, 0x0323}},
    {0x1EE3, {0x006F, 0x031B, 0x0323}},
    {0x1EE4, {0x0055, 0x0323}},
    {0x1EE5, {0x0075, 0x0323}},
    {0x1EE6, {0x0055, 0x0309}},
    {0x1EE7, {0x0075, 0x0309}},
    {0x1EE8, {0x0055, 0x031B, 0x0301}},
    {0x1EE9, {0x0075, 0x031B, 0x0301}},
    {0x1EEA, {0x0055, 0x031B, 0x0300}},
    {0x1EEB, {0x0075, 0x031B, 0x0300}},
    {0x1EEC, {0x0055, 0x031B, 0x0309}},
    {0x1EED, {0x0075, 0x031B, 0x0309}},
    {0x1EEE, {0x0055, 0x031B, 0x0303}},
    {0x1EEF, {0x0075, 0x031B, 0x0303}},
    {0x1EF0, {0x0055, 0x031B, 0x0323}},
    {0x1EF1, {0x0075, 0x031B, 0x0323}},
    {0x1EF2, {0x0059, 0x0300}},
    {0x1EF3, {0x0079, 0x0300}},
    {0x1EF4, {0x0059, 0x0323}},
    {0x1EF5, {0x0079, 0x0323}},
    {0x1EF6, {0x0059, 0x0309}},
    {0x1EF7, {0x0079, 0x0309}},
    {0x1EF8, {0x0059, 0x0303}},
    {0x1EF9, {0x0079, 0x0303}},
};

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

}  // namespace

std::string to_nfd(std::string_view nfc) {
    std::string out;
    const auto* s = reinterpret_cast<const unsigned char*>(nfc.data());
    std::size_t i = 0;
    while (i < nfc.size()) {
        char32_t cp;
        std::size_t len;
        if (s[i] < 0x80) {
            cp = s[i];
            len = 1;
        } else if ((s[i] & 0xE0) == 0xC0) {
            cp = s[i] & 0x1F;
            len = 2;
        } else if ((s[i] & 0xF0) == 0xE0) {
            cp = s[i] & 0x0F;
            len = 3;
        } else {
            cp = s[i] & 0x07;
            len = 4;
        }
        for (std::size_t k = 1; k < len && i + k < nfc.size(); ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
        i += len;
        const auto* it = std::lower_bound(std::begin(k_nfd), std::end(k_nfd), cp,
                                          [](const decomposition& d, char32_t c) { return d.precomposed < c; });
        if (it != std::end(k_nfd) && it->precomposed == cp) {
            for (const char32_t part : it->parts)
                if (part) append_utf8(out, part);
        } else {
            append_utf8(out, cp);
        }
    }
    return out;
}

}  // namespace fieldsync::e2e
