#include "fieldsync-admin-conflicts.hpp"
#include "fieldsync-admin-common.hpp"

#include <fieldsync/protocol/display_width.hpp>
#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/server/store.hpp>

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace fieldsync::admin {

namespace srv = fieldsync::server;
namespace proto = fieldsync::protocol;
using proto::json;

const char* const k_conflicts_usage =
    "usage: fieldsync-admin --db PATH conflicts list [--status open|resolved|dismissed|any] [--collection C]\n"
    "                                                [--unit UNIT] [--device ID] [--limit N] [--offset N]\n"
    "       fieldsync-admin --db PATH conflicts show ID\n"
    "       fieldsync-admin --db PATH conflicts resolve ID --as DEVICE_ID\n"
    "                     [--keep-head | --take-incoming | --pick /FIELD=head|incoming ... | --edit FILE.json |\n"
    "                      --edit-delete | --dismiss] [--note TEXT] [--head-version N]\n"
    "\n"
    "list   the conflicts, newest first (open ones unless --status says otherwise)\n"
    "show   one conflict side by side, field by field (base | head | incoming); '*' marks the\n"
    "       colliding fields\n"
    "resolve  decides one conflict as the reviewer device --as (a reviewer or admin device; the\n"
    "       resolution is recorded as its decision and limited to its subtree). The choice decides\n"
    "       the colliding fields; the others merge. --head-version is the head the decision was made\n"
    "       against (default: the head shown now); if the record moved since, nothing is written\n"
    "       and the conflict is shown again (exit 3). Without a choice flag, on a terminal, it shows\n"
    "       the conflict and asks (and for a note, unless --note gives it); quitting or Ctrl-D at any\n"
    "       question records nothing. DEVICE_ID may be a device's id, a unique prefix of it or its name.\n";

namespace {

// Cells wrap at this many columns so three sides fit an 80-to-120 column terminal.
constexpr std::size_t k_cell_columns = 30;

int usage_error(const std::string& message) { return admin::usage_error(message, k_conflicts_usage); }

std::map<std::string, std::string> device_names(srv::store& st) {
    std::map<std::string, std::string> out;
    if (auto all = st.devices())
        for (const auto& d : *all) out.emplace(d.id, d.name);
    return out;
}

std::string who(const std::map<std::string, std::string>& names, const std::string& id) {
    const auto it = names.find(id);
    return it == names.end() || it->second.empty() ? id : it->second + " (" + id + ")";
}

// Rows of columns, each cell wrapped and padded by display width (so NFD and wide text line up).
void print_grid(const std::vector<std::vector<std::string>>& rows) {
    if (rows.empty()) return;
    std::vector<std::size_t> w(rows[0].size(), 0);
    std::vector<std::vector<std::vector<std::string>>> cells;
    for (const auto& r : rows) {
        auto& out = cells.emplace_back();
        for (std::size_t i = 0; i < r.size(); ++i) {
            out.push_back(proto::wrap_to_width(r[i], i == 0 ? 1000 : k_cell_columns));
            for (const auto& line : out.back()) w[i] = std::max(w[i], proto::display_width(line));
        }
    }
    for (const auto& row : cells) {
        std::size_t height = 0;
        for (const auto& c : row) height = std::max(height, c.size());
        for (std::size_t l = 0; l < height; ++l) {
            std::string line;
            for (std::size_t i = 0; i < row.size(); ++i) {
                const std::string text = l < row[i].size() ? row[i][l] : "";
                line += i + 1 < row.size() ? proto::pad_to_width(text, w[i]) + " | " : text;
            }
            while (!line.empty() && line.back() == ' ') line.pop_back();
            std::cout << line << "\n";
        }
    }
}

std::string show_value(const json& doc, bool deleted, const std::string& pointer) {
    if (deleted) return "(deleted)";
    if (!doc.is_object()) return "(absent)";
    const json::json_pointer p(pointer);
    if (!doc.contains(p)) return "(absent)";
    const auto& v = doc.at(p);
    return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string field_label(const std::string& pointer) { return pointer.empty() ? "(whole record)" : pointer.substr(1); }

void print_conflict(srv::store& st, const srv::conflict_view& c) {
    const auto names = device_names(st);
    std::map<std::int64_t, srv::history_entry> by_version;
    if (auto h = st.history(c.collection, c.record_id))
        for (auto& e : *h) by_version.emplace(e.version, e);
    auto version_line = [&](std::int64_t v) {
        const auto it = by_version.find(v);
        std::string s = "v" + std::to_string(v);
        if (it != by_version.end()) s += " by " + who(names, it->second.device_id) + " at " + format_ms(it->second.server_ms);
        return s;
    };
    std::vector<std::vector<std::string>> meta = {
        {"conflict", c.id + " (" + c.status + ")"},
        {"record", c.collection + " / " + c.record_id},
        {"unit", c.unit_id + ", routed to " + c.path},
        {"base", version_line(c.base_version)},
        {"head", version_line(c.head_version)},
        {"incoming", "by " + who(names, c.device_id) + " at " + format_ms(c.created_ms) + " (change " + c.change_id + ")"},
        {"current head", version_line(c.current_version) + (c.current_deleted ? " (deleted)" : "")},
    };
    if (c.status != "open") {
        std::string how = c.resolution.is_object() ? c.resolution.value("choice", "") : "";
        if (c.resolution.is_object() && c.resolution.contains("note")) how += ": " + c.resolution["note"].get<std::string>();
        meta.push_back({"closed", format_ms(c.closed_ms) + " by " + who(names, c.closed_by) + " (" + how + ")"});
    }
    print_table(meta);
    std::cout << "\n";

    const std::set<std::string> colliding(c.fields.begin(), c.fields.end());
    std::vector<std::string> pointers;
    std::set<std::string> keys;
    for (const auto* side : {&c.base, &c.head, &c.incoming})
        if (side->is_object())
            for (const auto& [k, v] : side->items()) keys.insert(k);
    // RFC 6901 escaping, so a key holding '/' or '~' is one field.
    for (const auto& k : keys) {
        std::string p = "/";
        for (const char ch : k) p += ch == '~' ? std::string("~0") : ch == '/' ? std::string("~1") : std::string(1, ch);
        pointers.push_back(p);
    }
    for (const auto& f : c.fields)
        if (!f.empty() && std::find(pointers.begin(), pointers.end(), f) == pointers.end()) pointers.push_back(f);

    std::vector<std::vector<std::string>> grid = {{"  field", "base", "head", "incoming"}};
    const bool whole = colliding.count("") > 0;
    for (const auto& p : pointers) {
        bool hit = whole || colliding.count(p) > 0;
        for (const auto& f : c.fields) hit = hit || f.rfind(p + "/", 0) == 0;
        grid.push_back({(hit ? "* " : "  ") + field_label(p), show_value(c.base, false, p),
                        show_value(c.head, c.head_deleted, p), show_value(c.incoming, c.incoming_deleted, p)});
    }
    print_grid(grid);
    std::cout << "\n* colliding: ";
    for (std::size_t i = 0; i < c.fields.size(); ++i) std::cout << (i ? ", " : "") << field_label(c.fields[i]);
    std::cout << "\n";
}

int cmd_list(const std::string& db, const std::vector<std::string>& args) {
    srv::conflict_filter f;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (i + 1 >= args.size()) return usage_error("'" + a + "' needs a value");
        const auto& v = args[++i];
        auto number = [&](std::int64_t& out) {
            const auto n = fieldsync::protocol::parse_integer(v, 0, INT64_MAX);
            if (n) out = *n;
            return n.has_value();
        };
        if (a == "--status") {
            if (v != "open" && v != "resolved" && v != "dismissed" && v != "any")
                return usage_error("--status must be open, resolved, dismissed or any");
            f.status = v == "any" ? "" : v;
        } else if (a == "--collection") f.collection = v;
        else if (a == "--unit") f.unit_id = v;
        else if (a == "--device") f.device_id = v;
        else if (a == "--limit") { if (!number(f.limit) || f.limit == 0) return usage_error("--limit must be a positive integer"); }
        else if (a == "--offset") { if (!number(f.offset)) return usage_error("--offset must be a non-negative integer"); }
        else return usage_error("unknown argument '" + a + "'");
    }
    return with_store(db, [&](srv::store& st) {
        auto list = st.conflicts(srv::scope{true, {}}, f);
        if (!list) return failed("cannot list conflicts: " + list.err().message);
        const auto names = device_names(st);
        std::vector<std::vector<std::string>> rows = {{"ID", "STATUS", "RECORD", "FIELDS", "INCOMING BY", "OPENED"}};
        for (const auto& c : *list) {
            std::string fields;
            for (const auto& p : c.fields) {
                if (!fields.empty()) fields += ',';
                fields += field_label(p);
            }
            const auto it = names.find(c.device_id);
            rows.push_back({c.id, c.status, c.collection + "/" + c.record_id, fields,
                            it != names.end() ? it->second : c.device_id, format_ms(c.created_ms)});
        }
        print_table(rows);
        return 0;
    });
}

int cmd_show(const std::string& db, const std::vector<std::string>& args) {
    if (args.size() != 1) return usage_error("show takes one conflict id");
    return with_store(db, [&](srv::store& st) {
        auto c = st.conflict(args[0]);
        if (!c) return failed(c.err().message);
        if (!*c) return failed("no conflict '" + args[0] + "'");
        print_conflict(st, **c);
        return 0;
    });
}

std::optional<json> read_json_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        std::cerr << "fieldsync-admin: cannot read '" << path << "'\n";
        return std::nullopt;
    }
    try {
        return json::parse(in);
    } catch (const std::exception& e) {
        std::cerr << "fieldsync-admin: '" << path << "' is not JSON: " << e.what() << "\n";
        return std::nullopt;
    }
}

