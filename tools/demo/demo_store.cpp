#include "demo/demo_store.hpp"

#include <map>
#include <set>

namespace fieldsync::demo {

namespace {
// Change-sets of this many changes: well under the protocol's limit per batch, and large
// enough that the load is a few dozen group commits.
constexpr std::size_t k_batch = 500;
}  // namespace

protocol::expected<load_result> load(server::store& st, const data_set& d) {
    using protocol::errc;
    using protocol::error;
    auto units = st.units();
    if (!units) return units.err();
    auto feed = st.pull(0, 1);
    if (!feed) return feed.err();
    if (!units->empty() || !feed->changes.empty())
        return error{errc::bad_request, "the store already holds units or records; the demo loads into an empty store"};

    for (const auto& u : d.units) {
        auto put = st.put_unit({u.id, u.parent, u.name, u.kind, ""});
        if (!put) return put.err();
    }
    load_result out;
    std::optional<server::device> writer;
    std::vector<server::device> demo_devices;   // as d.devices
    for (const auto& dev : d.devices) {
        const auto role = server::parse_role(dev.role);
        if (!role) return error{errc::internal, "demo device with an unknown role '" + dev.role + "'"};
        auto added = st.add_device(dev.name, dev.unit_id, *role);
        if (!added) return added.err();
        if (!writer && *role == server::device_role::admin) writer = added->first;
        demo_devices.push_back(added->first);
        out.devices.emplace_back(dev, added->second);
    }
    if (!writer) {
        auto added = st.add_device("demo loader", d.units.empty() ? "demo" : d.units.front().id,
                                   server::device_role::admin);
        if (!added) return added.err();
        writer = added->first;
    }
    // The devices as authenticate() shows them, with their unit paths resolved.
    if (auto all = st.devices())
        for (const auto& dev : *all) {
            if (dev.id == writer->id) writer = dev;
            for (auto& mine : demo_devices)
                if (mine.id == dev.id) mine = dev;
        }

    std::map<std::pair<std::string, std::string>, std::int64_t> versions;
    std::size_t next_change = 0, next_batch = 0;
    protocol::change_set cs;
    std::set<std::pair<std::string, std::string>> in_batch;
    auto push_pending = [&]() -> std::optional<error> {
        const auto sent = cs.changes;
        if (sent.empty()) return std::nullopt;
        cs.batch_id = "demo-batch-" + std::to_string(++next_batch);
        auto results = st.push(*writer, std::move(cs));
        cs = {};
        in_batch.clear();
        if (!results) return results.err();
        for (std::size_t i = 0; i < results->size(); ++i) {
            const auto& res = (*results)[i];
            const auto& c = sent[i].c;
            if (res.status != protocol::change_status::applied)
                return error{errc::internal, "the store did not apply the demo's " + c.collection + "/" + c.id + ": " +
                                                 (res.err ? res.err->message : std::string(protocol::status_name(res.status)))};
            versions[{c.collection, c.id}] = res.version;
        }
        return std::nullopt;
    };
    for (const auto& rec : d.records) {
        const auto key = std::pair{rec.collection, rec.id};
        // A second write of a record waits for the first one's version.
        if (cs.changes.size() >= k_batch || in_batch.count(key))
            if (auto e = push_pending()) return *e;
        protocol::change c;
        c.change_id = "demo-" + std::to_string(++next_change);
        c.collection = rec.collection;
        c.id = rec.id;
        c.unit_id = rec.unit_id;
        c.op = protocol::op_kind::put;
        const auto known = versions.find(key);
        c.base_version = known == versions.end() ? 0 : known->second;
        if (known == versions.end()) ++out.records;
        c.data = rec.data;
        cs.changes.push_back({std::move(c), std::nullopt});
        in_batch.insert(key);
        ++out.versions;
    }
    if (auto e = push_pending()) return *e;

    // The races: each device sends its change from the same version, as its sync would; the
    // second opens a conflict, which the commune's reviewer may then decide.
    for (const auto& race : d.races) {
        const auto key = std::pair{race.collection, race.id};
        const auto at = versions.find(key);
        if (at == versions.end() || race.first_device >= demo_devices.size() || race.second_device >= demo_devices.size() ||
            race.reviewer >= demo_devices.size())
            return error{errc::internal, "a demo race names no record or device: " + race.collection + "/" + race.id};
        const auto base = at->second;
        auto send = [&](std::size_t who, const json& data) {
            protocol::change c;
            c.change_id = "demo-race-" + std::to_string(++next_change);
            c.collection = race.collection;
            c.id = race.id;
            c.unit_id = race.unit_id;
            c.op = data.is_null() ? protocol::op_kind::del : protocol::op_kind::put;
            c.base_version = base;
            c.data = data;
            protocol::change_set one;
            one.batch_id = "demo-race-batch-" + std::to_string(++next_batch);
            one.changes.push_back({std::move(c), std::nullopt});
            return st.push(demo_devices[who], std::move(one));
        };
        auto first = send(race.first_device, race.first);
        if (!first) return first.err();
        if (first->size() != 1 || (*first)[0].status != protocol::change_status::applied)
            return error{errc::internal, "the demo race's first change to " + race.collection + "/" + race.id + " was not applied"};
        versions[key] = (*first)[0].version;
        ++out.versions;
        auto second = send(race.second_device, race.second);
        if (!second) return second.err();
        if (second->size() != 1 || (*second)[0].status != protocol::change_status::conflict || !(*second)[0].conflict_id)
            return error{errc::internal, "the demo race on " + race.collection + "/" + race.id + " opened no conflict"};
        const auto conflict_id = *(*second)[0].conflict_id;
        out.conflicts.push_back(conflict_id);
        if (race.outcome == "open") continue;
        server::resolution r;
        const auto choice = server::parse_choice(race.outcome == "dismissed" ? "dismiss" : race.choice);
        if (!choice) return error{errc::internal, "a demo race with an unknown choice '" + race.choice + "'"};
        r.how = *choice;
        r.head_version = versions[key];
        r.note = race.note;
        auto decided = st.resolve(demo_devices[race.reviewer], conflict_id, r);
        if (!decided) return decided.err();
        if (decided->current_version > versions[key]) {
            versions[key] = decided->current_version;
            ++out.versions;
        }
    }
    return out;
}

}  // namespace fieldsync::demo
