#pragma once
// Attachments (SPEC.md, "Attachments"): the reference a record holds for a file, the content
// types a server keeps, and the magic bytes that tell them apart. Shared by the server (which
// checks uploads and finds the blobs a version names) and the clients (which make references).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fieldsync::protocol {

/// A file's reference, as a record holds it.
struct attachment_ref {
    std::string sha256;        // 64 lowercase hex digits
    std::int64_t size = 0;     // bytes
    std::string content_type;  // one of allowed_content_types()
    std::string name;          // what people call the file; never a path
};

/// The content types a server keeps: JPEG, PNG, WebP, PDF.
const std::vector<std::string_view>& allowed_content_types() noexcept;
bool content_type_allowed(std::string_view type) noexcept;

/// The type the first bytes show, or "" when they are none of the allowed types (or too few
/// to tell: WebP needs 12 bytes, PNG 8, PDF 5, JPEG 3).
std::string_view sniff_content_type(std::string_view first_bytes) noexcept;

/// True for 64 lowercase hex digits.
bool is_sha256_hex(std::string_view s) noexcept;

/// The reference in `v` when it has exactly the members of one and each is well formed
/// (sizes from 1 to 2^53; the server's own limit is checked at upload). Otherwise nullopt,
/// and `why` (when given) says what is wrong, in words for the schema's message.
std::optional<attachment_ref> parse_attachment(const nlohmann::json& v, std::string* why = nullptr);
nlohmann::json to_json(const attachment_ref& a);

/// Every attachment-shaped object anywhere in `record` (fields, array elements, nested
/// objects), in document order, duplicates kept. What the server indexes per version.
std::vector<attachment_ref> find_attachments(const nlohmann::json& record);

}  // namespace fieldsync::protocol
