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
    for (const auto& dev : d.devices) {
        const auto role = server::parse_role(dev.role);
        if (!role) return error{errc::internal, "demo device with an unknown role '" + dev.role + "'"};
        auto added = st.add_device(dev.name, dev.unit_id, *role);
        if (!added) return added.err();
        if (!writer && *role == server::device_role::admin) writer = added->first;
        out.devices.emplace_back(dev, added->second);
    }
    if (!writer) {
        auto added = st.add_device("demo loader", d.units.empty() ? "demo" : d.units.front().id,
                                   server::device_role::admin);
        if (!added) return added.err();
        writer = added->first;
    }
    // The device as authenticate() shows it, with its unit path resolved.
    if (auto all = st.devices())
        for (const auto& dev : *all)
            if (dev.id == writer->id) writer = dev;

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
    return out;
}

}  // namespace fieldsync::demo
