// `fieldsync-admin device add|list|revoke|rotate|move|enrol`: the devices, their tokens and
// their enrolment codes.

#include "fieldsync-admin-devices.hpp"

#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/server/qr.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>

namespace fieldsync::admin {

namespace {

namespace fs = fieldsync::server;

// A device is named by its id, a unique prefix of it (4 characters or more) or its name.
#define FIELDSYNC_DEVICE_REF "ID is the device's id, a unique prefix of it (4 characters or more) or its unique name.\n"

#define FIELDSYNC_ENROL_OPTIONS \
    "  --server URL       the server's address as the device reaches it (default: $FIELDSYNC_PUBLIC_URL,\n" \
    "                     else http://127.0.0.1:8080)\n" \
    "  --valid-hours N    how long the code may be used, 1 to 720 hours (default 24)\n" \
    "  --qr-svg FILE      also write the QR code to FILE as SVG, to print or send\n"

constexpr const char* k_device_add_usage =
    "usage: fieldsync-admin --db PATH device add --name NAME --unit UNIT [--unit-later]\n"
    "                                            [--role field|reviewer|admin] [--enrol [ENROLMENT OPTIONS]]\n"
    "Registers a device of unit UNIT and prints its bearer token, and nothing else, on stdout.\n"
    "UNIT must be in the organisation tree ('unit list'); --unit-later accepts a unit that will be\n"
    "imported later (until then no reviewer or report sees the device's records).\n"
    "The token is shown once: the store keeps only its hash. Default role: field.\n"
    "With --enrol, no token is shown: a one-time enrolment code is made instead and its link is\n"
    "printed on stdout (and, with the code and a QR code, on stderr); opening the link on the\n"
    "device enrols the field app (see `device enrol`). Enrolment options:\n" FIELDSYNC_ENROL_OPTIONS;

constexpr const char* k_device_enrol_usage =
    "usage: fieldsync-admin --db PATH device enrol ID [--server URL] [--valid-hours N] [--qr-svg FILE]\n"
    "Makes a one-time enrolment code for device ID and prints its link, and nothing else, on\n"
    "stdout; the code, its expiry and a QR code of the link go to stderr. Opening the link (or\n"
    "scanning the code) on a phone enrols the field app as this device: the app makes the\n"
    "device's new token, and the old one stops working. The device's earlier unused codes stop\n"
    "working too. " FIELDSYNC_DEVICE_REF "Options:\n" FIELDSYNC_ENROL_OPTIONS;

constexpr const char* k_device_list_usage =
    "usage: fieldsync-admin --db PATH device list\n"
    "Lists the registered devices: id, name, unit, role, created, revoked, and the last pull the\n"
    "server recorded (what gc counts as active; '-' before the first).\n";

constexpr const char* k_device_usage =
    "usage: fieldsync-admin --db PATH device add|list|revoke|rotate|move|enrol [ARGS]\n"
    "  device add --name NAME --unit UNIT [--unit-later] [--role field|reviewer|admin] [--enrol ...]\n"
    "  device list\n"
    "  device revoke ID\n"
    "  device rotate ID\n"
    "  device move ID --unit UNIT [--unit-later]\n"
    "  device enrol ID [--server URL] [--valid-hours N] [--qr-svg FILE]\n"
    FIELDSYNC_DEVICE_REF;

constexpr const char* k_device_revoke_usage =
    "usage: fieldsync-admin --db PATH device revoke ID\n"
    "Revokes a device: its token is refused from its next request on. Works while the server runs.\n"
    FIELDSYNC_DEVICE_REF;

constexpr const char* k_device_rotate_usage =
    "usage: fieldsync-admin --db PATH device rotate ID\n"
    "Gives a device a new token and prints it, and nothing else, on stdout; the old token stops working.\n"
    FIELDSYNC_DEVICE_REF;

constexpr const char* k_device_move_usage =
    "usage: fieldsync-admin --db PATH device move ID --unit UNIT [--unit-later]\n"
    "Binds a device to another unit. Its next pull starts over in the new unit's subtree.\n"
    "UNIT must be in the organisation tree, unless --unit-later says it will be imported later.\n"
    FIELDSYNC_DEVICE_REF;

// The enrolment options of `device add --enrol` and `device enrol`.
struct enrol_options {
    std::string server;
    std::chrono::hours valid{24};
    std::string qr_svg;
};

// Takes option `a` (its value `v`) into `o`; false when it is not an enrolment option. A bad
// value sets `problem`.
bool take_enrol_option(const std::string& a, const std::string& v, enrol_options& o, std::string& problem) {
    if (a == "--server") {
        if (!v.starts_with("http://") && !v.starts_with("https://"))
            problem = "--server must be an http:// or https:// address";
        o.server = v;
        while (o.server.ends_with("/")) o.server.pop_back();
    } else if (a == "--valid-hours") {
        const auto h = protocol::parse_integer(v, 1, 720);
        if (!h) problem = "--valid-hours must be a whole number of hours from 1 to 720";
        o.valid = std::chrono::hours(h.value_or(24));
    } else if (a == "--qr-svg") {
        o.qr_svg = v;
    } else {
        return false;
    }
    return true;
}

std::string default_server() {
    const char* env = std::getenv("FIELDSYNC_PUBLIC_URL");
    std::string s = env && *env ? env : "http://127.0.0.1:8080";
    while (s.ends_with("/")) s.pop_back();
    return s;
}

// A new enrolment code for the device: the link on stdout; the code, its expiry and the QR
// code on stderr; the SVG when asked for.
int print_enrolment(fs::store& st, const std::string& device_id, const std::string& name, const enrol_options& o) {
    auto e = st.enrol_device(device_id, o.valid);
    if (!e) return refused("cannot make an enrolment code for '" + device_id + "'", e.err());
    // The code travels in the fragment, which browsers never send to a server or write to its logs.
    const std::string link = (o.server.empty() ? default_server() : o.server) + "/app/#enrol=" + e->code;
    const auto qr = fs::make_qr(link);
    if (!qr) return failed("the link is too long for a QR code: " + link);
    if (!o.qr_svg.empty()) {
        std::ofstream out(o.qr_svg, std::ios::binary | std::ios::trunc);
        out << fs::qr_svg(*qr);
        if (!out.flush()) return failed("cannot write " + o.qr_svg);
    }
    std::cerr << "fieldsync-admin: enrolment code for device " << device_id << " (" << name << "): " << e->code
              << ", usable once until " << format_ms(e->expires_ms) << "\n"
              << "Open this link on the device, or scan the code with its camera:\n\n"
              << fs::qr_terminal(*qr) << "\n"
              << link << "\n";
    if (!o.qr_svg.empty()) std::cerr << "QR code written to " << o.qr_svg << "\n";
    std::cout << link << std::endl;
    return 0;
}

// Refuses a unit that is not in the tree (a typo would give a working device whose records
// no reviewer or report sees), unless the administrator said it comes later. Prints why.
int check_unit(fs::store& st, const std::string& unit, bool later) {
    if (later) return 0;
    auto units = st.units();
    if (!units) return failed("cannot read the units: " + units.err().message);
    for (const auto& u : *units)
        if (u.id == unit) return 0;
    std::cerr << "fieldsync-admin: no unit '" << unit << "' in the tree; 'unit list' shows the units (give "
              << "--unit-later if it will be imported later). Nothing was changed.\n";
    return k_exit_usage;
}

int cmd_device_add(const std::string& db, const std::vector<std::string>& args) {
    std::string name, unit;
    fs::device_role role = fs::device_role::field;
    bool enrol = false, unit_later = false;
    enrol_options eo;
    std::string enrol_option;  // an enrolment option given, which needs --enrol
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--enrol") {
            enrol = true;
            continue;
        }
        if (a == "--unit-later") {
            unit_later = true;
            continue;
        }
        if (i + 1 >= args.size()) return usage_error("'" + a + "' needs a value", k_device_add_usage);
        const auto& v = args[++i];
        std::string problem;
        if (a == "--name")
            name = v;
        else if (a == "--unit")
            unit = v;
        else if (a == "--role") {
            const auto r = fs::parse_role(v);
            if (!r) return usage_error("--role must be field, reviewer or admin", k_device_add_usage);
            role = *r;
        } else if (take_enrol_option(a, v, eo, problem)) {
            if (!problem.empty()) return usage_error(problem, k_device_add_usage);
            enrol_option = a;
        } else
            return usage_error("unknown argument '" + a + "'", k_device_add_usage);
    }
    if (name.empty()) return usage_error("--name is required", k_device_add_usage);
    if (unit.empty()) return usage_error("--unit is required", k_device_add_usage);
    if (!enrol && !enrol_option.empty()) return usage_error("'" + enrol_option + "' goes with --enrol", k_device_add_usage);

