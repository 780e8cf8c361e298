// `fieldsync-admin device add --enrol` and `device enrol`, run as a program against a store
// file: the link alone on stdout, the code and a QR code on stderr, the SVG file; a new code
// ends the older one; bad options and unknown devices are refused.

#include "server/admin_run.hpp"

#include <catch2/catch.hpp>

#include <fieldsync/server/store.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
namespace srv = fieldsync::server;

namespace {

using fieldsync::test::admin_run;

// fieldsync-admin --db DB ARGS...: exit code and stdout; stderr goes to `err_file`.
admin_run admin(const std::string& db, const std::vector<std::string>& args, const std::string& err_file) {
    return fieldsync::test::run_admin(db, args, err_file);
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct enrol_cli {
    fs::path dir;
    std::string db, err;
    enrol_cli() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-admin-enrol-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        db = (dir / "central.db").string();
        err = (dir / "stderr.txt").string();
        REQUIRE(admin(db, {"init"}, err).exit == 0);
        REQUIRE(admin(db, {"unit", "add", "--id", "ap-5", "--name", "Chi bộ ấp Tân Lợi", "--kind", "cell"}, err).exit == 0);
    }
    ~enrol_cli() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::unique_ptr<srv::store> open() {
        srv::store_options o;
        o.path = db;
        auto s = srv::open_sqlite_store(o);
        REQUIRE(s.has_value());
        return std::move(s).value();
    }
};

const std::regex k_link(R"(https://fs\.giongtrom\.example/app/#enrol=([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\n)");

}  // namespace

TEST_CASE("fieldsync-admin device add --enrol prints a link, a QR code and an SVG, and the code enrols",
          "[admin][enrol]") {
    enrol_cli c;
    const auto svg = (c.dir / "ma-qr.svg").string();
    const auto added = admin(c.db, {"device", "add", "--name", "Bí thư chi bộ ấp Tân Lợi", "--unit", "ap-5", "--enrol",
                                    "--server", "https://fs.giongtrom.example/", "--valid-hours", "48", "--qr-svg", svg},
                             c.err);
    REQUIRE(added.exit == 0);
    std::smatch m;
    REQUIRE(std::regex_match(added.out, m, k_link));  // the link, and nothing else: no token
    const std::string code = m[1];
    const auto told = slurp(c.err);
    CHECK(told.find(code) != std::string::npos);
    CHECK(told.find("Bí thư chi bộ ấp Tân Lợi") != std::string::npos);
    CHECK(told.find("\u2588") != std::string::npos);  // the QR code, in blocks
    const auto picture = slurp(svg);
    CHECK(picture.starts_with("<?xml"));
    CHECK(picture.find("<svg") != std::string::npos);
    CHECK(picture.find("<path fill=\"#000\" d=\"M") != std::string::npos);

    auto st = c.open();
    auto devices = st->devices();
    REQUIRE(devices.has_value());
    REQUIRE(devices->size() == 1);
    const auto id = devices->front().id;
    {
        // A second code for the same device ends the first.
        const auto again = admin(c.db, {"device", "enrol", id, "--server", "https://fs.giongtrom.example"}, c.err);
        REQUIRE(again.exit == 0);
        std::smatch m2;
        REQUIRE(std::regex_match(again.out, m2, k_link));
        CHECK(m2[1] != code);
        CHECK(st->redeem_enrolment(code, "fs1_" + std::string(64, 'd')).err().code ==
              fieldsync::protocol::errc::not_found);
        auto dev = st->redeem_enrolment(m2[1], "fs1_" + std::string(64, 'd'));
        REQUIRE(dev.has_value());
        CHECK(dev->id == id);
    }
    // Without --server the link names FIELDSYNC_PUBLIC_URL or the local default.
    const auto local = admin(c.db, {"device", "enrol", id}, c.err);
    REQUIRE(local.exit == 0);
    CHECK(local.out.starts_with("http://127.0.0.1:8080/app/#enrol="));
}

TEST_CASE("fieldsync-admin enrolment refuses bad options and unknown devices", "[admin][enrol]") {
    enrol_cli c;
    CHECK(admin(c.db, {"device", "add", "--name", "A", "--unit", "ap-5", "--enrol", "--server", "fs.example"}, c.err).exit == 2);
    CHECK(admin(c.db, {"device", "add", "--name", "A", "--unit", "ap-5", "--enrol", "--valid-hours", "0"}, c.err).exit == 2);
    CHECK(admin(c.db, {"device", "add", "--name", "A", "--unit", "ap-5", "--enrol", "--valid-hours", "721"}, c.err).exit == 2);
    CHECK(admin(c.db, {"device", "add", "--name", "A", "--unit", "ap-5", "--server", "https://fs.example"}, c.err).exit == 2);
    CHECK(admin(c.db, {"device", "enrol"}, c.err).exit == 2);
    CHECK(admin(c.db, {"device", "enrol", "khong-co", "--bogus", "1"}, c.err).exit == 2);
    const auto unknown = admin(c.db, {"device", "enrol", "khong-co"}, c.err);
    CHECK(unknown.exit == 1);
    CHECK(unknown.out.empty());
    CHECK(slurp(c.err).find("no device 'khong-co'") != std::string::npos);
    // None of the refusals added a device.
    auto st = c.open();
    auto devices = st->devices();
    REQUIRE(devices.has_value());
    CHECK(devices->empty());
}
