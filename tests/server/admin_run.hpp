#pragma once
// fieldsync-admin run as a program by the tests of tests/server: its exit code and what it
// printed.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace fieldsync::test {

/// `s` in single quotes for sh.
inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

struct admin_run {
    int exit = -1;
    std::string out;
};

/// `fieldsync-admin --db DB ARGS...` with stdin from /dev/null (not a terminal) and
/// FIELDSYNC_PUBLIC_URL unset. `out` is its stdout, and its stderr too unless `stderr_file`
/// names where that goes.
inline admin_run run_admin(const std::string& db, const std::vector<std::string>& args,
                           const std::string& stderr_file = "") {
    const std::string bin = std::string(FIELDSYNC_BINARY_DIR) + "/tools/fieldsync-admin";
    REQUIRE(access(bin.c_str(), X_OK) == 0);
    std::string cmd = "env -u FIELDSYNC_PUBLIC_URL " + shell_quote(bin) + " --db " + shell_quote(db);
    for (const auto& a : args) cmd += " " + shell_quote(a);
    cmd += " </dev/null 2>" + (stderr_file.empty() ? std::string("&1") : shell_quote(stderr_file));
    admin_run r;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf{};
    while (const auto n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
    const int status = pclose(p);
    r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace fieldsync::test
