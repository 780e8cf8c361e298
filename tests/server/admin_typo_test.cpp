// The admin tool, the server and the store files against typos (issue 16): a unit not in the
// tree, a --db that names no store, a restore under a running server, files others can read,
// devices named by name or id prefix, `help`, and --db's default.

#include "server/admin_run.hpp"

#include <catch2/catch.hpp>

#include <fieldsync/server/store.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;
namespace srv = fieldsync::server;
using fieldsync::test::admin_run;
using fieldsync::test::run_admin;
using fieldsync::test::shell_quote;

namespace {

const std::string k_admin = std::string(FIELDSYNC_BINARY_DIR) + "/tools/fieldsync-admin";
const std::string k_server = std::string(FIELDSYNC_BINARY_DIR) + "/server/fieldsync-server";

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("fieldsync-admin-typo-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// A shell command line: its exit code, and its stdout and stderr together.
admin_run sh(const std::string& cmd) {
    admin_run r;
    FILE* p = popen((cmd + " </dev/null 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf{};
    while (const auto n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
    const int status = pclose(p);
    r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

unsigned mode_of(const std::string& path) {
    struct stat st{};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

std::vector<srv::device> devices_of(const std::string& db) {
    srv::store_options o;
    o.path = db;
    auto s = srv::open_sqlite_store(o);
    REQUIRE(s.has_value());
    auto list = (*s)->devices();
    REQUIRE(list.has_value());
    auto out = *list;
    (*s)->close();
    return out;
}

// A store made by `init` with a small tree: a district and one cell.
void make_store(const std::string& db) {
    REQUIRE(run_admin(db, {"init"}).exit == 0);
    REQUIRE(run_admin(db, {"unit", "add", "--id", "giong-trom", "--name", "Huyện ủy Giồng Trôm", "--kind", "district"}).exit == 0);
    REQUIRE(run_admin(db, {"unit", "add", "--id", "ap-5", "--name", "Chi bộ ấp Tân Lợi", "--kind", "cell", "--parent",
                           "giong-trom"}).exit == 0);
}

// fieldsync-server on `db` in the background, its stdout and stderr in files.
struct server_proc {
    pid_t pid = -1;
    std::string out_file, err_file;
    server_proc(const temp_dir& dir, const std::string& db, const std::string& tag,
                std::vector<std::string> extra = {}) {
        out_file = dir / (tag + ".out");
        err_file = dir / (tag + ".err");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        std::vector<std::string> args{k_server, "--db", db, "--listen", "127.0.0.1:0", "--threads", "1"};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&actions);
    }
    ~server_proc() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
    // True once it says it listens; false if it exits first (exit code in `exit_code`).
    bool listening(int& exit_code) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < until) {
            std::ifstream in(out_file);
            std::string line;
            if (std::getline(in, line) && line.rfind("fieldsync-server listening on", 0) == 0) return true;
            int status = 0;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        FAIL("fieldsync-server neither listened nor exited");
        return false;
    }
    std::string err() const {
        std::ifstream in(err_file);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
};

}  // namespace

TEST_CASE("device add and device move refuse a unit not in the tree unless --unit-later", "[admin][typo]") {
    temp_dir dir;
    const auto db = dir / "central.db";
    make_store(db);

    const auto typo = run_admin(db, {"device", "add", "--name", "Bí thư chi bộ ấp Tân Lợi", "--unit", "ap-55"});
    INFO(typo.out);
    CHECK(typo.exit == 2);
    CHECK(typo.out.find("no unit 'ap-55' in the tree") != std::string::npos);
    CHECK(typo.out.find("--unit-later") != std::string::npos);
    CHECK(devices_of(db).empty());  // nothing written, no token shown

    const auto later = run_admin(db, {"device", "add", "--name", "Chi bộ ấp mới", "--unit", "ap-9", "--unit-later"}, "/dev/null");
    CHECK(later.exit == 0);
    CHECK(later.out.size() > 20);  // the token
    const auto ok = run_admin(db, {"device", "add", "--name", "Bí thư chi bộ ấp Tân Lợi", "--unit", "ap-5"}, "/dev/null");
    CHECK(ok.exit == 0);
    REQUIRE(devices_of(db).size() == 2);

    const auto move = run_admin(db, {"device", "move", "Bí thư chi bộ ấp Tân Lợi", "--unit", "giong-tron"});
    INFO(move.out);
    CHECK(move.exit == 2);
    CHECK(move.out.find("no unit 'giong-tron'") != std::string::npos);
    for (const auto& d : devices_of(db))
        if (d.name == "Bí thư chi bộ ấp Tân Lợi") CHECK(d.unit_id == "ap-5");
    CHECK(run_admin(db, {"device", "move", "Bí thư chi bộ ấp Tân Lợi", "--unit", "giong-tron", "--unit-later"}).exit == 0);
    CHECK(run_admin(db, {"device", "move", "Chi bộ ấp mới", "--unit", "giong-trom"}).exit == 0);
    for (const auto& d : devices_of(db)) CHECK(d.unit_id == (d.name == "Chi bộ ấp mới" ? "giong-trom" : "giong-tron"));
}

TEST_CASE("every verb but init and demo refuses a --db that names no store, and makes none", "[admin][typo]") {
    temp_dir dir;
    const auto missing = dir / "typo.db";
    const std::vector<std::vector<std::string>> verbs = {
        {"device", "add", "--name", "x", "--unit", "u", "--unit-later"},
        {"device", "list"},
        {"device", "revoke", "abcd"},
        {"device", "rotate", "abcd"},
        {"device", "move", "abcd", "--unit", "u", "--unit-later"},
        {"device", "enrol", "abcd"},
        {"unit", "add", "--id", "u", "--name", "U", "--kind", "cell"},
        {"unit", "list"},
        {"conflicts", "list"},
        {"conflicts", "show", "c-1"},
        {"gc"},
        {"backup", dir / "copy.db"},
        {"report", "participation"},
    };
    for (const auto& v : verbs) {
        const auto r = run_admin(missing, v);
        INFO(v[0] << " " << (v.size() > 1 ? v[1] : "") << ": " << r.out);
        CHECK(r.exit == 1);
        CHECK(r.out.find("no store at '" + missing + "'") != std::string::npos);
        CHECK(r.out.find("fieldsync-admin --db " + missing + " init") != std::string::npos);
        CHECK_FALSE(fs::exists(missing));
        CHECK_FALSE(fs::exists(dir / "copy.db"));
    }
    // restore makes a store at a missing path from a backup: the backup must exist.
    CHECK(run_admin(missing, {"restore", dir / "no-backup.db"}).exit != 0);
    CHECK_FALSE(fs::exists(missing));

    CHECK(run_admin(missing, {"init"}).exit == 0);
    CHECK(fs::exists(missing));
    const auto demo = dir / "demo.db";
    CHECK(run_admin(demo, {"demo", "--district", "Giồng Trôm", "--communes", "1", "--members", "20"}, "/dev/null").exit == 0);
    CHECK(fs::exists(demo));
}

TEST_CASE("the store path (--db) defaults to FIELDSYNC_DB, else data/fieldsync.db, and help describes the commands", "[admin][typo]") {
    temp_dir dir;
    const std::string in_dir = "cd " + shell_quote(dir.path.string()) + " && ";
    const auto bin = shell_quote(k_admin);

    const auto named = sh(in_dir + "FIELDSYNC_DB=chosen.db " + bin + " init");
    INFO(named.out);
    CHECK(named.exit == 0);
    CHECK(fs::exists(dir / "chosen.db"));
    CHECK_FALSE(fs::exists(dir / "data/fieldsync.db"));
    // Refused, not made, when the default names no store.
    const auto none = sh(in_dir + "env -u FIELDSYNC_DB " + bin + " device list");
    CHECK(none.exit == 1);
    CHECK(none.out.find("no store at 'data/fieldsync.db'") != std::string::npos);
    CHECK(sh(in_dir + "env -u FIELDSYNC_DB " + bin + " init").exit == 0);
    CHECK(fs::exists(dir / "data/fieldsync.db"));
    CHECK(sh(in_dir + "env -u FIELDSYNC_DB " + bin + " unit add --id ap-1 --name 'Chi bộ ấp 1' --kind cell").exit == 0);
    CHECK(sh(in_dir + "FIELDSYNC_DB=chosen.db " + bin + " unit list").out.find("ap-1") == std::string::npos);
    CHECK(sh(in_dir + "FIELDSYNC_DB=chosen.db " + bin + " --db data/fieldsync.db unit list").out.find("ap-1") !=
          std::string::npos);

    const auto help = sh(bin + " help");
    CHECK(help.exit == 0);
    CHECK(help.out.find("FIELDSYNC_DB") != std::string::npos);
    CHECK(help.out.find("data/fieldsync.db") != std::string::npos);
    const auto add = sh(bin + " help device add");
    CHECK(add.exit == 0);
    CHECK(add.out.find("--unit-later") != std::string::npos);
    CHECK(sh(bin + " help device").out.find("device enrol ID") != std::string::npos);
    CHECK(sh(bin + " help conflicts").out.find("conflicts resolve ID") != std::string::npos);
    CHECK(sh(bin + " help nothing").exit == 2);
}

TEST_CASE("devices are named by a unique name or id prefix, ambiguous ones listed", "[admin][typo]") {
    temp_dir dir;
    const auto db = dir / "central.db";
    make_store(db);
    const std::string nfc = "Bí thư chi bộ ấp Tân Lợi";
    const std::string nfd = "Bi\xCC\x81 thu\xCC\x9B chi bo\xCC\x82\xCC\xA3 a\xCC\x82\xCC\x81p Ta\xCC\x82n Lo\xCC\x9B\xCC\xA3i";
    REQUIRE(run_admin(db, {"device", "add", "--name", nfc, "--unit", "ap-5"}, "/dev/null").exit == 0);
    REQUIRE(run_admin(db, {"device", "add", "--name", "Máy trùng tên", "--unit", "ap-5"}, "/dev/null").exit == 0);
    REQUIRE(run_admin(db, {"device", "add", "--name", "Máy trùng tên", "--unit", "giong-trom"}, "/dev/null").exit == 0);
    const auto all = devices_of(db);
    REQUIRE(all.size() == 3);
    std::string secretary, twin_a, twin_b;
    for (const auto& d : all)
        (d.name == nfc ? secretary : twin_a.empty() ? twin_a : twin_b) = d.id;

    // By name typed in NFD: rotate prints a new token.
    const auto rotated = run_admin(db, {"device", "rotate", nfd}, "/dev/null");
    CHECK(rotated.exit == 0);
    CHECK(rotated.out.size() > 20);
    // By an id prefix of 8 characters.
    CHECK(run_admin(db, {"device", "enrol", secretary.substr(0, 8)}, "/dev/null").exit == 0);
    // A prefix shorter than 4 is not a name.
    const auto short_prefix = run_admin(db, {"device", "revoke", secretary.substr(0, 3)});
    CHECK(short_prefix.exit == 1);
    CHECK(short_prefix.out.find("no device") != std::string::npos);
    // Ambiguous: refused, both candidates listed, nothing revoked.
    const auto twins = run_admin(db, {"device", "revoke", "Máy trùng tên"});
    INFO(twins.out);
    CHECK(twins.exit == 1);
    CHECK(twins.out.find("names 2 devices") != std::string::npos);
    CHECK(twins.out.find(twin_a) != std::string::npos);
    CHECK(twins.out.find(twin_b) != std::string::npos);
    CHECK(run_admin(db, {"device", "revoke", "Không có máy này"}).exit == 1);
    for (const auto& d : devices_of(db)) CHECK_FALSE(d.revoked_ms);
    // The full id still works.
    CHECK(run_admin(db, {"device", "revoke", twin_b}).exit == 0);
    for (const auto& d : devices_of(db)) CHECK(d.revoked_ms.has_value() == (d.id == twin_b));
}

TEST_CASE("backups and restored stores are readable by their owner only, whatever the umask", "[admin][typo][backup]") {
    temp_dir dir;
    const auto db = dir / "central.db";
    make_store(db);
    const auto bin = shell_quote(k_admin);
    const auto backup = dir / "backup.db";
    const auto r = sh("umask 000 && " + bin + " --db " + shell_quote(db) + " backup " + shell_quote(backup));
    INFO(r.out);
    REQUIRE(r.exit == 0);
    CHECK(mode_of(backup) == 0600);
    for (const auto* target : {"restored.db", "central.db"}) {
        const auto into = dir / target;
        const auto rr = sh("umask 000 && " + bin + " --db " + shell_quote(into) + " restore " + shell_quote(backup));
        INFO(rr.out);
        REQUIRE(rr.exit == 0);
        CHECK(mode_of(into) == 0600);
        CHECK(run_admin(into, {"unit", "list"}).out.find("ap-5") != std::string::npos);
    }
}

TEST_CASE("the server refuses a missing store unless --create, and one server at a time serves a store, and restore "
          "waits for it to stop",
          "[admin][typo][backup][exe]") {
    temp_dir dir;
    const auto db = dir / "central.db";
    int code = 0;
    {
        server_proc typo(dir, dir / "typo.db", "typo");
        CHECK_FALSE(typo.listening(code));
        CHECK(code == 2);
        CHECK(typo.err().find("no store at") != std::string::npos);
        CHECK(typo.err().find("init") != std::string::npos);
        CHECK_FALSE(fs::exists(dir / "typo.db"));
    }
    {
        server_proc created(dir, dir / "created.db", "created", {"--create"});
        CHECK(created.listening(code));
        CHECK(fs::exists(dir / "created.db"));
    }

    make_store(db);
    const auto backup = dir / "backup.db";
    REQUIRE(run_admin(db, {"backup", backup}, "/dev/null").exit == 0);
    server_proc first(dir, db, "first");
    REQUIRE(first.listening(code));

    server_proc second(dir, db, "second");
    CHECK_FALSE(second.listening(code));
    CHECK(code == 1);
    CHECK(second.err().find("in use by process " + std::to_string(first.pid)) != std::string::npos);

    const auto refused = run_admin(db, {"restore", backup});
    INFO(refused.out);
    CHECK(refused.exit == 1);
    CHECK(refused.out.find("stop the server first") != std::string::npos);
    for (const auto& e : fs::directory_iterator(dir.path))
        CHECK(e.path().filename().string().find("replaced") == std::string::npos);

    // The kernel releases the lock however the server ends.
    kill(first.pid, SIGKILL);
    waitpid(first.pid, nullptr, 0);
    first.pid = -1;
    const auto restored = run_admin(db, {"restore", backup});
    INFO(restored.out);
    CHECK(restored.exit == 0);
    server_proc again(dir, db, "again");
    CHECK(again.listening(code));
}
