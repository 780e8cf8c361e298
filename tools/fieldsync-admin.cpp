// fieldsync-admin: administers a central store directly through its SQLite file. It may run
// while the server serves the same file: the store uses WAL and a busy timeout, so the admin
// tool's short transactions wait for the server's writer instead of failing.

#include "fieldsync-admin-common.hpp"
#include "fieldsync-admin-conflicts.hpp"
#include "fieldsync-admin-reports.hpp"

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/tuning.hpp>
#include <fieldsync/server/store.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = fieldsync::server;

using fieldsync::admin::format_ms;
using fieldsync::admin::k_exit_failure;
using fieldsync::admin::k_exit_usage;
using fieldsync::admin::open_store;
using fieldsync::admin::print_table;
using fieldsync::admin::usage_error;
using fieldsync::admin::wants_help;

constexpr const char* k_usage =
    "usage: fieldsync-admin --db PATH COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  init                                        create the store with the default schema\n"
    "  device add --name NAME --unit UNIT [--role field|reviewer|admin]\n"
    "                                              register a device; prints only its token\n"
    "  device list                                 list the registered devices\n"
    "  device revoke ID                            the device's token stops working\n"
    "  device rotate ID                            a new token for the device; prints only it\n"
    "  device move ID --unit UNIT                  bind the device to another unit\n"
    "  unit add --id ID --name NAME --kind KIND [--parent ID]\n"
    "                                              add a unit to the tree, or change it\n"
    "  unit list                                   list the organisation tree\n"
    "  unit move ID --parent ID                    move a unit and its subtree under another unit\n"
    "  unit import FILE                            add or change many units (JSON or CSV)\n"
    "  conflicts list|show|resolve [ARGS]          review conflicts (see 'conflicts --help')\n"
    "  gc [--dry-run] [--window-days N]            purge tombstones and notices no active device needs\n"
    "  demo --district NAME [--seed N]             load the district's demo data set into an empty store\n"
    "  report NAME [--unit U] [--format table|csv|json]\n"
    "                                              the district's figures (see 'report --help')\n"
    "  backup PATH                                 copy the store to PATH while the server serves\n"
    "  restore BACKUP                              replace the store with BACKUP (server stopped)\n"
    "\n"
    "'fieldsync-admin COMMAND --help' describes a command.\n";

constexpr const char* k_init_usage =
    "usage: fieldsync-admin --db PATH init\n"
    "Creates the SQLite store at PATH with the default schema (or migrates an existing one).\n";

constexpr const char* k_device_add_usage =
    "usage: fieldsync-admin --db PATH device add --name NAME --unit UNIT [--role field|reviewer|admin]\n"
    "Registers a device of unit UNIT and prints its bearer token, and nothing else, on stdout.\n"
    "The token is shown once: the store keeps only its hash. Default role: field.\n";

constexpr const char* k_device_list_usage =
    "usage: fieldsync-admin --db PATH device list\n"
    "Lists the registered devices: id, name, unit, role, created, revoked, and the last pull the\n"
    "server recorded (what gc counts as active; '-' before the first).\n";

constexpr const char* k_device_usage =
    "usage: fieldsync-admin --db PATH device add|list|revoke|rotate|move [ARGS]\n"
    "  device add --name NAME --unit UNIT [--role field|reviewer|admin]\n"
    "  device list\n"
    "  device revoke ID\n"
    "  device rotate ID\n"
    "  device move ID --unit UNIT\n";

constexpr const char* k_device_revoke_usage =
    "usage: fieldsync-admin --db PATH device revoke ID\n"
    "Revokes a device: its token is refused from its next request on. Works while the server runs.\n";

constexpr const char* k_device_rotate_usage =
    "usage: fieldsync-admin --db PATH device rotate ID\n"
    "Gives a device a new token and prints it, and nothing else, on stdout; the old token stops working.\n";

constexpr const char* k_device_move_usage =
    "usage: fieldsync-admin --db PATH device move ID --unit UNIT\n"
    "Binds a device to another unit. Its next pull starts over in the new unit's subtree.\n";

