#include <fieldsync/protocol/error.hpp>

#include <array>

namespace fieldsync::protocol {
namespace {

struct code_info {
    errc code;
    std::string_view name;
    int http;
    retry_class retry;
};

// The one table of codes: wire names, HTTP status and retry class. SPEC.md copies it.
constexpr std::array k_codes{
    code_info{errc::ok, "ok", 200, retry_class::none},
    code_info{errc::bad_json, "bad_json", 400, retry_class::permanent},
    code_info{errc::bad_utf8, "bad_utf8", 400, retry_class::permanent},
    code_info{errc::too_deep, "too_deep", 400, retry_class::permanent},
    code_info{errc::bad_request, "bad_request", 400, retry_class::permanent},
    code_info{errc::duplicate_change_id, "duplicate_change_id", 400, retry_class::permanent},
    code_info{errc::too_many_changes, "too_many_changes", 400, retry_class::permanent},
    code_info{errc::bad_cursor, "bad_cursor", 400, retry_class::permanent},
    code_info{errc::body_too_large, "body_too_large", 413, retry_class::permanent},
    code_info{errc::header_too_large, "header_too_large", 431, retry_class::permanent},
    code_info{errc::unsupported_media_type, "unsupported_media_type", 415, retry_class::permanent},
    code_info{errc::not_found, "not_found", 404, retry_class::permanent},
    code_info{errc::method_not_allowed, "method_not_allowed", 405, retry_class::permanent},
    code_info{errc::unauthorized, "unauthorized", 401, retry_class::permanent},
    code_info{errc::forbidden, "forbidden", 403, retry_class::permanent},
    code_info{errc::timeout, "timeout", 408, retry_class::transient},
    code_info{errc::bad_field, "bad_field", 400, retry_class::permanent},
    code_info{errc::bad_version, "bad_version", 400, retry_class::permanent},
    code_info{errc::unknown_collection, "unknown_collection", 400, retry_class::permanent},
    code_info{errc::base_ahead, "base_ahead", 409, retry_class::again},
    code_info{errc::unknown_base, "unknown_base", 409, retry_class::again},
    code_info{errc::schema_violation, "schema_violation", 400, retry_class::permanent},
    code_info{errc::out_of_scope, "out_of_scope", 403, retry_class::permanent},
    code_info{errc::stale, "stale", 409, retry_class::again},
    code_info{errc::conflict_closed, "conflict_closed", 409, retry_class::permanent},
    code_info{errc::rate_limited, "rate_limited", 429, retry_class::transient},
    code_info{errc::enrolment_used, "enrolment_used", 410, retry_class::permanent},
    code_info{errc::enrolment_expired, "enrolment_expired", 410, retry_class::permanent},
    code_info{errc::unavailable, "unavailable", 503, retry_class::transient},
    code_info{errc::storage_error, "storage_error", 500, retry_class::transient},
    code_info{errc::unsupported_protocol, "unsupported_protocol", 400, retry_class::permanent},
    code_info{errc::client_too_old, "client_too_old", 426, retry_class::permanent},
    code_info{errc::internal, "internal", 500, retry_class::transient},
    code_info{errc::blob_too_large, "blob_too_large", 413, retry_class::permanent},
    code_info{errc::blob_type_refused, "blob_type_refused", 415, retry_class::permanent},
    code_info{errc::blob_hash_mismatch, "blob_hash_mismatch", 422, retry_class::permanent},
    code_info{errc::upload_offset, "upload_offset", 409, retry_class::again},
    code_info{errc::blob_quota, "blob_quota", 429, retry_class::transient},
    code_info{errc::range_not_satisfiable, "range_not_satisfiable", 416, retry_class::permanent},
};

const code_info* find(errc e) noexcept {
    for (const auto& c : k_codes)
        if (c.code == e) return &c;
    return nullptr;
}

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "fieldsync.protocol"; }
    std::string message(int v) const override { return std::string(errc_name(static_cast<errc>(v))); }
};

}  // namespace

const std::error_category& protocol_category() noexcept {
    static const category c;
    return c;
}

std::string_view errc_name(errc e) noexcept {
    const auto* c = find(e);
    return c ? c->name : "internal";
}

errc errc_from_name(std::string_view name) noexcept {
    for (const auto& c : k_codes)
        if (c.name == name) return c.code;
    return errc::internal;
}

int http_status(errc e) noexcept {
    const auto* c = find(e);
    return c ? c->http : 500;
}

retry_class classify(errc e) noexcept {
    const auto* c = find(e);
    return c ? c->retry : retry_class::transient;
}

}  // namespace fieldsync::protocol
