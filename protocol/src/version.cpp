#include <fieldsync/protocol/version.hpp>

#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/protocol/messages.hpp>


namespace fieldsync::protocol {

std::optional<std::int64_t> parse_version(std::string_view text) noexcept {
    const auto v = parse_decimal(text);
    if (!v || *v < 1) return std::nullopt;
    return v;
}

client_standing standing(const client_versions& c, const server_versions& s) noexcept {
    if (c.protocol > s.protocol) return client_standing::too_new;
    if (c.protocol < s.min_protocol || c.schema < s.min_schema) return client_standing::too_old;
    if (c.protocol < s.protocol || c.schema < s.schema) return client_standing::older;
    return client_standing::current;
}

json encode(const server_versions& v) {
    return {{"protocol", v.protocol}, {"min_protocol", v.min_protocol}, {"schema", v.schema},
            {"min_schema", v.min_schema}};
}

json encode(const upgrade_notice& u) {
    auto j = encode(u.server);
    j["required"] = u.required;
    return j;
}

std::optional<server_versions> decode_server_versions(const json& j) {
    if (!j.is_object()) return std::nullopt;
    server_versions v;
    for (auto [name, field] : {std::pair{"protocol", &v.protocol}, std::pair{"min_protocol", &v.min_protocol},
                               std::pair{"schema", &v.schema}, std::pair{"min_schema", &v.min_schema}}) {
        const auto it = j.find(name);
        if (it == j.end()) return std::nullopt;
        const auto n = as_int64(*it, 1);
        if (!n) return std::nullopt;
        *field = *n;
    }
    return v;
}

std::optional<upgrade_notice> decode_upgrade_notice(const json& j) {
    auto v = decode_server_versions(j);
    if (!v) return std::nullopt;
    const auto r = j.find("required");
    if (r == j.end() || !r->is_boolean()) return std::nullopt;
    return upgrade_notice{r->get<bool>(), *v};
}

}  // namespace fieldsync::protocol
