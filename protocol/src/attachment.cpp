#include <fieldsync/protocol/attachment.hpp>

namespace fieldsync::protocol {

namespace {
constexpr std::size_t k_max_name_bytes = 255;
constexpr std::int64_t k_max_size = std::int64_t{1} << 53;

void collect(const nlohmann::json& v, std::vector<attachment_ref>& out, int depth) {
    if (depth > 64) return;  // input is depth-checked long before; this only bounds recursion
    if (v.is_object()) {
        if (auto a = parse_attachment(v)) {
            out.push_back(std::move(*a));
            return;
        }
        for (const auto& [_, x] : v.items()) collect(x, out, depth + 1);
    } else if (v.is_array()) {
        for (const auto& x : v) collect(x, out, depth + 1);
    }
}
}  // namespace

const std::vector<std::string_view>& allowed_content_types() noexcept {
    static const std::vector<std::string_view> types{"image/jpeg", "image/png", "image/webp", "application/pdf"};
    return types;
}

bool content_type_allowed(std::string_view type) noexcept {
    for (const auto t : allowed_content_types())
        if (t == type) return true;
    return false;
}

std::string_view sniff_content_type(std::string_view b) noexcept {
    if (b.size() >= 3 && b.substr(0, 3) == std::string_view("\xFF\xD8\xFF", 3)) return "image/jpeg";
    if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1A\n", 8)) return "image/png";
    if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return "image/webp";
    if (b.size() >= 5 && b.substr(0, 5) == "%PDF-") return "application/pdf";
    return {};
}

bool is_sha256_hex(std::string_view s) noexcept {
    if (s.size() != 64) return false;
    for (const char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::optional<attachment_ref> parse_attachment(const nlohmann::json& v, std::string* why) {
    auto fail = [&](const char* w) -> std::optional<attachment_ref> {
        if (why) *why = w;
        return std::nullopt;
    };
    if (!v.is_object()) return fail("must be an attachment object {sha256, size, content_type, name}");
    if (v.size() != 4) return fail("must have exactly the members sha256, size, content_type and name");
    const auto sha = v.find("sha256");
    const auto size = v.find("size");
    const auto type = v.find("content_type");
    const auto name = v.find("name");
    if (sha == v.end() || size == v.end() || type == v.end() || name == v.end())
        return fail("must have exactly the members sha256, size, content_type and name");
    if (!sha->is_string() || !is_sha256_hex(sha->get_ref<const std::string&>()))
        return fail("sha256 must be 64 lowercase hex digits");
    if (!size->is_number_integer() || size->get<std::int64_t>() < 1 || size->get<std::int64_t>() > k_max_size)
        return fail("size must be a positive integer");
    if (!type->is_string() || !content_type_allowed(type->get_ref<const std::string&>()))
        return fail("content_type must be image/jpeg, image/png, image/webp or application/pdf");
    if (!name->is_string() || name->get_ref<const std::string&>().empty() ||
        name->get_ref<const std::string&>().size() > k_max_name_bytes)
        return fail("name must be 1 to 255 bytes");
    return attachment_ref{sha->get<std::string>(), size->get<std::int64_t>(), type->get<std::string>(),
                          name->get<std::string>()};
}

nlohmann::json to_json(const attachment_ref& a) {
    return {{"sha256", a.sha256}, {"size", a.size}, {"content_type", a.content_type}, {"name", a.name}};
}

std::vector<attachment_ref> find_attachments(const nlohmann::json& record) {
    std::vector<attachment_ref> out;
    collect(record, out, 0);
    return out;
}

}  // namespace fieldsync::protocol
