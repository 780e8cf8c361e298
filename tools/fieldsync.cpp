// fieldsync: a field client on the command line, over one replica directory.
//
//   fieldsync --replica DIR [--cbor] [--no-gzip] <verb> [arguments]
//                                                  (fieldsync help, fieldsync <verb> --help)
//
// Exit codes (also in `fieldsync help`):
//   0  done                           5  server unreachable, timed out or 5xx (try again later)
//   1  usage error                    6  unauthorized or forbidden (check the token)
//   2  record not found               7  sync done, but some changes are in conflict or rejected
//   3  invalid input (JSON, schema)   8  the server refused the request or answered nonsense
//   4  local storage failure          9  internal error
//                                    10  the server's TLS certificate was not accepted

#include <fieldsync/client/replica.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace fieldsync;
using client::errc;
using client::json;

enum exit_code {
    exit_ok = 0,
    exit_usage = 1,
    exit_not_found = 2,
    exit_invalid = 3,
    exit_storage = 4,
    exit_unreachable = 5,
    exit_auth = 6,
    exit_unsettled = 7,
    exit_refused = 8,
    exit_internal = 9,
    exit_tls = 10,
};

constexpr const char* k_usage = R"(usage: fieldsync --replica DIR [--cbor] [--no-gzip] <verb> [arguments]

  --cbor     sync bodies in CBOR instead of JSON (smaller, same content)
  --no-gzip  do not compress sync bodies (to read them in a capture)

verbs:
  init --server URL --token TOKEN      create the replica in DIR and remember the server
  put COLLECTION [--id ID] --unit UNIT JSON
                                       create or replace a record (JSON '-' reads stdin)
  patch COLLECTION ID JSON             apply a JSON merge patch to a record
  get COLLECTION ID                    print a record with its sync state
  list COLLECTION [--unit UNIT] [--field NAME --value JSON] [--deleted]
                                       print records, one JSON object per line
  delete COLLECTION ID                 delete a record
  discard COLLECTION ID                drop this device's unsent or refused change of a record
                                       (or a decision's notice): back to the server's version
  status                               pending changes, conflicts, rejected changes
  attach COLLECTION ID FIELD FILE [--name NAME]
                                       attach a photo or PDF to a record (sent by sync)
  uploads                              the attached files waiting to be sent, sent, refused
  download SHA256 OUT                  fetch an attached file by its hash into OUT
  sync [--quiet] [--ca-file FILE] [--no-uploads]
                                       push local changes, pull the server's, then send files
  help                                 this text; `fieldsync VERB --help` for one verb

exit codes:
  0 done, 1 usage, 2 not found, 3 invalid input, 4 local storage failure,
  5 server unreachable / timed out / 5xx (try later), 6 unauthorized or forbidden,
  7 sync done but conflicts, rejected changes or refused files remain,
  8 request refused or bad answer,
  9 internal error, 10 the server's TLS certificate was not accepted
)";