// One line typed at the prompt; nullopt at the end of input (Ctrl-D), also after a partial
// line not ended by Enter: an answer counts only once the reviewer presses Enter.
std::optional<std::string> ask(const std::string& prompt) {
    std::cout << prompt << std::flush;
    std::string line;
    if (!std::getline(std::cin, line) || std::cin.eof()) {
        std::cout << "\n";
        return std::nullopt;
    }
    return line;
}

// Asks for the choice on a terminal, and for the note unless --note gave one (`have_note`);
// false when the reviewer quits or input ends (Ctrl-D), anywhere: then nothing is recorded.
bool ask_choice(const srv::conflict_view& c, srv::resolution& r, bool have_note) {
    const bool whole = std::find(c.fields.begin(), c.fields.end(), "") != c.fields.end();
    for (;;) {
        const auto answer = ask(std::string("\n[k]eep head, [t]ake incoming, ") + (whole ? "" : "[p]ick per field, ") +
                                "[e]dit from a file, [d]ismiss, [q]uit? ");
        if (!answer) return false;
        const auto& a = *answer;
        if (a == "q" || a == "quit") return false;
        if (a == "k") r.how = srv::resolution::choice::keep_head;
        else if (a == "t") r.how = srv::resolution::choice::take_incoming;
        else if (a == "d") r.how = srv::resolution::choice::dismiss;
        else if (a == "p" && !whole) {
            r.how = srv::resolution::choice::pick;
            for (const auto& p : c.fields) {
                for (;;) {
                    const auto side = ask("  " + field_label(p) + ": [h]ead or [i]ncoming? ");
                    if (!side || *side == "q") return false;
                    if (*side == "h" || *side == "i") {
                        r.picks[p] = *side == "h" ? "head" : "incoming";
                        break;
                    }
                }
            }
        } else if (a == "e") {
            const auto path = ask("  file with the edited record (JSON), or 'delete': ");
            if (!path) return false;
            if (*path == "delete") {
                r.edited_deleted = true;
            } else {
                auto j = read_json_file(*path);
                if (!j) continue;
                r.edited = std::move(*j);
            }
            r.how = srv::resolution::choice::edit;
        } else {
            continue;
        }
        if (!have_note) {
            const auto note = ask("note (optional, Enter for none; Ctrl-D records nothing): ");
            if (!note) return false;
            r.note = *note;
        }
        return true;
    }
}

