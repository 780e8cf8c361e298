#include "fieldsync-admin-common.hpp"

#include <fieldsync/protocol/display_width.hpp>
#include <fieldsync/protocol/nfd.hpp>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace fieldsync::admin {

int usage_error(const std::string& message, const char* usage) {
    std::cerr << "fieldsync-admin: " << message << "\n" << usage;
    return k_exit_usage;
}

bool wants_help(const std::vector<std::string>& args) {
    return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

namespace {
bool g_allow_new_store = false;
}

std::string default_db() {
    const char* env = std::getenv("FIELDSYNC_DB");
    return env && *env ? env : "data/fieldsync.db";
}

void allow_new_store(bool allow) { g_allow_new_store = allow; }

bool store_may_open(const std::string& path) {
    std::error_code ec;
    if (g_allow_new_store || std::filesystem::exists(path, ec)) return true;
    std::cerr << "fieldsync-admin: no store at '" << path << "'; make one with: fieldsync-admin --db " << path
              << " init\n";
    return false;
}

std::optional<std::unique_ptr<server::store>> open_store(const std::string& path) {
    // "postgres:CONNINFO" (--store postgres:...): the store in a PostgreSQL database.
    const bool postgres = path.rfind("postgres:", 0) == 0;
    if (!postgres && !store_may_open(path)) return std::nullopt;
    server::store_options o;
    o.path = postgres ? path.substr(9) : path;
    o.read_connections = 1;
    auto st = postgres ? server::open_postgres_store(o) : server::open_sqlite_store(o);
    if (!st) {
        std::cerr << "fieldsync-admin: cannot open the store '" << path << "': " << st.err().message << "\n";
        return std::nullopt;
    }
    return std::move(*st);
}

int with_store(const std::string& db, const std::function<int(server::store&)>& body) {
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    const int code = body(**st);
    (*st)->close();
    return code;
}

std::optional<server::device> find_device(server::store& st, const std::string& ref) {
    auto all = st.devices();
    if (!all) {
        failed("cannot read the devices: " + all.err().message);
        return std::nullopt;
    }
    for (const auto& d : *all)
        if (d.id == ref) return d;
    std::vector<const server::device*> hits;
    const auto name = protocol::to_nfd(ref);
    for (const auto& d : *all)
        if (!ref.empty() && protocol::to_nfd(d.name) == name) hits.push_back(&d);
    if (hits.empty() && ref.size() >= k_min_id_prefix)
        for (const auto& d : *all)
            if (d.id.starts_with(ref)) hits.push_back(&d);
    if (hits.size() == 1) return *hits[0];
    if (hits.empty()) {
        std::cerr << "fieldsync-admin: no device '" << ref << "' (give its id, a unique prefix of " << k_min_id_prefix
                  << " characters or more, or its name; 'device list' shows them)\n";
        return std::nullopt;
    }
    std::cerr << "fieldsync-admin: '" << ref << "' names " << hits.size() << " devices; give one of their ids:\n";
    for (const auto* d : hits)
        std::cerr << "  " << d->id << "  " << d->name << "  (unit " << d->unit_id << ", " << server::role_name(d->role)
                  << (d->revoked_ms ? ", revoked" : "") << ")\n";
    return std::nullopt;
}

int failed(const std::string& message) {
    std::cerr << "fieldsync-admin: " << message << "\n";
    return k_exit_failure;
}

int refused(const std::string& what, const protocol::error& e) {
    std::cerr << "fieldsync-admin: " << what << ": " << e.message << "\n";
    return e.code == protocol::errc::bad_request ? k_exit_usage : k_exit_failure;
}

int run_verb(const verb& v, const std::string& db, const std::vector<std::string>& args, const char* tool_usage) {
    if (wants_help(args)) {
        std::cout << v.usage;
        return 0;
    }
    if (v.needs_db && db.empty()) return usage_error("--db PATH is required", tool_usage);
    return v.run(db, args);
}

int run_group(const verb_group& g, const std::string& db, const std::vector<std::string>& args,
              const char* tool_usage) {
    const std::string group = g.name;
    if (args.empty()) return usage_error(group + " needs a subcommand: " + g.choices, g.usage);
    if (args[0] == "--help" || args[0] == "-h") {
        std::cout << g.usage;
        return 0;
    }
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    for (const auto& v : g.verbs)
        if (args[0] == v.name) return run_verb(v, db, rest, tool_usage);
    return usage_error("unknown " + group + " subcommand '" + args[0] + "'", g.usage);
}

std::string format_ms(std::int64_t ms) {
    if (ms <= 0) return "";
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::ostringstream out;
    out << std::put_time(&tm, "%Y-%m-%d %H:%M:%SZ");
    return out.str();
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> w;
    for (const auto& r : rows) {
        w.resize(std::max(w.size(), r.size()), 0);
        for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], protocol::display_width(r[i]));
    }
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) line += i + 1 < r.size() ? protocol::pad_to_width(r[i], w[i] + 2) : r[i];
        std::cout << line << "\n";
    }
}

}  // namespace fieldsync::admin
