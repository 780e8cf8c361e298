#pragma once
// The schema of collections (SPEC.md, "Schema"): per collection its fields, their types,
// which are required, and the merge policy used when concurrent edits collide. Loaded from a
// JSON file; the default schema (protocol/schema/default.json, the collections of domain.md)
// is compiled in. Fields not named in the schema are kept as they are, so that an older
// server or client never drops data written by a newer one. Immutable after loading and safe
// to share between threads.

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/json_input.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::protocol {

enum class field_type { string, integer, number, boolean, object, array, date, attachment, any };
enum class merge_policy { review, lww };

std::string_view merge_policy_name(merge_policy p) noexcept;

struct field_spec {
    field_type type = field_type::any;
    bool required = false;
    std::optional<std::size_t> max_length;    // strings: bytes of UTF-8
    std::vector<std::string> one_of;          // strings: allowed values when not empty
    std::optional<field_type> items;          // arrays: type of every element
    std::string ref;                          // forms: the collection whose record's id it holds, or ""
};

struct collection_schema {
    std::string name;
    merge_policy policy = merge_policy::review;
    std::map<std::string, field_spec, std::less<>> fields;
    /// Forms: the 0 to 3 fields whose values name a record (`title`, SPEC.md, "Forms from the
    /// schema"), in order.
    std::vector<std::string> title;
};

/// Names a referenced record: (the ref's collection, the id held) -> that record's title, ""
/// when it is not known. `units` names a unit of the tree.
using ref_namer = std::function<std::string(const std::string& collection, const std::string& id)>;

/// A record's title (SPEC.md, "Forms from the schema"): the values of the collection's title
/// fields that are not empty, joined with ", "; a field with `ref` gives the referenced
/// record's title by `name_ref`, an integer its decimal digits. "" when the collection names
/// no title field or the values are missing.
std::string record_title(const collection_schema& c, const json& record, const ref_namer& name_ref);

class schema {
public:
    /// Parses a schema document (format in SPEC.md); a bad document is an error naming where.
    static expected<schema> from_json(const json& doc);
    /// The compiled-in default schema.
    static const schema& default_schema();
    /// The default schema's source text, as shipped in protocol/schema/default.json.
    static std::string_view default_schema_text() noexcept;

    const collection_schema* find(std::string_view collection) const;
    std::int64_t version() const noexcept { return version_; }
    /// The oldest client schema version the server still serves pulls to (SPEC.md, "Versions
    /// and the handshake"): `min_client_schema` in the document, 1 when absent.
    std::int64_t min_client_version() const noexcept { return min_client_version_; }
    const std::map<std::string, collection_schema, std::less<>>& collections() const { return collections_; }
    /// The document this schema was parsed from, as given (GET /v1/schema serves it; the
    /// store keeps it, so every tool opening the store reads the schema the server serves).
    const json& document() const noexcept { return document_; }

    /// Checks a whole record against its collection: nullopt if it conforms, else a
    /// schema_violation error whose message names the field.
    std::optional<error> validate(const collection_schema& c, const json& record) const;

private:
    std::int64_t version_ = 1;
    std::int64_t min_client_version_ = 1;
    std::map<std::string, collection_schema, std::less<>> collections_;
    json document_;
};

}  // namespace fieldsync::protocol