const std::map<std::string, std::string> k_verb_help = {
    {"init", "usage: fieldsync --replica DIR init --server URL --token TOKEN\n"
             "Creates DIR/replica.db if needed and stores the server URL (http://host:port) and the\n"
             "device token (from `fieldsync-admin device add`). Safe to run again to change them.\n"
             "DIR/replica.db holds the token and is readable by its owner only (mode 0600). Every\n"
             "other verb refuses a DIR without a replica.\n"},
    {"put", "usage: fieldsync --replica DIR put COLLECTION [--id ID] --unit UNIT JSON\n"
            "Creates or replaces a whole record; without --id a new time-ordered id is made and\n"
            "printed. JSON is an object, or '-' to read it from stdin. The edit is durable when the\n"
            "command returns and is sent by the next sync. Exit 3 if the data breaks the schema.\n"},
    {"patch", "usage: fieldsync --replica DIR patch COLLECTION ID JSON\n"
              "Applies an RFC 7396 merge patch (null removes a field). Exit 2 if the record is absent.\n"},
    {"get", "usage: fieldsync --replica DIR get COLLECTION ID\n"
            "Prints the local copy as JSON with its unit, server version and sync state\n"
            "(synced, pending, conflict, rejected with the reason). Exit 2 if absent.\n"},
    {"list", "usage: fieldsync --replica DIR list COLLECTION [--unit UNIT] [--field NAME --value JSON] [--deleted]\n"
             "Prints matching records, one JSON object per line, ordered by id. --field takes a\n"
             "top-level name or a JSON pointer; --value is JSON (\"text\" needs its quotes).\n"},
    {"delete", "usage: fieldsync --replica DIR delete COLLECTION ID\n"
               "Deletes a record locally; the next sync sends the delete. Exit 2 if absent.\n"},
    {"discard", "usage: fieldsync --replica DIR discard COLLECTION ID\n"
                "Drops what only this device has of a record and returns it to the server's version:\n"
                "unsent edits, a change the server refused (so later syncs no longer exit 7), or the\n"
                "notice of a reviewer's decision. A record the server never had goes. Exit 2 if\n"
                "absent, 3 if the change is held for review (the reviewer decides it), 4 if a change\n"
                "of it is being sent by a sync running now.\n"},
    {"status", "usage: fieldsync --replica DIR status\n"
               "Prints the server, the cursor, and how many records are pending, in conflict or\n"
               "rejected; then each conflict and rejection with its reason.\n"},
    {"sync", "usage: fieldsync --replica DIR sync [--quiet] [--ca-file FILE] [--no-uploads]\n"
             "Pushes the outbox and pulls until up to date. Shows a progress bar on a terminal,\n"
             "plain progress lines otherwise (none with --quiet), then the report. Transient\n"
             "failures are retried with backoff before exiting 5. Then, records first, sends the\n"
             "attached files waiting in the upload queue (not with --no-uploads), each resumed\n"
             "from what the server already holds; a cut link exits 5 and the next sync goes on.\n"
             "Exit 7 if conflicts, rejections or refused files remain after a successful sync.\n"
             "For an https:// server, --ca-file names a PEM file of the CAs to trust instead of\n"
             "the system's; a certificate that is not accepted (unknown CA, wrong host name,\n"
             "expired) exits 10 at once.\n"},
    {"attach", "usage: fieldsync --replica DIR attach COLLECTION ID FIELD FILE [--name NAME]\n"
               "Attaches a photo or a PDF (JPEG, PNG, WebP or PDF by its first bytes, at most\n"
               "10 MiB) to a record: the file is copied beside the replica, its reference is added\n"
               "to FIELD (an array of attachments, e.g. registrations.scans) as an edit that the\n"
               "next sync sends, and the file waits in the upload queue, sent after the records.\n"
               "--name is what people see (default: FILE's own name). Prints the reference.\n"
               "Exit 2 if the record or the file is absent, 3 if the file is not accepted.\n"},
    {"uploads", "usage: fieldsync --replica DIR uploads\n"
                "Lists the attached files, oldest first: waiting (with the bytes the server holds),\n"
                "sent, or refused with the server's reason (too large, not a photo or PDF, damaged:\n"
                "attach the file again once fixed).\n"},
    {"download", "usage: fieldsync --replica DIR download SHA256 OUT\n"
                 "Writes the attached file named by SHA256 (from a record's reference) to OUT: the\n"
                 "replica's own copy, or fetched from the server and checked against the hash.\n"
                 "Exit 2 if the server does not have it (not sent yet by the device that took it,\n"
                 "or not this device's to read).\n"},
};

