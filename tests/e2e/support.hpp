#pragma once
// The end-to-end fixture: a real store on a temp-dir SQLite file behind a real server on an
// ephemeral loopback port, and a small synchronous HTTP client (well-formed requests, or raw
// bytes for the bad-input tests). Every client operation has a timeout, so a server that
// hangs fails the test instead of hanging it.
//
// Not thread-safe except where noted: http_get/http_post/raw_connection create their own
// connection per call and may be used from several threads at once.

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <string>
#include <vector>

namespace fieldsync::e2e {

namespace proto = fieldsync::protocol;
namespace srv = fieldsync::server;
using proto::json;
using namespace std::chrono_literals;

/// How long a client waits for any one answer before the test fails.
inline constexpr std::chrono::milliseconds k_client_timeout{10'000};

struct http_reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;

    /// The body parsed as JSON (null when it is not JSON).
    json body_json() const;
    /// The error code of an error body ("" when the body is not {"error": {...}}).
    std::string error_code() const;
    std::string error_message() const;
};

/// One TCP connection to the server, for requests written byte by byte.
class raw_connection {
public:
    explicit raw_connection(std::uint16_t port);
    ~raw_connection();

    /// Writes all of `bytes`; false if the connection failed (e.g. the server closed it).
    bool send(std::string_view bytes);
    /// Reads one response; nullopt on timeout or if the connection closed first.
    std::optional<http_reply> read_reply(std::chrono::milliseconds timeout = k_client_timeout);
    /// True once the server has closed the connection (EOF or reset) within `timeout`;
    /// discards whatever it sends meanwhile.
    bool wait_closed(std::chrono::milliseconds timeout);

private:
    template <class Start>
    bool run_for(std::chrono::milliseconds timeout, Start start);

    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::socket socket_;
    boost::beast::flat_buffer buffer_;  // bytes read past the last response
};

/// A whole request, written out: "METHOD target HTTP/1.1" plus Host, the given headers,
/// Content-Length when there is a body, and "Connection: close".
std::string format_request(const std::string& method, const std::string& target, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers);

/// One request on a fresh connection; status 0 when no answer came.
http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = "",
                        const std::vector<std::pair<std::string, std::string>>& headers = {});

/// A temporary directory, removed with everything in it at destruction.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

/// A store plus a server on 127.0.0.1:0, and one registered field device.
class server_fixture {
public:
    /// `tweak` adjusts the server options (timeouts, limits); `schema` must outlive the fixture.
    explicit server_fixture(srv::server_options tweak = quick_options(), const proto::schema* schema = nullptr);
    ~server_fixture();

    /// Options with short timeouts, so timeout tests finish in about a second.
    static srv::server_options quick_options();

    /// Stops the server, closes the store, reopens the same file and starts again (the port
    /// may change).
    void restart();
    /// Stops the server and closes the store (the destructor does it too).
    void shut_down();

    std::uint16_t port() const { return port_; }
    srv::store& store() { return *store_; }
    srv::server& server() { return *server_; }
    /// The store's SQLite file.
    std::string db_path() const { return (dir_.path() / "central.db").string(); }
    const std::string& token() const { return token_; }
    const srv::device& device() const { return device_; }

    /// Registers another device and returns its token.
    std::string add_device(const std::string& name, const std::string& unit,
                           srv::device_role role = srv::device_role::field);

    /// Thread-safe. GET with the fixture's token (or `token`).
    http_reply get(const std::string& target, std::optional<std::string> token = std::nullopt) const;
    /// Thread-safe. POST /v1/sync with a JSON body and the fixture's token (or `token`).
    http_reply post_sync(const json& body, std::optional<std::string> token = std::nullopt) const;
    http_reply post_sync_text(const std::string& body, std::optional<std::string> token = std::nullopt) const;
    /// Thread-safe. POST /v1/sync that must answer 200; returns the parsed response.
    json sync(const json& body, std::optional<std::string> token = std::nullopt) const;

private:
    void open_and_start();

    temp_dir dir_;
    srv::server_options options_;
    const proto::schema* schema_;
    std::unique_ptr<srv::store> store_;
    std::unique_ptr<srv::server> server_;
    std::uint16_t port_ = 0;
    srv::device device_;
    std::string token_;
};

// ---- building requests ------------------------------------------------------------------

/// A put change as the wire carries it.
json put_change(const std::string& change_id, const std::string& collection, const std::string& id,
                std::int64_t base_version, const json& data, const std::string& unit = "xa-binh-hoa");
json patch_change(const std::string& change_id, const std::string& collection, const std::string& id,
                  std::int64_t base_version, const json& data, const std::string& unit = "xa-binh-hoa");
json delete_change(const std::string& change_id, const std::string& collection, const std::string& id,
                   std::int64_t base_version, const std::string& unit = "xa-binh-hoa");
/// A sync body with the given changes; cursor "" unless named. (A vector, not a json: a
/// braced list of one json would otherwise be taken for a copy of it, not an array.)
json batch(const std::string& batch_id, std::vector<json> changes, const std::string& cursor = "");

/// The single result of a one-change sync.
json only_result(const json& response);

// ---- data ---------------------------------------------------------------------------------

/// tools/demo/giong-trom.json (the demo data set's names and figures), parsed.
const json& giong_trom();
/// The canonical decomposition (NFD) of Vietnamese text given in NFC: every precomposed
/// Vietnamese letter is split into its base letter and combining marks (U+0300, U+0301,
/// U+0303, U+0309, U+0323, U+0302, U+0306, U+031B) in canonical order.
std::string to_nfd(std::string_view nfc);

/// Polls `pred` until it holds or `timeout` passes; returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(10ms);
    }
}

}  // namespace fieldsync::e2e