int cmd_resolve(const std::string& db, const std::vector<std::string>& args) {
    if (args.empty()) return usage_error("resolve needs a conflict id");
    const std::string id = args[0];
    std::string as;
    std::optional<srv::resolution::choice> choice;
    srv::resolution r;
    std::optional<std::int64_t> head_version;
    std::string edit_file;
    bool note_given = false;
    auto set_choice = [&](srv::resolution::choice c) {
        if (choice && *choice != c) return false;
        choice = c;
        return true;
    };
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto& a = args[i];
        using ch = srv::resolution::choice;
        if (a == "--keep-head" || a == "--take-incoming" || a == "--dismiss" || a == "--edit-delete") {
            const auto c = a == "--keep-head" ? ch::keep_head : a == "--take-incoming" ? ch::take_incoming
                         : a == "--dismiss" ? ch::dismiss : ch::edit;
            if (!set_choice(c)) return usage_error("give one choice");
            if (a == "--edit-delete") r.edited_deleted = true;
            continue;
        }
        if (i + 1 >= args.size()) return usage_error("'" + a + "' needs a value");
        const auto& v = args[++i];
        if (a == "--as") as = v;
        else if (a == "--note") {
            r.note = v;
            note_given = true;
        }
        else if (a == "--edit") {
            if (!set_choice(ch::edit)) return usage_error("give one choice");
            edit_file = v;
        } else if (a == "--pick") {
            if (!set_choice(ch::pick)) return usage_error("give one choice");
            const auto eq = v.rfind('=');
            const auto side = eq == std::string::npos ? "" : v.substr(eq + 1);
            if (eq == std::string::npos || (side != "head" && side != "incoming"))
                return usage_error("--pick takes /FIELD=head or /FIELD=incoming");
            std::string pointer = v.substr(0, eq);
            if (!pointer.empty() && pointer[0] != '/') pointer.insert(0, 1, '/');
            r.picks[pointer] = side;
        } else if (a == "--head-version") {
            head_version = fieldsync::protocol::parse_integer(v, 0, INT64_MAX);
            if (!head_version) return usage_error("--head-version must be a non-negative integer");
        } else
            return usage_error("unknown argument '" + a + "'");
    }
    if (as.empty()) return usage_error("--as DEVICE_ID (the reviewer's device) is required");
    const bool interactive = !choice && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (!choice && !interactive)
        return usage_error("give a choice (--keep-head, --take-incoming, --pick, --edit, --edit-delete, --dismiss); "
                           "without one it asks, on a terminal only");

    return with_store(db, [&](srv::store& store) {
        const auto reviewer = find_device(store, as);
        if (!reviewer) return k_exit_failure;
        auto shown = store.conflict(srv::scope::of(*reviewer), id);
        if (!shown || !*shown) return failed("no conflict '" + id + "' in the subtree of " + reviewer->id);
        const auto& c = **shown;
        if (interactive) {
            print_conflict(store, c);
            if (c.status != "open") return failed("the conflict is already " + c.status);
            if (!ask_choice(c, r, note_given)) {
                std::cerr << "fieldsync-admin: nothing recorded; the conflict stays open\n";
                return k_exit_failure;
            }
        } else {
            r.how = *choice;
            if (!edit_file.empty()) {
                auto j = read_json_file(edit_file);
                if (!j) return k_exit_failure;
                r.edited = std::move(*j);
            }
        }
        r.head_version = head_version.value_or(c.current_version);
        auto done = store.resolve(*reviewer, id, r);
        if (!done) {
            const auto& e = done.err();
            std::cerr << "fieldsync-admin: " << proto::errc_name(e.code) << ": " << e.message << "\n";
            if (e.code == proto::errc::stale) {
                if (auto now = store.conflict(srv::scope::of(*reviewer), id); now && *now) print_conflict(store, **now);
                return k_exit_stale;
            }
            return k_exit_failure;
        }
        std::cout << "conflict " << id << " " << done->status;
        if (done->resolution.is_object() && done->resolution.contains("version"))
            std::cout << ": " << c.collection << "/" << c.record_id << " is now version " << done->resolution["version"];
        std::cout << "\n";
        return 0;
    });
}

}  // namespace

int run_conflicts(const std::string& db, const std::vector<std::string>& args) {
    if (args.empty()) return usage_error("conflicts needs a subcommand: list, show or resolve");
    if (db.empty()) return usage_error("--db PATH is required");
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "list") return cmd_list(db, rest);
    if (args[0] == "show") return cmd_show(db, rest);
    if (args[0] == "resolve") return cmd_resolve(db, rest);
    return usage_error("unknown conflicts subcommand '" + args[0] + "'");
}

}  // namespace fieldsync::admin
