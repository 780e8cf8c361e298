#pragma once
// Shared helpers of the client tests: temporary directories, replicas on temp-dir files,
// Vietnamese test data from tools/demo/giong-trom.json, and recording seams.

#include <fieldsync/client/replica.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace fieldsync::test {

using client::json;

/// A fresh directory under the system temp dir, removed (with its files) on destruction.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> n{0};
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("fieldsync-client-" + std::to_string(rd()) + "-" + std::to_string(n++));
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

/// tools/demo/giong-trom.json (the demo data set's names, cells and commitments).
inline const json& giong_trom() {
    static const json data = [] {
        std::ifstream in(std::string(FIELDSYNC_SOURCE_DIR) + "/tools/demo/giong-trom.json");
        REQUIRE(in.good());
        return json::parse(in);
    }();
    return data;
}

/// A member record of the default schema, with a name built from the data file.
inline json member(std::size_t i, const std::string& cell = "Chi bộ ấp 3") {
    const auto& d = giong_trom();
    auto pick = [&](const char* list, std::size_t k) { return d[list][k % d[list].size()].get<std::string>(); };
    return {{"name", pick("family_names", i) + " " + pick("middle_names", i / 3) + " " + pick("given_names", i / 7)},
            {"cell", cell},
            {"role", "đảng viên"}};
}

inline json registration(const std::string& member_id, std::size_t i) {
    const auto& d = giong_trom();
    return {{"member", member_id},
            {"year", 2014},
            {"theme", d["theme_2014"]},
            {"commitments", json::array({d["concrete_commitments"][i % d["concrete_commitments"].size()]})},
            {"status", "draft"}};
}

/// Seams that record every backoff wait instead of sleeping, with a fixed random sequence.
struct recording_seams {
    std::vector<std::chrono::milliseconds> waits;
    std::mt19937_64 rng{20141126};
    client::sync_seams make() {
        client::sync_seams s;
        s.sleep = [this](std::chrono::milliseconds d) { waits.push_back(d); };
        s.random = [this] { return rng(); };
        return s;
    }
};

inline std::unique_ptr<client::replica> open_replica(const std::string& path,
                                                     std::shared_ptr<client::transport> t = nullptr,
                                                     client::sync_seams seams = {},
                                                     client::sync_tuning tuning = {}) {
    client::replica_options o;
    o.path = path;
    o.transport_override = std::move(t);
    o.seams = std::move(seams);
    o.tuning = tuning;
    auto r = client::replica::open(std::move(o));
    INFO((r ? std::string() : r.err().message));
    REQUIRE(r);
    return std::move(*r);
}

/// A replica and the name its file and its device are made from.
struct device {
    std::unique_ptr<client::replica> r;
    std::string name;
};

/// Unwraps a result, failing the test with the error's message.
template <class T>
T ok(client::result<T> r) {
    INFO((r ? std::string() : r.err().code.message() + ": " + r.err().message));
    REQUIRE(r.has_value());
    return std::move(r).value();
}
inline void ok(client::result<void> r) {
    INFO((r ? std::string() : r.err().code.message() + ": " + r.err().message));
    REQUIRE(r.has_value());
}

}  // namespace fieldsync::test