constexpr const char* k_unit_usage =
    "usage: fieldsync-admin --db PATH unit add|list|move|import [ARGS]\n"
    "  unit add --id ID --name NAME --kind district|commune|cell|office [--parent ID]\n"
    "  unit list\n"
    "  unit move ID --parent ID\n"
    "  unit import FILE\n";

constexpr const char* k_unit_move_usage =
    "usage: fieldsync-admin --db PATH unit move ID --parent ID\n"
    "Moves a unit and its whole subtree under another unit. Devices and records follow: devices\n"
    "that no longer see them are told to drop them on their next pull.\n";

constexpr const char* k_unit_import_usage =
    "usage: fieldsync-admin --db PATH unit import FILE\n"
    "Adds or changes the units of FILE: a JSON array of {\"id\", \"parent\", \"name\", \"kind\"}, or\n"
    "CSV (UTF-8) whose first line names the columns id, parent, name, kind. Parents may come\n"
    "after their children in the file. Every row is checked before any is written; each unit\n"
    "is then written in its own transaction.\n";

constexpr const char* k_unit_add_usage =
    "usage: fieldsync-admin --db PATH unit add --id ID --name NAME --kind district|commune|cell|office [--parent ID]\n"
    "Adds a unit to the organisation tree, or changes the name, kind or parent of an existing one\n"
    "(a new parent moves the unit's whole subtree; devices and records follow).\n";

constexpr const char* k_unit_list_usage =
    "usage: fieldsync-admin --db PATH unit list\n"
    "Lists the units: id, kind, name, path.\n";

constexpr const char* k_gc_usage =
    "usage: fieldsync-admin --db PATH gc [--dry-run] [--window-days N]\n"
    "Purges what only served devices' catch-up and no active device needs: tombstones (deleted\n"
    "records) and drop notices at or below the purge horizon, and remembered answers older than\n"
    "the window that their device can no longer resend. History is kept whole. A device is active\n"
    "if it synced within the window (default 90 days) and is not revoked; a device away longer\n"
    "re-snapshots on its next sync, after pushing its pending edits. Safe while the server runs.\n"
    "  --dry-run          count what would be purged; change nothing\n"
    "  --window-days N    the retention window in days, 1 to 36500 (default 90)\n";
constexpr const char* k_backup_usage =
    "usage: fieldsync-admin --db STORE backup PATH\n"
    "Copies the store to PATH (which must not exist) with SQLite's online backup. The server may\n"
    "keep serving: the copy is one consistent snapshot. It is written beside PATH, checked with\n"
    "PRAGMA integrity_check, synced and renamed, so PATH is either a whole, sound store or absent.\n";

constexpr const char* k_restore_usage =
    "usage: fieldsync-admin --db STORE restore BACKUP   (or: restore BACKUP --db STORE)\n"
    "Replaces STORE with a checked copy of BACKUP. Stop the server first. The restored store gets\n"
    "a new incarnation: replicas notice it on their next sync and send again what they sent\n"
    "since the backup (up to 7 days back), so their edits are not lost. The replaced store is\n"
    "kept beside it as STORE.replaced-<ms>.\n";

int cmd_init(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_init_usage;
        return 0;
    }
    if (!args.empty()) return usage_error("init takes no arguments", k_init_usage);
    // The store's folder is made too: `init --db data/fieldsync.db` works on a fresh clone.
    if (const auto parent = std::filesystem::path(db).parent_path(); !parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) {
            std::cerr << "fieldsync-admin: cannot create " << parent.string() << ": " << ec.message() << "\n";
            return k_exit_failure;
        }
    }
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    (*st)->close();
    std::cerr << "fieldsync-admin: store ready at " << db << "\n";
    return 0;
}