    return with_store(db, [&](fs::store& st) {
        if (const int code = check_unit(st, unit, unit_later)) return code;
        auto added = st.add_device(name, unit, role);
        if (!added) return failed("cannot add the device: " + added.err().message);
        const auto& id = added->first.id;
        if (enrol) {
            std::cerr << "fieldsync-admin: device " << id << " (" << name << ", unit " << unit << ", "
                      << fs::role_name(role) << ") added; it receives its token by enrolment\n";
            return print_enrolment(st, id, name, eo);
        }
        std::cerr << "fieldsync-admin: device " << id << " (" << name << ", unit " << unit << ", "
                  << fs::role_name(role) << ") added; its token follows, shown only this once\n";
        std::cout << added->second << std::endl;
        return 0;
    });
}

int cmd_device_list(const std::string& db, const std::vector<std::string>& args) {
    if (!args.empty()) return usage_error("device list takes no arguments", k_device_list_usage);
    return with_store(db, [&](fs::store& st) {
        auto list = st.devices();
        if (!list) return failed("cannot list devices: " + list.err().message);
        std::vector<std::vector<std::string>> rows{{"ID", "NAME", "UNIT", "ROLE", "CREATED", "REVOKED", "LAST SYNC"}};
        for (const auto& d : *list)
            rows.push_back({d.id, d.name, d.unit_id, std::string(fs::role_name(d.role)), format_ms(d.created_ms),
                            d.revoked_ms ? format_ms(*d.revoked_ms) : "-", d.ack ? format_ms(d.ack->at_ms) : "-"});
        print_table(rows);
        return 0;
    });
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
    const auto a = take_id(args);
    if (!a || !a->rest.empty()) return usage_error("device revoke takes one device id", k_device_revoke_usage);
    return with_store(db, [&](fs::store& st) {
        const auto d = find_device(st, a->id);
        if (!d) return k_exit_failure;
        const auto done = st.revoke_device(d->id);
        if (!done) return failed("cannot revoke '" + d->id + "': " + done.err().message);
        std::cerr << "fieldsync-admin: device " << d->id << " (" << d->name << ") revoked\n";
        return 0;
    });
}

