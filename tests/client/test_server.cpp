// A real fieldsync server for the C and Python client tests: a store in a fresh temp
// directory, the server on 127.0.0.1 with an ephemeral port, and one admin device. Prints
// "URL TOKEN" on one line (and writes it to the file named by argv[1], if given), then serves
// until its stdin reaches EOF, so the test process that started it controls its lifetime.

#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

int main(int argc, char** argv) {
    namespace srv = fieldsync::server;
    const auto dir = std::filesystem::temp_directory_path() /
                     ("fieldsync-test-server-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir);
    int rc = 0;
    {
        srv::store_options so;
        so.path = (dir / "central.db").string();
        auto st = srv::open_sqlite_store(so);
        if (!st) {
            std::cerr << "test_server: " << st.err().message << "\n";
            return 1;
        }
        auto device = (*st)->add_device("Máy kiểm thử C ABI", "huyen-giong-trom", srv::device_role::admin);
        if (!device) {
            std::cerr << "test_server: " << device.err().message << "\n";
            return 1;
        }
        srv::server_options o;
        o.threads = 2;
        auto blobs = srv::open_blob_dir(srv::default_blob_dir(so.path));  // attachments
        if (!blobs) {
            std::cerr << "test_server: " << blobs.err().message << "\n";
            return 1;
        }
        o.blobs = std::move(*blobs);
        srv::server server(o, **st);
        auto port = server.start();
        if (!port) {
            std::cerr << "test_server: " << port.err().message << "\n";
            return 1;
        }
        const std::string line = "http://127.0.0.1:" + std::to_string(*port) + " " + device->second;
        if (argc > 1) {
            const std::string tmp = std::string(argv[1]) + ".tmp";
            std::ofstream(tmp) << line << "\n";
            std::filesystem::rename(tmp, argv[1]);  // appears whole or not at all
        }
        std::cout << line << std::endl;
        std::string ignored;
        while (std::getline(std::cin, ignored)) {
        }
        server.stop();
        (*st)->close();
    }
    std::filesystem::remove_all(dir);
    return rc;
}