int cmd_device_add(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_device_add_usage;
        return 0;
    }
    std::string name, unit;
    fs::device_role role = fs::device_role::field;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (i + 1 >= args.size()) return usage_error("'" + a + "' needs a value", k_device_add_usage);
        const auto& v = args[++i];
        if (a == "--name")
            name = v;
        else if (a == "--unit")
            unit = v;
        else if (a == "--role") {
            const auto r = fs::parse_role(v);
            if (!r) return usage_error("--role must be field, reviewer or admin", k_device_add_usage);
            role = *r;
        } else
            return usage_error("unknown argument '" + a + "'", k_device_add_usage);
    }
    if (name.empty()) return usage_error("--name is required", k_device_add_usage);
    if (unit.empty()) return usage_error("--unit is required", k_device_add_usage);

    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto added = (*st)->add_device(name, unit, role);
    (*st)->close();
    if (!added) {
        std::cerr << "fieldsync-admin: cannot add the device: " << added.err().message << "\n";
        return k_exit_failure;
    }
    std::cerr << "fieldsync-admin: device " << added->first.id << " (" << name << ", unit " << unit << ", "
              << fs::role_name(role) << ") added; its token follows, shown only this once\n";
    std::cout << added->second << std::endl;
    return 0;
}

int cmd_device_list(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_device_list_usage;
        return 0;
    }
    if (!args.empty()) return usage_error("device list takes no arguments", k_device_list_usage);
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto list = (*st)->devices();
    (*st)->close();
    if (!list) {
        std::cerr << "fieldsync-admin: cannot list devices: " << list.err().message << "\n";
        return k_exit_failure;
    }
    std::vector<std::vector<std::string>> rows{{"ID", "NAME", "UNIT", "ROLE", "CREATED", "REVOKED", "LAST SYNC"}};
    for (const auto& d : *list)
        rows.push_back({d.id, d.name, d.unit_id, std::string(fs::role_name(d.role)), format_ms(d.created_ms),
                        d.revoked_ms ? format_ms(*d.revoked_ms) : "-", d.ack ? format_ms(d.ack->at_ms) : "-"});
    print_table(rows);
    return 0;
}


// "ID" alone, or "ID --unit UNIT" for move: the positional id and the options after it.
struct id_args {
    std::string id;
    std::vector<std::string> rest;
};

std::optional<id_args> take_id(const std::vector<std::string>& args) {
    if (args.empty() || args[0].rfind("--", 0) == 0) return std::nullopt;
    return id_args{args[0], std::vector<std::string>(args.begin() + 1, args.end())};
}

int cmd_device_revoke(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_device_revoke_usage;
        return 0;
    }
    const auto a = take_id(args);
    if (!a || !a->rest.empty()) return usage_error("device revoke takes one device id", k_device_revoke_usage);
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    const auto done = (*st)->revoke_device(a->id);
    (*st)->close();
    if (!done) {
        std::cerr << "fieldsync-admin: cannot revoke '" << a->id << "': " << done.err().message << "\n";
        return k_exit_failure;
    }
    std::cerr << "fieldsync-admin: device " << a->id << " revoked\n";
    return 0;
}

int cmd_device_rotate(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_device_rotate_usage;
        return 0;
    }
    const auto a = take_id(args);
    if (!a || !a->rest.empty()) return usage_error("device rotate takes one device id", k_device_rotate_usage);
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto token = (*st)->rotate_device(a->id);
    (*st)->close();
    if (!token) {
        std::cerr << "fieldsync-admin: cannot rotate the token of '" << a->id << "': " << token.err().message << "\n";
        return k_exit_failure;
    }
    std::cerr << "fieldsync-admin: device " << a->id << " has a new token; it follows, shown only this once\n";
    std::cout << *token << std::endl;
    return 0;
}

int cmd_device_move(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_device_move_usage;
        return 0;
    }
    const auto a = take_id(args);
    if (!a || a->rest.size() != 2 || a->rest[0] != "--unit" || a->rest[1].empty())
        return usage_error("device move takes a device id and --unit UNIT", k_device_move_usage);
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    const auto done = (*st)->move_device(a->id, a->rest[1]);
    (*st)->close();
    if (!done) {
        std::cerr << "fieldsync-admin: cannot move '" << a->id << "': " << done.err().message << "\n";
        return k_exit_failure;
    }
    std::cerr << "fieldsync-admin: device " << a->id << " now belongs to unit " << a->rest[1] << "\n";
    return 0;
}