int cmd_device_rotate(const std::string& db, const std::vector<std::string>& args) {
    const auto a = take_id(args);
    if (!a || !a->rest.empty()) return usage_error("device rotate takes one device id", k_device_rotate_usage);
    return with_store(db, [&](fs::store& st) {
        const auto d = find_device(st, a->id);
        if (!d) return k_exit_failure;
        auto token = st.rotate_device(d->id);
        if (!token) return failed("cannot rotate the token of '" + d->id + "': " + token.err().message);
        std::cerr << "fieldsync-admin: device " << d->id << " (" << d->name
                  << ") has a new token; it follows, shown only this once\n";
        std::cout << *token << std::endl;
        return 0;
    });
}

int cmd_device_move(const std::string& db, const std::vector<std::string>& args) {
    const auto a = take_id(args);
    std::string unit;
    bool unit_later = false;
    for (std::size_t i = 0; a && i < a->rest.size(); ++i) {
        if (a->rest[i] == "--unit-later")
            unit_later = true;
        else if (a->rest[i] == "--unit" && i + 1 < a->rest.size())
            unit = a->rest[++i];
        else
            return usage_error("unknown argument '" + a->rest[i] + "'", k_device_move_usage);
    }
    if (!a || unit.empty()) return usage_error("device move takes a device id and --unit UNIT", k_device_move_usage);
    return with_store(db, [&](fs::store& st) {
        const auto d = find_device(st, a->id);
        if (!d) return k_exit_failure;
        if (const int code = check_unit(st, unit, unit_later)) return code;
        const auto done = st.move_device(d->id, unit);
        if (!done) return failed("cannot move '" + d->id + "': " + done.err().message);
        std::cerr << "fieldsync-admin: device " << d->id << " (" << d->name << ") now belongs to unit " << unit << "\n";
        return 0;
    });
}

int cmd_device_enrol(const std::string& db, const std::vector<std::string>& args) {
    const auto a = take_id(args);
    if (!a) return usage_error("device enrol takes a device id", k_device_enrol_usage);
    enrol_options eo;
    for (std::size_t i = 0; i < a->rest.size(); i += 2) {
        const auto& opt = a->rest[i];
        if (i + 1 >= a->rest.size()) return usage_error("'" + opt + "' needs a value", k_device_enrol_usage);
        std::string problem;
        if (!take_enrol_option(opt, a->rest[i + 1], eo, problem))
            return usage_error("unknown argument '" + opt + "'", k_device_enrol_usage);
        if (!problem.empty()) return usage_error(problem, k_device_enrol_usage);
    }
    return with_store(db, [&](fs::store& st) {
        const auto d = find_device(st, a->id);
        if (!d) return k_exit_failure;
        return print_enrolment(st, d->id, d->name, eo);
    });
}

}  // namespace

const verb_group& device_commands() {
    static const verb_group group{"device",
                                  "add, list, revoke, rotate, move or enrol",
                                  k_device_usage,
                                  {{"add", k_device_add_usage, cmd_device_add},
                                   {"list", k_device_list_usage, cmd_device_list},
                                   {"revoke", k_device_revoke_usage, cmd_device_revoke},
                                   {"rotate", k_device_rotate_usage, cmd_device_rotate},
                                   {"move", k_device_move_usage, cmd_device_move},
                                   {"enrol", k_device_enrol_usage, cmd_device_enrol}}};
    return group;
}

}  // namespace fieldsync::admin
