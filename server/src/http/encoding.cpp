#include "http/encoding.hpp"

#include <fieldsync/protocol/encoding.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/tuning.hpp>
#include <fieldsync/server/tuning.hpp>

#include <boost/beast/core/string.hpp>

namespace fieldsync::server::detail {

namespace beast = boost::beast;
namespace proto = fieldsync::protocol;
using proto::errc;

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The media type of a Content-Type value, without parameters.
std::string_view media_type(std::string_view value) { return trim(value.substr(0, value.find(';'))); }

// Whether a comma-separated header list (Accept, Accept-Encoding) names `token`, with a q
// value other than 0. "*" or "*/*" alone do not count: JSON and identity stay the default.
bool list_accepts(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        auto item = list.substr(0, comma);
        const auto semi = item.find(';');
        const auto name = trim(item.substr(0, semi));
        if (beast::iequals(name, token)) {
            if (semi == std::string_view::npos) return true;
            auto params = item.substr(semi + 1);
            const auto q = params.find("q=");
            if (q == std::string_view::npos) return true;
            const auto value = trim(params.substr(q + 2));
            // q=0, q=0.0, q=0.000: refused; anything else is some preference.
            return !(value.substr(0, 1) == "0" && value.find_first_not_of("0.", 0) == std::string_view::npos);
        }
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

bool is_cbor(const request& req) {
    const auto ct = req.find(http::field::content_type);
    return ct != req.end() && beast::iequals(media_type(ct->value()), proto::cbor_media_type);
}

}  // namespace

bool content_encoding_supported(const request& req) {
    const auto ce = req.find(http::field::content_encoding);
    if (ce == req.end()) return true;
    const auto v = trim(ce->value());
    return v.empty() || beast::iequals(v, "identity") || beast::iequals(v, "gzip");
}

std::optional<proto::error> decode_content_encoding(request& req, std::size_t limit) {
    const auto ce = req.find(http::field::content_encoding);
    if (ce == req.end()) return std::nullopt;
    const auto v = trim(ce->value());
    if (v.empty() || beast::iequals(v, "identity")) return std::nullopt;
    if (!beast::iequals(v, "gzip"))
        return proto::error{errc::unsupported_media_type, "Content-Encoding must be gzip or identity"};
    std::string inflated;
    switch (proto::gunzip(req.body(), limit, inflated)) {
        case proto::gunzip_status::ok: break;
        case proto::gunzip_status::too_large:
            return proto::error{errc::body_too_large,
                                "the request body inflates to more than " + std::to_string(limit) + " bytes"};
        case proto::gunzip_status::malformed:
            return proto::error{errc::bad_request, "the request body is not a well-formed gzip stream"};
    }
    req.body() = std::move(inflated);
    req.erase(http::field::content_encoding);
    return std::nullopt;
}

bool is_sync_media_type(const request& req) {
    const auto ct = req.find(http::field::content_type);
    if (ct == req.end()) return false;
    const auto m = media_type(ct->value());
    return beast::iequals(m, proto::json_media_type) || beast::iequals(m, proto::cbor_media_type);
}

proto::expected<json> parse_body(const request& req) {
    if (is_cbor(req)) return proto::parse_cbor(req.body(), proto::tuning::max_json_depth);
    return proto::parse_json(req.body(), proto::tuning::max_json_depth);
}

response encoded_response(const request& req, http::status status, const json& body) {
    const auto accept = req.find(http::field::accept);
    if (accept == req.end() || !list_accepts(accept->value(), proto::cbor_media_type))
        return json_response(req.version(), req.keep_alive(), status, body);
    response res{status, req.version()};
    res.set(http::field::server, "fieldsync/0.1");
    res.set(http::field::content_type, proto::cbor_media_type);
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = proto::to_cbor(body);
    res.prepare_payload();
    return res;
}

response answer(const request& req, const json& body) { return encoded_response(req, http::status::ok, body); }

response answer(const request& req, const proto::sync_response& body) {
    const auto accept = req.find(http::field::accept);
    if (accept != req.end() && list_accepts(accept->value(), proto::cbor_media_type))
        return encoded_response(req, http::status::ok, proto::encode(body));
    return json_text_response(req.version(), req.keep_alive(), http::status::ok, proto::encode_json(body));
}

response answer(const request& req, const proto::error& e) { return error_response(req.version(), req.keep_alive(), e); }

bool accepts_gzip(const request& req) {
    const auto ae = req.find(http::field::accept_encoding);
    return ae != req.end() && list_accepts(ae->value(), "gzip");
}

void gzip_response(response& res) {
    // Attachments are compressed already (JPEG, PNG, WebP, PDF), and a range of one names
    // bytes of the blob, not of a gzip stream: they always go as they are.
    if (res.find(http::field::accept_ranges) != res.end()) return;
    res.set(http::field::vary, "Accept-Encoding");
    if (res.body().size() < tuning::gzip_min_bytes || res.find(http::field::content_encoding) != res.end()) return;
    // Runs in the answer's completion handler, past the router's catch blocks: a failure to
    // compress (zlib out of memory) sends the answer plain rather than escaping the handler.
    try {
        auto packed = proto::gzip(res.body());
        res.body() = std::move(packed);
        res.set(http::field::content_encoding, "gzip");
        res.prepare_payload();
    } catch (...) {
    }
}

}  // namespace fieldsync::server::detail