int cmd_unit_add(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_unit_add_usage;
        return 0;
    }
    fs::unit u;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (i + 1 >= args.size()) return usage_error("'" + a + "' needs a value", k_unit_add_usage);
        const auto& v = args[++i];
        if (a == "--id")
            u.id = v;
        else if (a == "--name")
            u.name = v;
        else if (a == "--kind")
            u.kind = v;
        else if (a == "--parent")
            u.parent = v;
        else
            return usage_error("unknown argument '" + a + "'", k_unit_add_usage);
    }
    if (u.id.empty() || u.name.empty() || u.kind.empty())
        return usage_error("--id, --name and --kind are required", k_unit_add_usage);
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto put = (*st)->put_unit(u);
    (*st)->close();
    if (!put) {
        std::cerr << "fieldsync-admin: cannot put unit '" << u.id << "': " << put.err().message << "\n";
        return put.err().code == fieldsync::protocol::errc::bad_request ? k_exit_usage : k_exit_failure;
    }
    std::cerr << "fieldsync-admin: unit " << put->id << " at " << put->path << "\n";
    return 0;
}

int cmd_unit_move(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_unit_move_usage;
        return 0;
    }
    if (args.size() != 3 || args[1] != "--parent" || args[0].empty() || args[2].empty())
        return usage_error("unit move takes a unit id and --parent ID", k_unit_move_usage);
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto list = (*st)->units();
    std::optional<fs::unit> current;
    if (list)
        for (const auto& u : *list)
            if (u.id == args[0]) current = u;
    if (!current) {
        (*st)->close();
        std::cerr << "fieldsync-admin: no unit '" << args[0] << "' in the tree\n";
        return k_exit_failure;
    }
    current->parent = args[2];
    auto put = (*st)->put_unit(*current);
    (*st)->close();
    if (!put) {
        std::cerr << "fieldsync-admin: cannot move unit '" << args[0] << "': " << put.err().message << "\n";
        return put.err().code == fieldsync::protocol::errc::bad_request ? k_exit_usage : k_exit_failure;
    }
    std::cerr << "fieldsync-admin: unit " << put->id << " now at " << put->path << "\n";
    return 0;
}

