#include "wire_body.hpp"

#include <fieldsync/protocol/encoding.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <algorithm>
#include <cctype>

namespace fieldsync::client::detail {

namespace {

bool names_cbor(std::string_view content_type) {
    std::string m(content_type.substr(0, content_type.find(';')));
    std::erase_if(m, [](char c) { return c == ' ' || c == '\t'; });
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return m == protocol::cbor_media_type;
}

}  // namespace

std::string_view media_type(body_format format) {
    return format == body_format::cbor ? protocol::cbor_media_type : protocol::json_media_type;
}

std::string encode_body(const json& body, body_format format) {
    return format == body_format::cbor ? protocol::to_cbor(body) : body.dump();
}

protocol::expected<json> decode_answer(const http_response& answer) {
    bool cbor;
    if (!answer.content_type.empty()) {
        cbor = names_cbor(answer.content_type);
    } else {
        const auto first = answer.body.find_first_not_of(" \t\r\n");
        cbor = first != std::string::npos && answer.body[first] != '{';
    }
    if (cbor) return protocol::parse_cbor(answer.body, protocol::tuning::max_json_depth);
    return protocol::parse_json(answer.body, protocol::tuning::max_json_depth);
}

}  // namespace fieldsync::client::detail
