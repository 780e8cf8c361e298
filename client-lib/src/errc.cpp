#include <fieldsync/client/errc.hpp>

namespace fieldsync::client {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "fieldsync.client"; }
    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
            case errc::ok: return "ok";
            case errc::invalid_argument: return "invalid argument";
            case errc::invalid_json: return "invalid JSON";
            case errc::invalid_utf8: return "invalid UTF-8";
            case errc::schema_violation: return "schema violation";
            case errc::not_found: return "record not found";
            case errc::not_configured: return "no server configured";
            case errc::storage: return "local storage failure";
            case errc::network: return "network failure";
            case errc::timeout: return "timed out";
            case errc::server_unavailable: return "server unavailable";
            case errc::unauthorized: return "unauthorized";
            case errc::forbidden: return "forbidden";
            case errc::bad_request: return "request refused by the server";
            case errc::bad_response: return "invalid response from the server";
            case errc::cancelled: return "cancelled";
            case errc::busy: return "a sync is already running";
            case errc::unsupported: return "not supported by this build";
            case errc::internal: return "internal error";
            case errc::server_too_old: return "the server is too old for this client";
            case errc::client_too_old: return "this client is too old for the server";
            case errc::tls: return "TLS failure: the server's certificate was not accepted";
        }
        return "unknown error";
    }
};

}  // namespace

const std::error_category& client_category() noexcept {
    static const category c;
    return c;
}

protocol::retry_class classify(errc e) noexcept {
    switch (e) {
        case errc::ok: return protocol::retry_class::none;
        case errc::network:
        case errc::timeout:
        case errc::server_unavailable:
        case errc::busy:
        case errc::storage:  // SQLITE_BUSY from another process; a full disk may be freed
            return protocol::retry_class::transient;
        // errc::tls is permanent on purpose: the same server presents the same certificate a
        // second later, and a certificate that fails verification may be an interception, not
        // a network fault (ARCHITECTURE.md, "Hardened access").
        default: return protocol::retry_class::permanent;
    }
}

}  // namespace fieldsync::client