// One CSV record (RFC 4180: quoted fields, "" for a quote inside one) from `in`; false at EOF.
bool read_csv_row(std::istream& in, std::vector<std::string>& row) {
    row.clear();
    std::string field;
    bool quoted = false, any = false;
    for (int ch; (ch = in.get()) != EOF;) {
        any = true;
        const char c = static_cast<char>(ch);
        if (quoted) {
            if (c == '"') {
                if (in.peek() == '"') {
                    field += '"';
                    in.get();
                } else {
                    quoted = false;
                }
            } else {
                field += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            row.push_back(std::move(field));
            field.clear();
        } else if (c == '\n') {
            break;
        } else if (c != '\r') {
            field += c;
        }
    }
    if (!any) return false;
    row.push_back(std::move(field));
    return true;
}

int cmd_unit_import(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_unit_import_usage;
        return 0;
    }
    if (args.size() != 1) return usage_error("unit import takes one file", k_unit_import_usage);
    std::ifstream in(args[0], std::ios::binary);
    if (!in) {
        std::cerr << "fieldsync-admin: cannot read '" << args[0] << "'\n";
        return k_exit_failure;
    }
    std::stringstream text;
    text << in.rdbuf();
    const std::string body = text.str();
    std::vector<fs::unit> rows;
    const auto first = body.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
    if (first != std::string::npos && body[first] == '[') {
        auto doc = fieldsync::protocol::parse_json(body, fieldsync::protocol::tuning::max_json_depth);
        if (!doc || !doc->is_array())
            return usage_error("'" + args[0] + "' is not a JSON array: " + (doc ? "" : doc.err().message),
                               k_unit_import_usage);
        for (const auto& x : *doc) {
            if (!x.is_object()) return usage_error("every unit must be a JSON object", k_unit_import_usage);
            auto get = [&](const char* k) { return x.contains(k) && x[k].is_string() ? x[k].get<std::string>() : ""; };
            rows.push_back({get("id"), get("parent"), get("name"), get("kind"), ""});
        }
    } else {
        if (!fieldsync::protocol::is_valid_utf8(body)) return usage_error("the CSV is not UTF-8", k_unit_import_usage);
        std::istringstream csv(body.compare(0, 3, "\xEF\xBB\xBF") == 0 ? body.substr(3) : body);
        std::vector<std::string> header, row;
        if (!read_csv_row(csv, header)) return usage_error("the CSV is empty", k_unit_import_usage);
        std::map<std::string, std::size_t> col;
        for (std::size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
        for (const char* k : {"id", "parent", "name", "kind"})
            if (!col.count(k)) return usage_error(std::string("the CSV has no column '") + k + "'", k_unit_import_usage);
        for (std::size_t line = 2; read_csv_row(csv, row); ++line) {
            if (row.size() == 1 && row[0].empty()) continue;  // a blank line
            if (row.size() != header.size())
                return usage_error("line " + std::to_string(line) + " has " + std::to_string(row.size()) +
                                       " fields, the header " + std::to_string(header.size()),
                                   k_unit_import_usage);
            rows.push_back({row[col["id"]], row[col["parent"]], row[col["name"]], row[col["kind"]], ""});
        }
    }

    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto existing = (*st)->units();
    if (!existing) {
        (*st)->close();
        std::cerr << "fieldsync-admin: cannot read the tree: " << existing.err().message << "\n";
        return k_exit_failure;
    }
    // Check everything first: ids once each, every parent in the file or the tree, then
    // write parents before children so each put finds its parent.
    std::set<std::string> known, seen;
    for (const auto& u : *existing) known.insert(u.id);
    for (const auto& u : rows) {
        if (u.id.empty() || u.name.empty() || u.kind.empty()) {
            (*st)->close();
            return usage_error("every unit needs id, name and kind (unit '" + u.id + "')", k_unit_import_usage);
        }
        if (!seen.insert(u.id).second) {
            (*st)->close();
            return usage_error("unit '" + u.id + "' appears twice", k_unit_import_usage);
        }
    }
    std::vector<fs::unit> order;
    std::set<std::string> placed;
    for (bool progress = true; progress && order.size() < rows.size();) {
        progress = false;
        for (const auto& u : rows) {
            if (placed.count(u.id)) continue;
            const bool parent_ready =
                u.parent.empty() || placed.count(u.parent) || (known.count(u.parent) && !seen.count(u.parent));
            if (!parent_ready) continue;
            order.push_back(u);
            placed.insert(u.id);
            progress = true;
        }
    }
    if (order.size() < rows.size()) {
        (*st)->close();
        for (const auto& u : rows)
            if (!placed.count(u.id))
                return usage_error("unit '" + u.id + "' has parent '" + u.parent +
                                       "', which is neither in the file nor in the tree (or the file has a cycle)",
                                   k_unit_import_usage);
    }
    for (const auto& u : order) {
        auto put = (*st)->put_unit(u);
        if (!put) {
            (*st)->close();
            std::cerr << "fieldsync-admin: cannot put unit '" << u.id << "': " << put.err().message << "\n";
            return put.err().code == fieldsync::protocol::errc::bad_request ? k_exit_usage : k_exit_failure;
        }
    }
    (*st)->close();
    std::cerr << "fieldsync-admin: " << order.size() << " units imported\n";
    return 0;
}

int cmd_unit_list(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_unit_list_usage;
        return 0;
    }
    if (!args.empty()) return usage_error("unit list takes no arguments", k_unit_list_usage);
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto list = (*st)->units();
    (*st)->close();
    if (!list) {
        std::cerr << "fieldsync-admin: cannot list units: " << list.err().message << "\n";
        return k_exit_failure;
    }
    std::vector<std::vector<std::string>> rows{{"ID", "KIND", "NAME", "PATH"}};
    for (const auto& u : *list) rows.push_back({u.id, u.kind, u.name, u.path});
    print_table(rows);
    return 0;
}