int code_for(const client::error& e) {
    if (e.code.category() != client::client_category()) return exit_internal;
    switch (static_cast<errc>(e.code.value())) {
        case errc::ok: return exit_ok;
        case errc::invalid_argument:
        case errc::invalid_json:
        case errc::invalid_utf8:
        case errc::schema_violation: return exit_invalid;
        case errc::not_found: return exit_not_found;
        case errc::not_configured: return exit_usage;
        case errc::storage:
        case errc::busy: return exit_storage;
        case errc::network:
        case errc::timeout:
        case errc::server_unavailable:
        case errc::cancelled: return exit_unreachable;
        case errc::unauthorized:
        case errc::forbidden: return exit_auth;
        case errc::bad_request:
        case errc::bad_response:
        case errc::unsupported:
        case errc::server_too_old:
        case errc::client_too_old: return exit_refused;
        case errc::internal: return exit_internal;
        case errc::tls: return exit_tls;
    }
    return exit_internal;
}

int fail(const client::error& e) {
    std::cerr << "fieldsync: " << e.code.message() << ": " << e.message << "\n";
    return code_for(e);
}

// A replica used before `init`: say which command sets it up, not which library call.
int fail(const client::error& e, const std::string& replica_dir) {
    if (e.code != client::errc::not_configured) return fail(e);
    std::cerr << "fieldsync: the replica " << replica_dir << " has no server yet; set it up first with\n"
              << "  fieldsync --replica " << replica_dir << " init --server URL --token TOKEN\n";
    return code_for(e);
}

int usage_error(const std::string& message, const std::string& verb = {}) {
    std::cerr << "fieldsync: " << message << "\n";
    const auto it = k_verb_help.find(verb);
    std::cerr << (it != k_verb_help.end() ? it->second : std::string(k_usage));
    return exit_usage;
}

// Splits a verb's arguments into --name value options, flags and positionals.
struct args {
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;
    std::vector<std::string> flags;
    bool help = false;
};

std::optional<args> parse_args(const std::vector<std::string>& in, const std::vector<std::string>& with_value,
                               const std::vector<std::string>& flag_names, std::string& error) {
    args a;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto& s = in[i];
        if (s == "--help" || s == "-h") {
            a.help = true;
        } else if (s.rfind("--", 0) == 0 && s.size() > 2) {
            const auto name = s.substr(2);
            if (std::find(with_value.begin(), with_value.end(), name) != with_value.end()) {
                if (i + 1 >= in.size()) {
                    error = "option " + s + " needs a value";
                    return std::nullopt;
                }
                a.options[name] = in[++i];
            } else if (std::find(flag_names.begin(), flag_names.end(), name) != flag_names.end()) {
                a.flags.push_back(name);
            } else {
                error = "unknown option " + s;
                return std::nullopt;
            }
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

std::optional<json> read_json(const std::string& text, int& code) {
    std::string body = text;
    if (text == "-") body.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    try {
        return json::parse(body);
    } catch (const json::parse_error& e) {
        std::cerr << "fieldsync: invalid JSON: " << e.what() << "\n";
        code = exit_invalid;
        return std::nullopt;
    }
}

json to_json(const client::record& r) {
    json j = {{"collection", r.collection}, {"id", r.id},           {"unit_id", r.unit_id},
              {"version", r.version},       {"deleted", r.deleted}, {"state", client::sync_state_name(r.state)},
              {"data", r.data}};
    if (r.reason) j["reason"] = {{"code", protocol::errc_name(r.reason->code)}, {"message", r.reason->message}};
    if (r.conflict_id) j["conflict_id"] = *r.conflict_id;
    if (!r.held.is_null()) j["held"] = r.held;
    if (r.resolution) j["resolution"] = protocol::encode(*r.resolution);
    return j;
}

// What became of this device's held change, in a line: "kept the district's version (note: ...)".
std::string describe_decision(const protocol::resolution_notice& n) {
    std::string out;
    if (n.status == "dismissed") out = "dismissed: the record stays as it is";
    else if (n.choice == "keep_head") out = "resolved: the other version was kept";
    else if (n.choice == "take_incoming") out = "resolved: this device's version was taken";
    else if (n.choice == "pick") out = "resolved: field by field";
    else if (n.choice == "edit") out = "resolved: the reviewer wrote the record";
    else out = n.status;
    if (!n.reviewer_unit_name.empty()) out += ", by " + n.reviewer_unit_name;
    if (!n.note.empty()) out += " (note: " + n.note + ")";
    return out;
}

std::string human_bytes(std::int64_t n) {
    char buf[32];
    if (n < 1024) std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(n));
    else if (n < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(n) / 1024);
    else std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(n) / (1024.0 * 1024));
    return buf;
}

