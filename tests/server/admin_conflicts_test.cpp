// `fieldsync-admin conflicts list|show|resolve`, run as a program against a store file: the
// output (a side-by-side view whose columns line up for NFD Vietnamese and wide text) and
// the exit codes (0 done, 1 failed, 2 usage, 3 stale).

#include "server/admin_run.hpp"

#include <catch2/catch.hpp>

#include <fieldsync/protocol/display_width.hpp>
#include <fieldsync/server/store.hpp>

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
namespace srv = fieldsync::server;
using proto::json;

namespace {

using fieldsync::test::admin_run;
namespace test = fieldsync::test;

// stdout and stderr together.
admin_run admin(const std::string& db, const std::vector<std::string>& args) { return test::run_admin(db, args); }

struct cli_fixture {
    fs::path dir;
    std::string db;
    std::unique_ptr<srv::store> s;
    srv::device secretary, member, reviewer, field_dev;
    int n = 0;

    cli_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-admin-cli-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        db = (dir / "central.db").string();
        srv::store_options o;
        o.path = db;
        auto opened = srv::open_sqlite_store(o);
        REQUIRE(opened.has_value());
        s = std::move(opened).value();
        REQUIRE(s->put_unit({"binh-hoa", "", "Đảng bộ xã Bình Hòa", "commune", ""}).has_value());
        REQUIRE(s->put_unit({"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""}).has_value());
        secretary = add("Bí thư chi bộ ấp 1", "ap-1", srv::device_role::field);
        member = add("Đảng viên Nguyễn Văn An", "ap-1", srv::device_role::field);
        reviewer = add("Kiểm tra xã", "binh-hoa", srv::device_role::reviewer);
        field_dev = add("Văn phòng xã", "binh-hoa", srv::device_role::field);
    }
    ~cli_fixture() {
        s.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    srv::device add(const std::string& name, const std::string& unit, srv::device_role role) {
        auto d = s->add_device(name, unit, role);
        REQUIRE(d.has_value());
        const auto all = s->devices();
        REQUIRE(all.has_value());
        for (const auto& x : *all)
            if (x.id == d->first.id) return x;
        FAIL("device not listed");
        return {};
    }
    proto::change_result write(const srv::device& d, const std::string& id, std::int64_t base, json data) {
        proto::change_set cs;
        cs.batch_id = "b" + std::to_string(n);
        proto::change_entry e;
        e.c.change_id = "c" + std::to_string(n++);
        e.c.collection = "registrations";
        e.c.id = id;
        e.c.unit_id = "ap-1";
        e.c.op = proto::op_kind::put;
        e.c.base_version = base;
        e.c.data = std::move(data);
        cs.changes.push_back(std::move(e));
        auto r = s->push(d, std::move(cs));
        INFO((r ? std::string() : r.err().message));
        REQUIRE(r.has_value());
        return (*r)[0];
    }
    static json base_record() {
        return {{"member", "m-an"}, {"year", 2014}, {"commitments", {"Rời khỏi phòng thì tắt quạt máy, tắt đèn"}},
                {"status", "draft"}, {"notes", ""}};
    }
    // notes and status collide; the incoming notes are NFD (as some phones type them) and
    // the head's hold wide characters.
    std::string make_conflict(const std::string& id) {
        write(secretary, id, 0, base_record());
        auto a = base_record();
        a["notes"] = "Chi bộ đề nghị 中文";
        a["status"] = "reviewed";
        REQUIRE(write(secretary, id, 1, a).status == proto::change_status::applied);
        auto b = base_record();
        b["notes"] = "To\xCC\x82i \xC4\x91" "a\xCC\x83 bo\xCC\x82\xCC\x89 sung";  // "Tôi đã bổ sung" in NFD
        b["status"] = "submitted";
        b["theme"] = "nói đi đôi với làm";
        const auto r = write(member, id, 1, b);
        REQUIRE(r.status == proto::change_status::conflict);
        return *r.conflict_id;
    }
    json head(const std::string& id) { return (*s->get("registrations", id))->data; }
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace

TEST_CASE("conflicts list and show: colliding fields marked, columns aligned for NFD and wide text",
          "[admin][review][cli]") {
    cli_fixture t;
    const auto id = t.make_conflict("dk-1");

    const auto list = admin(t.db, {"conflicts", "list"});
    INFO(list.out);
    CHECK(list.exit == 0);
    CHECK(list.out.find(id) != std::string::npos);
    CHECK(list.out.find("notes,status") != std::string::npos);
    CHECK(list.out.find("Đảng viên Nguyễn Văn An") != std::string::npos);
    CHECK(admin(t.db, {"conflicts", "list", "--status", "resolved"}).out.find(id) == std::string::npos);
    CHECK(admin(t.db, {"conflicts", "list", "--status", "later"}).exit == 2);

    const auto show = admin(t.db, {"conflicts", "show", id});
    INFO(show.out);
    REQUIRE(show.exit == 0);
    CHECK(show.out.find("Bí thư chi bộ ấp 1") != std::string::npos);   // who wrote the head
    CHECK(show.out.find("Đảng viên Nguyễn Văn An") != std::string::npos);  // and the incoming side
    // The grid: every line with separators has them at the same display columns.
    std::vector<std::size_t> seps;
    int grid_lines = 0;
    bool notes_marked = false, status_marked = false, theme_unmarked = false;
    for (const auto& line : lines_of(show.out)) {
        if (line.find(" | ") == std::string::npos) continue;
        ++grid_lines;
        std::vector<std::size_t> at;
        for (auto p = line.find(" | "); p != std::string::npos; p = line.find(" | ", p + 3))
            at.push_back(proto::display_width(line.substr(0, p)));
        if (seps.empty()) seps = at;
        CHECK(at == seps);
        if (line.rfind("* notes ", 0) == 0) notes_marked = true;
        if (line.rfind("* status ", 0) == 0) status_marked = true;
        if (line.rfind("  theme ", 0) == 0) theme_unmarked = true;
    }
    CHECK(grid_lines >= 7);
    CHECK(seps.size() == 3);
    CHECK(notes_marked);
    CHECK(status_marked);
    CHECK(theme_unmarked);
    CHECK(show.out.find("To\xCC\x82i \xC4\x91" "a\xCC\x83 bo\xCC\x82\xCC\x89 sung") != std::string::npos);  // shown as written

    CHECK(admin(t.db, {"conflicts", "show", "no-such"}).exit == 1);
    CHECK(admin(t.db, {"conflicts", "--help"}).exit == 0);
}

TEST_CASE("conflicts resolve: flags, stale refusal, roles and exit codes", "[admin][review][cli]") {
    cli_fixture t;
    const auto id = t.make_conflict("dk-1");

    // No choice and no terminal: a usage error, nothing written.
    CHECK(admin(t.db, {"conflicts", "resolve", id, "--as", t.reviewer.id}).exit == 2);
    CHECK(admin(t.db, {"conflicts", "resolve", id, "--keep-head"}).exit == 2);  // --as required
    CHECK(admin(t.db, {"conflicts", "resolve", id, "--keep-head", "--dismiss", "--as", t.reviewer.id}).exit == 2);
    const auto field = admin(t.db, {"conflicts", "resolve", id, "--keep-head", "--as", t.field_dev.id});
    CHECK(field.exit == 1);
    CHECK(field.out.find("forbidden") != std::string::npos);

    // Decided on version 1 while the head is 2: stale, shown again, exit 3.
    const auto stale = admin(t.db, {"conflicts", "resolve", id, "--pick", "notes=incoming", "--pick", "/status=head",
                                    "--head-version", "1", "--as", t.reviewer.id});
    INFO(stale.out);
    CHECK(stale.exit == 3);
    CHECK(stale.out.find("stale") != std::string::npos);
    CHECK(stale.out.find("* notes") != std::string::npos);
    CHECK(t.head("dk-1")["status"] == "reviewed");

    const auto ok = admin(t.db, {"conflicts", "resolve", id, "--pick", "notes=incoming", "--pick", "/status=head",
                                 "--note", "gộp ý", "--as", t.reviewer.id});
    INFO(ok.out);
    CHECK(ok.exit == 0);
    CHECK(ok.out.find("resolved") != std::string::npos);
    CHECK(t.head("dk-1")["notes"] == "To\xCC\x82i \xC4\x91" "a\xCC\x83 bo\xCC\x82\xCC\x89 sung");
    CHECK(t.head("dk-1")["status"] == "reviewed");
    CHECK(t.head("dk-1")["theme"] == "nói đi đôi với làm");
    const auto again = admin(t.db, {"conflicts", "resolve", id, "--keep-head", "--as", t.reviewer.id});
    CHECK(again.exit == 1);
    CHECK(again.out.find("conflict_closed") != std::string::npos);

    // Edit from a file; dismiss; both stay listed.
    const auto id2 = t.make_conflict("dk-2");
    auto edited = cli_fixture::base_record();
    edited["notes"] = "bản của người xem xét";
    const auto file = (t.dir / "edited.json").string();
    std::ofstream(file) << edited.dump();
    CHECK(admin(t.db, {"conflicts", "resolve", id2, "--edit", file, "--as", t.reviewer.id}).exit == 0);
    CHECK(t.head("dk-2")["notes"] == "bản của người xem xét");
    const auto id3 = t.make_conflict("dk-3");
    CHECK(admin(t.db, {"conflicts", "resolve", id3, "--dismiss", "--as", t.reviewer.id}).exit == 0);
    CHECK(admin(t.db, {"conflicts", "list", "--status", "dismissed"}).out.find(id3) != std::string::npos);
    const auto resolved = admin(t.db, {"conflicts", "list", "--status", "resolved"}).out;
    CHECK(resolved.find(id) != std::string::npos);
    CHECK(resolved.find(id2) != std::string::npos);
    CHECK(admin(t.db, {"conflicts", "show", id3}).out.find("dismiss") != std::string::npos);
}

TEST_CASE("the admin tool reads the schema the server serves, kept in the store", "[admin][conflicts][schema]") {
    // A collection that only the server's --schema file has: the tool, run without one, must
    // still know it.
    std::random_device rd;
    const auto dir = fs::temp_directory_path() / ("fieldsync-admin-schema-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir);
    const auto db = (dir / "central.db").string();
    auto doc = json::parse(proto::schema::default_schema_text());
    doc["version"] = 2;
    doc["collections"]["visits"] = {{"fields", {{"household", {{"type", "string"}, {"required", true}}},
                                                {"notes", {{"type", "string"}}}}}};
    const auto custom = proto::schema::from_json(doc);
    REQUIRE(custom.has_value());
    std::string conflict_id, reviewer_id;
    {
        srv::store_options o;
        o.path = db;
        o.schema = &*custom;
        auto s = srv::open_sqlite_store(o);
        REQUIRE(s.has_value());
        REQUIRE((*s)->put_unit({"ap-4", "", "Chi bộ ấp Lương Hòa", "cell", ""}).has_value());
        const auto a = (*s)->add_device("Bí thư chi bộ ấp Lương Hòa", "ap-4", srv::device_role::field);
        const auto b = (*s)->add_device("Phó bí thư chi bộ ấp Lương Hòa", "ap-4", srv::device_role::field);
        const auto r = (*s)->add_device("Kiểm tra ấp Lương Hòa", "ap-4", srv::device_role::reviewer);
        REQUIRE((a && b && r));
        reviewer_id = r->first.id;
        auto visit = [&](const srv::device& d, const std::string& change_id, std::int64_t base, const std::string& notes) {
            proto::change_set cs;
            cs.batch_id = "b-" + change_id;
            proto::change_entry e;
            e.c = {change_id, "visits", "tham-ho-1", "ap-4", proto::op_kind::put, base,
                   json{{"household", "Hộ ông Lê Văn Tư"}, {"notes", notes}}};
            cs.changes.push_back(std::move(e));
            auto res = (*s)->push(d, std::move(cs));
            REQUIRE(res.has_value());
            return (*res)[0];
        };
        REQUIRE(visit(a->first, "c-1", 0, "Đã thăm").status == proto::change_status::applied);
        REQUIRE(visit(a->first, "c-2", 1, "Đã thăm, gia đình khỏe").status == proto::change_status::applied);
        const auto c = visit(b->first, "c-3", 1, "Hẹn thăm lại tuần sau");
        REQUIRE(c.status == proto::change_status::conflict);
        conflict_id = c.conflict_id.value_or("");
    }
    const auto shown = admin(db, {"conflicts", "show", conflict_id});
    INFO(shown.out);
    CHECK(shown.exit == 0);
    const auto resolved = admin(db, {"conflicts", "resolve", conflict_id, "--as", reviewer_id, "--take-incoming"});
    INFO(resolved.out);
    CHECK(resolved.exit == 0);
    {
        srv::store_options o;
        o.path = db;
        auto s = srv::open_sqlite_store(o);  // no schema given: the kept one
        REQUIRE(s.has_value());
        CHECK((*s)->schema().find("visits") != nullptr);
        CHECK((*s)->schema().version() == 2);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

namespace {

// fieldsync-admin ARGS on a pseudo-terminal, as a reviewer runs it: each step waits until the
// output shows `prompt`, then types `keys` ("\x04" is Ctrl-D). Its exit code and everything
// the terminal showed.
struct pty_step {
    std::string prompt, keys;
};

admin_run run_on_terminal(const std::vector<std::string>& args, const std::vector<pty_step>& steps) {
    const std::string bin = std::string(FIELDSYNC_BINARY_DIR) + "/tools/fieldsync-admin";
    int master = -1;
    const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::vector<std::string> all{bin};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    admin_run r;
    // Reads what the terminal shows until `until` appears after `from` (or EOF, or 20 s).
    auto read_until = [&](const std::string& until, std::size_t from) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (until.empty() || r.out.find(until, from) == std::string::npos) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            pollfd p{master, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            char buf[4096];
            const auto n = read(master, buf, sizeof buf);
            if (n <= 0) return until.empty();  // EIO: the program ended
            r.out.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    };
    std::size_t from = 0;
    for (const auto& s : steps) {
        INFO(r.out);
        REQUIRE(read_until(s.prompt, from));
        from = r.out.size();
        // Ctrl-D ends input only at the start of a line or right after other keys: one
        // write per key, so the terminal's line discipline sees them as typed.
        for (const char c : s.keys) REQUIRE(write(master, &c, 1) == 1);
    }
    read_until("", 0);
    int status = 0;
    waitpid(pid, &status, 0);
    close(master);
    r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace

TEST_CASE("interactive resolve keeps --note and never records a stray keystroke as the note", "[admin][review][cli]") {
    cli_fixture t;
    const auto id = t.make_conflict("dk-1");
    const std::string choice_prompt = "[q]uit? ";
    const std::string note_prompt = "note (optional";
    auto status_of = [&](const std::string& cid) { return (*t.s->conflict(cid))->status; };

    SECTION("Ctrl-D at the note prompt records nothing") {
        const auto r = run_on_terminal({"--db", t.db, "conflicts", "resolve", id, "--as", t.reviewer.id},
                                       {{choice_prompt, "k\n"}, {note_prompt, "\x04"}});
        INFO(r.out);
        CHECK(r.exit == 1);
        CHECK(r.out.find("nothing recorded") != std::string::npos);
        CHECK(status_of(id) == "open");
    }
    SECTION("a keystroke not ended by Enter, then Ctrl-D, is not a note") {
        const auto r = run_on_terminal({"--db", t.db, "conflicts", "resolve", id, "--as", t.reviewer.id},
                                       {{choice_prompt, "k\n"}, {note_prompt, "q\x04\x04"}});
        INFO(r.out);
        CHECK(r.exit == 1);
        CHECK(status_of(id) == "open");
    }
    SECTION("Ctrl-D at the choice records nothing") {
        const auto r = run_on_terminal({"--db", t.db, "conflicts", "resolve", id, "--as", t.reviewer.id},
                                       {{choice_prompt, "\x04"}});
        INFO(r.out);
        CHECK(r.exit == 1);
        CHECK(status_of(id) == "open");
    }
    SECTION("--note given is kept: no note prompt") {
        const auto r = run_on_terminal({"--db", t.db, "conflicts", "resolve", id, "--as", "Kiểm tra xã", "--note",
                                        "Xã đã xác minh với chi bộ"},
                                       {{choice_prompt, "k\n"}});
        INFO(r.out);
        CHECK(r.exit == 0);
        CHECK(r.out.find(note_prompt) == std::string::npos);
        const auto c = *t.s->conflict(id);
        CHECK(c->status == "resolved");
        CHECK(c->resolution.value("note", "") == "Xã đã xác minh với chi bộ");
    }
    SECTION("a note typed and ended by Enter is recorded") {
        const auto r = run_on_terminal({"--db", t.db, "conflicts", "resolve", id, "--as", t.reviewer.id},
                                       {{choice_prompt, "t\n"}, {note_prompt, "Đồng ý bản của đảng viên\n"}});
        INFO(r.out);
        CHECK(r.exit == 0);
        const auto c = *t.s->conflict(id);
        CHECK(c->status == "resolved");
        CHECK(c->resolution.value("note", "") == "Đồng ý bản của đảng viên");
    }
}