int cmd_gc(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_gc_usage;
        return 0;
    }
    fs::gc_options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--dry-run") {
            o.dry_run = true;
        } else if (a == "--window-days") {
            if (i + 1 >= args.size()) return usage_error("--window-days needs a number of days", k_gc_usage);
            const auto& v = args[++i];
            const bool digits = !v.empty() && v.size() <= 5 && std::all_of(v.begin(), v.end(), [](char c) {
                return c >= '0' && c <= '9';
            });
            const long days = digits ? std::stol(v) : 0;
            if (days < 1 || days > 36500)
                return usage_error("--window-days must be a whole number of days from 1 to 36500, not '" + v + "'",
                                   k_gc_usage);
            o.window_ms = days * 24 * 3600 * 1000;
        } else {
            return usage_error("unknown argument '" + a + "'", k_gc_usage);
        }
    }
    auto st = open_store(db);
    if (!st) return k_exit_failure;
    auto r = (*st)->gc(o);
    (*st)->close();
    if (!r) {
        std::cerr << "fieldsync-admin: gc failed: " << r.err().message << "\n";
        return k_exit_failure;
    }
    const char* verb = r->dry_run ? "would purge" : "purged";
    std::cout << (r->dry_run ? "dry run: nothing changed\n" : "")
              << "feed seq:          " << r->feed_seq << "\n"
              << "purge horizon:     " << r->horizon << " (was " << r->previous_horizon << ")\n"
              << "active devices:    " << r->active_devices << " (inactive: " << r->inactive_devices << ")\n";
    if (!r->held_back_by.empty()) std::cout << "held back by:      device " << r->held_back_by << "\n";
    std::cout << verb << ":\n"
              << "  tombstones:      " << r->tombstones << "\n"
              << "  drop notices:    " << r->drops << "\n"
              << "  decided answers: " << r->decided << "\n";
    return 0;
}

int cmd_backup(const std::string& db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_backup_usage;
        return 0;
    }
    if (args.size() != 1 || args[0].empty()) return usage_error("backup takes one path", k_backup_usage);
    const auto r = fs::backup_sqlite_store(db, args[0]);
    if (!r) {
        std::cerr << "fieldsync-admin: backup failed: " << r.err().message << "\n";
        return r.err().code == fieldsync::protocol::errc::bad_request ? k_exit_usage : k_exit_failure;
    }
    std::cerr << "fieldsync-admin: backup " << args[0] << ": " << r->bytes << " bytes, feed seq " << r->seq
              << ", newest change " << (r->newest_change_ms ? format_ms(r->newest_change_ms) : "none")
              << ", incarnation " << r->incarnation << ", integrity ok\n";
    return 0;
}

