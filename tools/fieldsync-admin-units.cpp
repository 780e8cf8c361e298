// `fieldsync-admin unit add|list|move|import`: the organisation tree, one unit or a file of them.

#include "fieldsync-admin-units.hpp"

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace fieldsync::admin {

namespace {

namespace fs = fieldsync::server;

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

int cmd_unit_add(const std::string& db, const std::vector<std::string>& args) {
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
    return with_store(db, [&](fs::store& st) {
        auto put = st.put_unit(u);
        if (!put) return refused("cannot put unit '" + u.id + "'", put.err());
        std::cerr << "fieldsync-admin: unit " << put->id << " at " << put->path << "\n";
        return 0;
    });
}

int cmd_unit_move(const std::string& db, const std::vector<std::string>& args) {
    if (args.size() != 3 || args[1] != "--parent" || args[0].empty() || args[2].empty())
        return usage_error("unit move takes a unit id and --parent ID", k_unit_move_usage);
    return with_store(db, [&](fs::store& st) {
        auto list = st.units();
        std::optional<fs::unit> current;
        if (list)
            for (const auto& u : *list)
                if (u.id == args[0]) current = u;
        if (!current) return failed("no unit '" + args[0] + "' in the tree");
        current->parent = args[2];
        auto put = st.put_unit(*current);
        if (!put) return refused("cannot move unit '" + args[0] + "'", put.err());
        std::cerr << "fieldsync-admin: unit " << put->id << " now at " << put->path << "\n";
        return 0;
    });
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

// The units of the file at `path`, JSON or CSV (see k_unit_import_usage); 0, or the exit code
// of a file that cannot be read or is not a list of units.
int read_units(const std::string& path, std::vector<fs::unit>& rows) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return failed("cannot read '" + path + "'");
    std::stringstream text;
    text << in.rdbuf();
    const std::string body = text.str();
    const auto first = body.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
    if (first != std::string::npos && body[first] == '[') {
        auto doc = fieldsync::protocol::parse_json(body, fieldsync::protocol::tuning::max_json_depth);
        if (!doc || !doc->is_array())
            return usage_error("'" + path + "' is not a JSON array: " + (doc ? "" : doc.err().message),
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
    return 0;
}

// Checks `rows` against the tree, then writes them, parents before children.
int import_units(fs::store& st, const std::vector<fs::unit>& rows) {
    auto existing = st.units();
    if (!existing) return failed("cannot read the tree: " + existing.err().message);
    // Check everything first: ids once each, every parent in the file or the tree, then
    // write parents before children so each put finds its parent.
    std::set<std::string> known, seen;
    for (const auto& u : *existing) known.insert(u.id);
    for (const auto& u : rows) {
        if (u.id.empty() || u.name.empty() || u.kind.empty())
            return usage_error("every unit needs id, name and kind (unit '" + u.id + "')", k_unit_import_usage);
        if (!seen.insert(u.id).second) return usage_error("unit '" + u.id + "' appears twice", k_unit_import_usage);
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
        for (const auto& u : rows)
            if (!placed.count(u.id))
                return usage_error("unit '" + u.id + "' has parent '" + u.parent +
                                       "', which is neither in the file nor in the tree (or the file has a cycle)",
                                   k_unit_import_usage);
    }
    for (const auto& u : order) {
        auto put = st.put_unit(u);
        if (!put) return refused("cannot put unit '" + u.id + "'", put.err());
    }
    std::cerr << "fieldsync-admin: " << order.size() << " units imported\n";
    return 0;
}

int cmd_unit_import(const std::string& db, const std::vector<std::string>& args) {
    if (args.size() != 1) return usage_error("unit import takes one file", k_unit_import_usage);
    std::vector<fs::unit> rows;
    if (const int code = read_units(args[0], rows); code != 0) return code;
    return with_store(db, [&](fs::store& st) { return import_units(st, rows); });
}

int cmd_unit_list(const std::string& db, const std::vector<std::string>& args) {
    if (!args.empty()) return usage_error("unit list takes no arguments", k_unit_list_usage);
    return with_store(db, [&](fs::store& st) {
        auto list = st.units();
        if (!list) return failed("cannot list units: " + list.err().message);
        std::vector<std::vector<std::string>> rows{{"ID", "KIND", "NAME", "PATH"}};
        for (const auto& u : *list) rows.push_back({u.id, u.kind, u.name, u.path});
        print_table(rows);
        return 0;
    });
}

}  // namespace

const verb_group& unit_commands() {
    static const verb_group group{"unit",
                                  "add, list, move or import",
                                  k_unit_usage,
                                  {{"add", k_unit_add_usage, cmd_unit_add},
                                   {"list", k_unit_list_usage, cmd_unit_list},
                                   {"move", k_unit_move_usage, cmd_unit_move},
                                   {"import", k_unit_import_usage, cmd_unit_import}}};
    return group;
}

}  // namespace fieldsync::admin
