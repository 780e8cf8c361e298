#pragma once
// What the benches that host their own server share: failing with a message, unwrapping a
// result or failing, and a store plus a server on 127.0.0.1:0 in a temporary directory.

#include <fieldsync/client/errc.hpp>
#include <fieldsync/protocol/error.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <cerrno>  // program_invocation_short_name (glibc)
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>

namespace fieldsync::bench {

namespace srv = fieldsync::server;

/// Prints "<program>: what" and exits 1.
[[noreturn]] inline void die(const std::string& what) {
    std::cerr << program_invocation_short_name << ": " << what << "\n";
    std::exit(1);
}

template <class T>
T need(client::result<T> r, const char* what) {
    if (!r) die(std::string(what) + ": " + r.err().message);
    return std::move(*r);
}
inline void need(client::result<void> r, const char* what) {
    if (!r) die(std::string(what) + ": " + r.err().message);
}
template <class T>
T need(protocol::expected<T> r, const char* what) {
    if (!r) die(std::string(what) + ": " + r.err().message);
    return std::move(*r);
}

/// A store and a server started with `options` (host 127.0.0.1, port 0 by default), in a
/// temporary directory named after `stem` that goes with it.
struct hosted_server {
    std::filesystem::path dir;
    std::unique_ptr<srv::store> store;
    std::unique_ptr<srv::server> server;
    std::uint16_t port = 0;

    hosted_server(const std::string& stem, srv::server_options options) {
        dir = std::filesystem::temp_directory_path() / (stem + "-" + std::to_string(std::random_device{}()));
        std::filesystem::create_directories(dir);
        srv::store_options so;
        so.path = (dir / "central.db").string();
        store = need(srv::open_sqlite_store(so), "store");
        server = std::make_unique<srv::server>(options, *store);
        port = need(server->start(), "server");
    }
    ~hosted_server() {
        server->stop();
        store->close();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    hosted_server(const hosted_server&) = delete;
    hosted_server& operator=(const hosted_server&) = delete;

    /// A new admin device's token (admins see the whole district).
    std::string token(const std::string& name) {
        return need(store->add_device(name, "huyen-giong-trom", srv::device_role::admin), "device").second;
    }
};

}  // namespace fieldsync::bench