int cmd_restore(std::string db, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << k_restore_usage;
        return 0;
    }
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--db") {
            if (i + 1 >= args.size()) return usage_error("--db needs a path", k_restore_usage);
            db = args[++i];
        } else {
            rest.push_back(args[i]);
        }
    }
    if (db.empty()) return usage_error("--db STORE is required", k_restore_usage);
    if (rest.size() != 1 || rest[0].empty()) return usage_error("restore takes one backup file", k_restore_usage);
    std::string replaced;
    const auto r = fs::restore_sqlite_store(rest[0], db, &replaced);
    if (!r) {
        std::cerr << "fieldsync-admin: restore failed: " << r.err().message << "\n";
        return r.err().code == fieldsync::protocol::errc::bad_request ? k_exit_usage : k_exit_failure;
    }
    std::cerr << "fieldsync-admin: restored " << rest[0] << " into " << db << ": feed seq " << r->seq
              << ", newest change " << (r->newest_change_ms ? format_ms(r->newest_change_ms) : "none")
              << ", new incarnation " << r->incarnation << "\n";
    if (!replaced.empty()) std::cerr << "fieldsync-admin: the replaced store is kept as " << replaced << "\n";
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    constexpr std::int64_t k_week_ms = 7LL * 24 * 3600 * 1000;
    if (r->newest_change_ms > 0 && now - r->newest_change_ms > k_week_ms)
        std::cerr << "fieldsync-admin: warning: the backup's newest change is more than 7 days old; replicas send "
                     "again only what the server answered them in the last 7 days\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string db;
    std::size_t i = 0;
    // Global options come before the command.
    while (i < args.size() && args[i].rfind("--", 0) == 0) {
        if (args[i] == "--help" || args[i] == "-h") {
            std::cout << k_usage;
            return 0;
        }
        if (args[i] == "--db") {
            if (i + 1 >= args.size()) return usage_error("--db needs a path", k_usage);
            db = args[i + 1];
            i += 2;
        } else {
            return usage_error("unknown option '" + args[i] + "'", k_usage);
        }
    }
    if (i >= args.size()) return usage_error("no command given", k_usage);
    const std::string cmd = args[i++];
    std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());

    auto need_db = [&]() { return db.empty(); };
    if (cmd == "init") {
        if (wants_help(rest)) return cmd_init(db, rest);
        if (need_db()) return usage_error("--db PATH is required", k_usage);
        return cmd_init(db, rest);
    }
    if (cmd == "device") {
        if (rest.empty()) return usage_error("device needs a subcommand: add, list, revoke, rotate or move", k_device_usage);
        if (rest[0] == "--help" || rest[0] == "-h") {
            std::cout << k_device_usage;
            return 0;
        }
        const std::string sub = rest[0];
        std::vector<std::string> sub_args(rest.begin() + 1, rest.end());
        int (*run)(const std::string&, const std::vector<std::string>&) = nullptr;
        if (sub == "add") run = cmd_device_add;
        else if (sub == "list") run = cmd_device_list;
        else if (sub == "revoke") run = cmd_device_revoke;
        else if (sub == "rotate") run = cmd_device_rotate;
        else if (sub == "move") run = cmd_device_move;
        else return usage_error("unknown device subcommand '" + sub + "'", k_device_usage);
        if (!wants_help(sub_args) && need_db()) return usage_error("--db PATH is required", k_usage);
        return run(db, sub_args);
    }
    if (cmd == "unit") {
        if (rest.empty()) return usage_error("unit needs a subcommand: add, list, move or import", k_unit_usage);
        if (rest[0] == "--help" || rest[0] == "-h") {
            std::cout << k_unit_usage;
            return 0;
        }
        const std::string sub = rest[0];
        std::vector<std::string> sub_args(rest.begin() + 1, rest.end());
        int (*run)(const std::string&, const std::vector<std::string>&) = nullptr;
        if (sub == "add") run = cmd_unit_add;
        else if (sub == "list") run = cmd_unit_list;
        else if (sub == "move") run = cmd_unit_move;
        else if (sub == "import") run = cmd_unit_import;
        else return usage_error("unknown unit subcommand '" + sub + "'", k_unit_usage);
        if (!wants_help(sub_args) && need_db()) return usage_error("--db PATH is required", k_usage);
        return run(db, sub_args);
    }
    if (cmd == "conflicts") return fieldsync::admin::run_conflicts(db, rest);
    if (cmd == "gc") {
        if (wants_help(rest)) return cmd_gc(db, rest);
        if (need_db()) return usage_error("--db PATH is required", k_usage);
        return cmd_gc(db, rest);
    }
    if (cmd == "demo") return fieldsync::admin::run_demo(db, rest);
    if (cmd == "report") return fieldsync::admin::run_report(db, rest);
    if (cmd == "backup") {
        if (!wants_help(rest) && need_db()) return usage_error("--db PATH is required", k_usage);
        return cmd_backup(db, rest);
    }
    if (cmd == "restore") return cmd_restore(db, rest);
    return usage_error("unknown command '" + cmd + "'", k_usage);
}
