// `fieldsync-admin device add|list|revoke|rotate|move`: the devices and their tokens.

#include "fieldsync-admin-devices.hpp"

#include <iostream>
#include <optional>

namespace fieldsync::admin {

namespace {

namespace fs = fieldsync::server;

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

int cmd_device_add(const std::string& db, const std::vector<std::string>& args) {
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

    return with_store(db, [&](fs::store& st) {
        auto added = st.add_device(name, unit, role);
        if (!added) return failed("cannot add the device: " + added.err().message);
        std::cerr << "fieldsync-admin: device " << added->first.id << " (" << name << ", unit " << unit << ", "
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
        const auto done = st.revoke_device(a->id);
        if (!done) return failed("cannot revoke '" + a->id + "': " + done.err().message);
        std::cerr << "fieldsync-admin: device " << a->id << " revoked\n";
        return 0;
    });
}

int cmd_device_rotate(const std::string& db, const std::vector<std::string>& args) {
    const auto a = take_id(args);
    if (!a || !a->rest.empty()) return usage_error("device rotate takes one device id", k_device_rotate_usage);
    return with_store(db, [&](fs::store& st) {
        auto token = st.rotate_device(a->id);
        if (!token) return failed("cannot rotate the token of '" + a->id + "': " + token.err().message);
        std::cerr << "fieldsync-admin: device " << a->id << " has a new token; it follows, shown only this once\n";
        std::cout << *token << std::endl;
        return 0;
    });
}

int cmd_device_move(const std::string& db, const std::vector<std::string>& args) {
    const auto a = take_id(args);
    if (!a || a->rest.size() != 2 || a->rest[0] != "--unit" || a->rest[1].empty())
        return usage_error("device move takes a device id and --unit UNIT", k_device_move_usage);
    return with_store(db, [&](fs::store& st) {
        const auto done = st.move_device(a->id, a->rest[1]);
        if (!done) return failed("cannot move '" + a->id + "': " + done.err().message);
        std::cerr << "fieldsync-admin: device " << a->id << " now belongs to unit " << a->rest[1] << "\n";
        return 0;
    });
}

}  // namespace

const verb_group& device_commands() {
    static const verb_group group{"device",
                                  "add, list, revoke, rotate or move",
                                  k_device_usage,
                                  {{"add", k_device_add_usage, cmd_device_add},
                                   {"list", k_device_list_usage, cmd_device_list},
                                   {"revoke", k_device_revoke_usage, cmd_device_revoke},
                                   {"rotate", k_device_rotate_usage, cmd_device_rotate},
                                   {"move", k_device_move_usage, cmd_device_move}}};
    return group;
}

}  // namespace fieldsync::admin