/// How sync bodies travel (SPEC.md, "Compression and encodings"); the global options.
struct wire_choice {
    client::body_format format = client::body_format::json;
    bool gzip = true;
};

int run(const std::string& dir, const wire_choice& wire, const std::string& verb, const std::vector<std::string>& rest) {
    std::vector<std::string> with_value, flags;
    if (verb == "init") with_value = {"server", "token"};
    else if (verb == "put") with_value = {"id", "unit"};
    else if (verb == "list") with_value = {"unit", "field", "value"}, flags = {"deleted"};
    else if (verb == "sync") with_value = {"ca-file"}, flags = {"quiet", "no-uploads"};
    else if (verb == "attach") with_value = {"name"};
    else if (!k_verb_help.count(verb)) return usage_error("unknown verb '" + verb + "'");

    std::string perr;
    auto a = parse_args(rest, with_value, flags, perr);
    if (!a) return usage_error(perr, verb);
    if (a->help) {
        std::cout << k_verb_help.at(verb);
        return exit_ok;
    }
    auto has_flag = [&](const char* f) { return std::find(a->flags.begin(), a->flags.end(), f) != a->flags.end(); };
    auto need_positional = [&](std::size_t n) { return a->positional.size() == n; };

    client::replica_options o;
    o.path = (std::filesystem::path(dir) / "replica.db").string();
    std::error_code ec;
    if (verb != "init") {
        // Only init makes a replica: a mistyped --replica would otherwise sync into an empty one.
        if (!std::filesystem::exists(o.path, ec)) {
            std::cerr << "fieldsync: no replica in " << dir << "; set it up first with\n"
                      << "  fieldsync --replica " << dir << " init --server URL --token TOKEN\n";
            return exit_usage;
        }
    } else {
        std::filesystem::create_directories(dir, ec);
        if (ec) {
            std::cerr << "fieldsync: cannot create " << dir << ": " << ec.message() << "\n";
            return exit_storage;
        }
        // The replica file keeps the device's token: readable by its owner only, whatever the
        // umask (SQLite gives its journal and WAL the same mode). An older replica is tightened.
        const int fd = ::open(o.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        const bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0;
        if (fd >= 0) ::close(fd);
        for (const char* side : {"-wal", "-shm", "-journal"})
            if (std::filesystem::exists(o.path + side, ec)) ::chmod((o.path + side).c_str(), 0600);
        if (!ok) {
            std::cerr << "fieldsync: cannot create " << o.path << " readable by its owner only\n";
            return exit_storage;
        }
    }
    o.format = wire.format;
    auto opened = client::replica::open(o);
    if (!opened) return fail(opened.err());
    auto& r = **opened;
    if (!wire.gzip) {
        auto e = r.set_encoding(wire.format, false);
        if (!e) return fail(e.err());
    }

    auto fail_here = [&](const client::error& e) { return fail(e, dir); };
    if (verb == "init") {
        if (!a->options.count("server") || !a->options.count("token") || !need_positional(0))
            return usage_error("init needs --server URL and --token TOKEN", verb);
        auto c = r.configure(a->options["server"], a->options["token"]);
        if (!c) return fail_here(c.err());
        std::cout << "replica " << o.path << " syncs with " << a->options["server"] << "\n";
        return exit_ok;
    }
    if (verb == "put") {
        if (!need_positional(2) || !a->options.count("unit"))
            return usage_error("put needs COLLECTION, --unit UNIT and JSON", verb);
        int code = exit_ok;
        auto data = read_json(a->positional[1], code);
        if (!data) return code;
        auto p = r.put(a->positional[0], *data, {a->options["id"], a->options["unit"]});
        if (!p) return fail_here(p.err());
        std::cout << p->id << "\n";
        return exit_ok;
    }
    if (verb == "patch") {
        if (!need_positional(3)) return usage_error("patch needs COLLECTION ID JSON", verb);
        int code = exit_ok;
        auto patch = read_json(a->positional[2], code);
        if (!patch) return code;
        auto p = r.patch(a->positional[0], a->positional[1], *patch);
        if (!p) return fail_here(p.err());
        std::cout << to_json(*p).dump() << "\n";
        return exit_ok;
    }
    if (verb == "get") {
        if (!need_positional(2)) return usage_error("get needs COLLECTION ID", verb);
        auto g = r.get(a->positional[0], a->positional[1]);
        if (!g) return fail_here(g.err());
        if (!*g) {
            std::cerr << "fieldsync: " << a->positional[0] << "/" << a->positional[1] << " not found\n";
            return exit_not_found;
        }
        std::cout << to_json(**g).dump(2) << "\n";
        return exit_ok;
    }
    if (verb == "list") {
        if (!need_positional(1)) return usage_error("list needs COLLECTION", verb);
        client::query q;
        q.collection = a->positional[0];
        q.unit_id = a->options["unit"];
        q.include_deleted = has_flag("deleted");
        if (a->options.count("field")) {
            if (!a->options.count("value")) return usage_error("--field needs --value", verb);
            q.field = a->options["field"];
            int code = exit_ok;
            auto v = read_json(a->options["value"], code);
            if (!v) return code;
            q.value = *v;
        }
        auto l = r.list(q);
        if (!l) return fail_here(l.err());
        for (const auto& rec : *l) std::cout << to_json(rec).dump() << "\n";
        return exit_ok;
    }
    if (verb == "delete") {
        if (!need_positional(2)) return usage_error("delete needs COLLECTION ID", verb);
        auto d = r.remove(a->positional[0], a->positional[1]);
        if (!d) return fail_here(d.err());
        return exit_ok;
    }
    if (verb == "discard") {
        if (!need_positional(2)) return usage_error("discard needs COLLECTION ID", verb);
        auto d = r.discard(a->positional[0], a->positional[1]);
        if (!d) return fail_here(d.err());
        std::cout << (d->deleted && d->version == 0 ? "discarded: the record was never on the server and is gone\n"
                                                    : "discarded: back to the server's version " +
                                                          std::to_string(d->version) + "\n");
        return exit_ok;
    }
    if (verb == "status") {
        if (!need_positional(0)) return usage_error("status takes no arguments", verb);
        auto s = r.status();
        if (!s) return fail_here(s.err());
        auto outbox = r.pending_count();
        if (!outbox) return fail_here(outbox.err());
        std::cout << "server:    " << (s->server_url.empty() ? "(none: run init)" : s->server_url) << "\n"
                  << "records:   " << s->records << "\n"
                  << "pending:   " << s->pending << " records (" << *outbox << " changes in the outbox)\n"
                  << "conflicts: " << s->conflicts << "\n"
                  << "rejected:  " << s->rejected << "\n";
        // Conflicts and rejections are few; list them so the user can act on them.
        for (const auto state : {client::sync_state::conflict, client::sync_state::rejected}) {
            client::query q;
            q.state = state;
            q.include_deleted = true;
            auto l = r.list(q);
            if (!l) return fail_here(l.err());
            for (const auto& rec : *l) {
                std::cout << "  " << rec.collection << "/" << rec.id;
                if (rec.state == client::sync_state::conflict)
                    std::cout << ": held for review by a reviewer"
                              << (rec.conflict_id ? " (conflict " + *rec.conflict_id + ")" : std::string());
                else if (rec.reason)
                    std::cout << ": refused: " << rec.reason->message << " ("
                              << protocol::errc_name(rec.reason->code) << "); `fieldsync discard " << rec.collection
                              << " " << rec.id << "` drops the change";
                std::cout << "\n";
            }
        }
        // Decisions about this device's held changes, until the next edit or a discard.
        client::query decided;
        decided.state = client::sync_state::synced;
        decided.include_deleted = true;
        auto l = r.list(decided);
        if (!l) return fail_here(l.err());
        for (const auto& rec : *l)
            if (rec.resolution)
                std::cout << "  " << rec.collection << "/" << rec.id << ": " << describe_decision(*rec.resolution)
                          << "\n";
        return exit_ok;
    }
    if (verb == "attach") {
        if (!need_positional(4)) return usage_error("attach needs COLLECTION ID FIELD FILE", verb);
        const auto& p = a->positional;
        auto ref = r.attach(p[0], p[1], p[2], p[3], a->options["name"]);
        if (!ref) return fail_here(ref.err());
        std::cout << protocol::to_json(*ref).dump() << "\n";
        return exit_ok;
    }
    if (verb == "uploads") {
        if (!need_positional(0)) return usage_error("uploads takes no arguments", verb);
        auto q = r.upload_queue();
        if (!q) return fail_here(q.err());
        if (q->empty()) std::cout << "no attached files\n";
        for (const auto& e : *q) {
            std::cout << client::upload_state_name(e.state) << "  " << e.ref.name << "  " << e.ref.content_type
                      << "  " << human_bytes(e.sent) << " of " << human_bytes(e.ref.size) << "  " << e.ref.sha256
                      << "\n";
            if (e.state == client::upload_state::failed)
                std::cout << "  refused: " << e.error_message << " (" << e.error_code
                          << "); attach the file again once fixed\n";
        }
        return exit_ok;
    }
    if (verb == "download") {
        if (!need_positional(2)) return usage_error("download needs SHA256 OUT", verb);
        auto path = r.download(a->positional[0]);
        if (!path) return fail_here(path.err());
        std::filesystem::copy_file(*path, a->positional[1], std::filesystem::copy_options::overwrite_existing, ec);
        if (ec) {
            std::cerr << "fieldsync: cannot write " << a->positional[1] << ": " << ec.message() << "\n";
            return exit_storage;
        }
        std::cout << a->positional[1] << "\n";
        return exit_ok;
    }
    // sync
    if (!need_positional(0)) return usage_error("sync takes no arguments", verb);
    const bool quiet = has_flag("quiet");
    if (a->options.count("ca-file")) {
        client::http_transport_options http;
        http.ca_file = a->options["ca-file"];
        if (auto set = r.set_http_options(http); !set) return fail_here(set.err());
    }
    const bool tty = isatty(STDERR_FILENO) != 0;
    auto progress = [&](const client::sync_progress& p) {
        if (quiet) return true;
        if (p.phase == client::sync_phase::retry_wait) {
            if (tty) std::cerr << "\n";
            std::cerr << "retrying in " << p.retry_in.count() << " ms"
                      << (p.last_error ? " after: " + p.last_error->message : std::string()) << "\n";
            return true;
        }
        if (tty) {
            constexpr int width = 30;
            const double frac = p.to_push > 0 ? static_cast<double>(p.pushed) / static_cast<double>(p.to_push) : 1.0;
            const int filled = static_cast<int>(std::min(frac, 1.0) * width);
            std::cerr << "\r[" << std::string(static_cast<std::size_t>(filled), '#')
                      << std::string(static_cast<std::size_t>(width - filled), ' ') << "] pushed " << p.pushed << "/"
                      << p.to_push << "  pulled " << p.pulled << "  " << human_bytes(p.bytes_sent) << " up, "
                      << human_bytes(p.bytes_received) << " down\033[K" << std::flush;  // clear the rest
        } else {
            std::cerr << (p.phase == client::sync_phase::push ? "push" : "pull") << ": pushed " << p.pushed << "/"
                      << p.to_push << ", pulled " << p.pulled << ", " << p.bytes_sent << " bytes sent, "
                      << p.bytes_received << " bytes received\n";
        }
        return true;
    };
    auto rep = r.sync(progress);
    if (tty && !quiet) std::cerr << "\n";
    if (!rep) return fail_here(rep.err());
    std::cout << "pushed " << rep->pushed << " (applied " << rep->applied << ", merged " << rep->merged
              << ", conflicts " << rep->conflicts << ", rejected " << rep->rejected << "), pulled " << rep->pulled
              << ", sent " << human_bytes(rep->bytes_sent) << ", received " << human_bytes(rep->bytes_received)
              << ", " << rep->requests << " requests, " << rep->retries << " retries, " << rep->duration.count()
              << " ms\n";
    if (rep->decided > 0)
        std::cout << "decided by a reviewer: " << rep->decided << " (see `fieldsync status`)\n";
    if (rep->queued > 0)
        std::cout << "queued at the relay hub: " << rep->queued << " (still pending; the next sync asks again)\n";

    // Files after the records (SPEC.md, "Attachments"): a record never waits for its photo.
    std::int64_t refused = 0;
    if (!has_flag("no-uploads")) {
        client::upload_options uo;
        uo.progress = [&](const client::upload_progress& p) {
            if (quiet) return true;
            if (tty)
                std::cerr << "\rupload " << p.name << ": " << human_bytes(p.sent) << " of " << human_bytes(p.size)
                          << "\033[K" << std::flush;
            else
                std::cerr << "upload: " << p.name << " " << p.sent << " of " << p.size << " bytes\n";
            return true;
        };
        auto up = r.upload(uo);
        if (tty && !quiet) std::cerr << "\n";
        if (!up) {
            std::cerr << "files: not all sent; the next sync goes on from where this one stopped\n";
            return fail_here(up.err());
        }
        if (up->completed + up->failed + up->waiting > 0)
            std::cout << "files: sent " << up->completed << " (" << human_bytes(up->bytes_sent) << "), refused "
                      << up->failed << ", waiting " << up->waiting << ", " << up->duration.count() << " ms\n";
        auto q = r.upload_queue();
        if (!q) return fail_here(q.err());
        for (const auto& e : *q)
            if (e.state == client::upload_state::failed) ++refused;
        if (refused > 0) std::cout << "refused files: " << refused << " (see `fieldsync uploads`)\n";
    }
    auto s = r.status();
    if (!s) return fail_here(s.err());
    return s->conflicts + s->rejected + refused > 0 ? exit_unsettled : exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> all(argv + 1, argv + argc);
    std::string dir;
    wire_choice wire;
    std::size_t i = 0;
    for (; i < all.size(); ++i) {
        if (all[i] == "--cbor") {
            wire.format = client::body_format::cbor;
        } else if (all[i] == "--no-gzip") {
            wire.gzip = false;
        } else if (all[i] == "--replica" && i + 1 < all.size()) {
            dir = all[++i];
        } else if (all[i].rfind("--replica=", 0) == 0) {
            dir = all[i].substr(10);
        } else if (all[i] == "--help" || all[i] == "-h" || all[i] == "help") {
            std::cout << k_usage;
            return exit_ok;
        } else {
            break;
        }
    }
    if (i >= all.size()) return usage_error("no verb given");
    const std::string verb = all[i];
    const std::vector<std::string> rest(all.begin() + static_cast<std::ptrdiff_t>(i) + 1, all.end());
    const bool wants_help = std::find(rest.begin(), rest.end(), "--help") != rest.end();
    if (dir.empty() && !wants_help) return usage_error("--replica DIR is required");
    try {
        if (dir.empty()) {
            auto it = k_verb_help.find(verb);
            if (it == k_verb_help.end()) return usage_error("unknown verb '" + verb + "'");
            std::cout << it->second;
            return exit_ok;
        }
        return run(dir, wire, verb, rest);
    } catch (const std::exception& e) {
        std::cerr << "fieldsync: internal error: " << e.what() << "\n";
        return exit_internal;
    }
}
