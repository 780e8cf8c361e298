// fieldsync-admin: administers a central store directly through its SQLite file. It may run
// while the server serves the same file: the store uses WAL and a busy timeout, so the admin
// tool's short transactions wait for the server's writer instead of failing. This file reads
// the global options and dispatches to the verbs (fieldsync-admin-*.cpp).

#include "fieldsync-admin-common.hpp"
#include "fieldsync-admin-conflicts.hpp"
#include "fieldsync-admin-devices.hpp"
#include "fieldsync-admin-reports.hpp"
#include "fieldsync-admin-store.hpp"
#include "fieldsync-admin-units.hpp"

#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace fieldsync::admin;

constexpr const char* k_usage =
    "usage: fieldsync-admin [--db PATH | --store sqlite:PATH | --store postgres:CONNINFO] COMMAND [ARGS]\n"
    "\n"
    "  --db PATH    the store (default: $FIELDSYNC_DB, else data/fieldsync.db in the working\n"
    "               directory). Only init and demo make a missing store; every other command\n"
    "               refuses a path with no store.\n"
    "  --store postgres:CONNINFO  the store in a PostgreSQL database (its tables are made in an\n"
    "               empty one); backup, restore and the reports' --db are SQLite's only\n"
    "\n"
    "commands:\n"
    "  help [COMMAND]                              this text, or a command's\n"
    "  init                                        create the store with the default schema\n"
    "  device add --name NAME --unit UNIT [--unit-later] [--role field|reviewer|admin]\n"
    "                                              register a device; prints only its token\n"
    "  device list                                 list the registered devices\n"
    "  device revoke ID                            the device's token stops working\n"
    "  device rotate ID                            a new token for the device; prints only it\n"
    "  device move ID --unit UNIT [--unit-later]   bind the device to another unit\n"
    "  device enrol ID [--server URL] ...          a one-time enrolment link for the field app\n"
    "  unit add --id ID --name NAME --kind KIND [--parent ID]\n"
    "                                              add a unit to the tree, or change it\n"
    "  unit list                                   list the organisation tree\n"
    "  unit move ID --parent ID                    move a unit and its subtree under another unit\n"
    "  unit import FILE                            add or change many units (JSON or CSV)\n"
    "  conflicts list|show|resolve [ARGS]          review conflicts (see 'conflicts --help')\n"
    "  gc [--dry-run] [--window-days N]            purge tombstones and notices no active device needs\n"
    "  demo --district NAME [--seed N]             load the district's demo data set into an empty store\n"
    "  report NAME [--unit U] [--year Y] [--format table|csv|json]\n"
    "                                              the district's figures (see 'report --help')\n"
    "  campaign-year [YEAR | --clear]              the year reports are of unless --year says\n"
    "  backup PATH                                 copy the store to PATH while the server serves\n"
    "  restore BACKUP                              replace the store with BACKUP (server stopped)\n"
    "  migrate --from sqlite:PATH --to postgres:CONNINFO\n"
    "                                              copy a SQLite store into PostgreSQL (server stopped)\n"
    "\n"
    "\n"
    "A device's ID may be its id, a unique prefix of it (4 characters or more) or its unique name.\n"
    "'fieldsync-admin help COMMAND' or 'fieldsync-admin COMMAND --help' describes a command.\n";

// Conflict review, the demo data set and reports (fieldsync-admin-conflicts.cpp, -reports.cpp):
// each reads or checks --db itself.
const std::vector<verb>& review_commands() {
    static const std::vector<verb> verbs = {{"conflicts", k_conflicts_usage, run_conflicts, false},
                                            {"demo", k_demo_usage, run_demo, false},
                                            {"report", k_report_usage, run_report, false},
                                            {"campaign-year", k_campaign_year_usage, run_campaign_year, false}};
    return verbs;
}

int dispatch(const std::string& cmd, const std::string& db, const std::vector<std::string>& rest) {
    if (cmd == "help") {
        if (rest.empty()) {
            std::cout << k_usage;
            return 0;
        }
        if (rest[0] == "help") return usage_error("help takes the command to describe", k_usage);
        // `help device add` is `device add --help`.
        std::vector<std::string> args(rest.begin() + 1, rest.end());
        args.push_back("--help");
        return dispatch(rest[0], db, args);
    }
    // Only these make a store where there is none; everything else refuses a mistyped --db.
    allow_new_store(cmd == "init" || cmd == "demo");
    if (cmd == "device") return run_group(device_commands(), db, rest, k_usage);
    if (cmd == "unit") return run_group(unit_commands(), db, rest, k_usage);
    for (const auto* verbs : {&store_commands(), &review_commands()})
        for (const auto& v : *verbs)
            if (cmd == v.name) return run_verb(v, db, rest, k_usage);
    return usage_error("unknown command '" + cmd + "'", k_usage);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string db = default_db();
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
        } else if (args[i] == "--store") {
            // sqlite:PATH is --db PATH; postgres:CONNINFO is kept whole (open_store reads it).
            const std::string v = i + 1 < args.size() ? args[i + 1] : "";
            if (v.rfind("sqlite:", 0) == 0 && v.size() > 7)
                db = v.substr(7);
            else if (v.rfind("postgres:", 0) == 0 && v.size() > 9)
                db = v;
            else
                return usage_error("--store needs sqlite:PATH or postgres:CONNINFO", k_usage);
            i += 2;
        } else {
            return usage_error("unknown option '" + args[i] + "'", k_usage);
        }
    }
    if (i >= args.size()) return usage_error("no command given", k_usage);
    const std::string cmd = args[i++];
    std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
    return dispatch(cmd, db, rest);
}
