#include "http/devices.hpp"

#include "http/encoding.hpp"

#include <fieldsync/server/qr.hpp>

#include <algorithm>
#include <map>

namespace fieldsync::server::detail {

namespace proto = fieldsync::protocol;
using proto::errc;

namespace {

std::optional<proto::error> may_manage_devices(const device& d) {
    if (d.role != device_role::admin) return proto::error{errc::forbidden, "devices are managed by admin devices"};
    return std::nullopt;
}

// The server's address as the phone reaches it, from the page ({"server": location.origin}):
// an http(s) origin, without path, query or fragment.
std::optional<std::string> link_base(const json& v) {
    if (!v.is_string()) return std::nullopt;
    std::string s = v.get<std::string>();
    while (s.ends_with("/")) s.pop_back();
    const bool scheme = s.starts_with("https://") || s.starts_with("http://");
    const auto host = s.substr(s.find("//") + 2);
    const bool clean = std::none_of(s.begin(), s.end(), [](unsigned char c) {
        return c <= ' ' || c == '#' || c == '?' || c == '"' || c == '<' || c == '>' || c >= 0x7f;
    });
    if (!scheme || host.empty() || host.find('/') != std::string::npos || !clean || s.size() > 200) return std::nullopt;
    return s;
}

}  // namespace

response device_list(directory_store& st, const admitted& a, const request& req) {
    if (auto refused = may_manage_devices(*a.dev)) return answer(req, *refused);
    auto devices = st.devices();
    if (!devices) return answer(req, devices.err());
    auto units = st.units();
    if (!units) return answer(req, units.err());
    auto syncs = st.last_syncs();
    if (!syncs) return answer(req, syncs.err());
    std::map<std::string, std::string> unit_names;
    for (const auto& u : *units) unit_names[u.id] = u.name;
    std::map<std::string, std::int64_t> last_sync;
    for (const auto& [id, ms] : *syncs) last_sync[id] = ms;
    json out = json::array();
    for (const auto& d : *devices) {
        const auto sync = last_sync.find(d.id);
        out.push_back({{"id", d.id},
                       {"name", d.name},
                       {"unit_id", d.unit_id},
                       {"unit_name", unit_names.contains(d.unit_id) ? json(unit_names[d.unit_id]) : json(nullptr)},
                       {"role", role_name(d.role)},
                       {"created_ms", d.created_ms},
                       {"revoked", d.revoked_ms.has_value()},
                       {"last_sync_ms", sync == last_sync.end() ? json(nullptr) : json(sync->second)}});
    }
    return answer(req, json{{"devices", std::move(out)}});
}

response device_enrol(directory_store& st, const admitted& a, const request& req) {
    if (auto refused = may_manage_devices(*a.dev)) return answer(req, *refused);
    auto body = parse_body(req);
    if (!body) return answer(req, body.err());
    const auto* server = body->is_object() && body->contains("server") ? &(*body)["server"] : nullptr;
    const auto base = server ? link_base(*server) : std::nullopt;
    if (!base)
        return answer(req, proto::error{errc::bad_request,
                                        "POST /v1/devices/{id}/enrol takes {\"server\": \"https://host[:port]\", "
                                        "\"valid_hours\"?: 1..720}"});
    std::int64_t hours = 24;
    if (body->contains("valid_hours")) {
        const auto& h = (*body)["valid_hours"];
        if (!h.is_number_integer() || h.get<std::int64_t>() < 1 || h.get<std::int64_t>() > 720)
            return answer(req, proto::error{errc::bad_request, "valid_hours must be an integer from 1 to 720"});
        hours = h.get<std::int64_t>();
    }
    auto e = st.enrol_device(a.params[0], std::chrono::hours(hours));
    if (!e) return answer(req, e.err());
    // The code travels in the fragment, which browsers never send to a server or write to its logs.
    const std::string link = *base + "/app/#enrol=" + e->code;
    const auto qr = make_qr(link);
    return answer(req, json{{"device_id", e->device_id},
                            {"code", e->code},
                            {"link", link},
                            {"expires_ms", e->expires_ms},
                            {"qr_svg", qr ? json(qr_svg(*qr)) : json(nullptr)}});
}

}  // namespace fieldsync::server::detail
