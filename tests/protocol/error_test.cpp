// The error codes are a wire contract: names, HTTP statuses and retry classes must not change
// once released (SPEC.md, "Errors", copies this table).
#include <fieldsync/protocol/error.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace fp = fieldsync::protocol;
using fp::errc;
using fp::retry_class;

namespace {

struct expected_code {
    errc code;
    const char* name;
    int http;
    retry_class retry;
};

// Written out by hand, not derived from the implementation's table, so that a change to the
// contract fails here first.
const expected_code k_contract[] = {
    {errc::ok, "ok", 200, retry_class::none},
    {errc::bad_json, "bad_json", 400, retry_class::permanent},
    {errc::bad_utf8, "bad_utf8", 400, retry_class::permanent},
    {errc::too_deep, "too_deep", 400, retry_class::permanent},
    {errc::bad_request, "bad_request", 400, retry_class::permanent},
    {errc::duplicate_change_id, "duplicate_change_id", 400, retry_class::permanent},
    {errc::too_many_changes, "too_many_changes", 400, retry_class::permanent},
    {errc::bad_cursor, "bad_cursor", 400, retry_class::permanent},
    {errc::body_too_large, "body_too_large", 413, retry_class::permanent},
    {errc::header_too_large, "header_too_large", 431, retry_class::permanent},
    {errc::unsupported_media_type, "unsupported_media_type", 415, retry_class::permanent},
    {errc::not_found, "not_found", 404, retry_class::permanent},
    {errc::method_not_allowed, "method_not_allowed", 405, retry_class::permanent},
    {errc::unauthorized, "unauthorized", 401, retry_class::permanent},
    {errc::forbidden, "forbidden", 403, retry_class::permanent},
    {errc::timeout, "timeout", 408, retry_class::transient},
    {errc::bad_field, "bad_field", 400, retry_class::permanent},
    {errc::bad_version, "bad_version", 400, retry_class::permanent},
    {errc::unknown_collection, "unknown_collection", 400, retry_class::permanent},
    {errc::base_ahead, "base_ahead", 409, retry_class::again},
    {errc::unknown_base, "unknown_base", 409, retry_class::again},
    {errc::schema_violation, "schema_violation", 400, retry_class::permanent},
    {errc::out_of_scope, "out_of_scope", 403, retry_class::permanent},
    {errc::stale, "stale", 409, retry_class::again},
    {errc::conflict_closed, "conflict_closed", 409, retry_class::permanent},
    {errc::rate_limited, "rate_limited", 429, retry_class::transient},
    {errc::enrolment_used, "enrolment_used", 410, retry_class::permanent},
    {errc::enrolment_expired, "enrolment_expired", 410, retry_class::permanent},
    {errc::unavailable, "unavailable", 503, retry_class::transient},
    {errc::storage_error, "storage_error", 500, retry_class::transient},
    {errc::unsupported_protocol, "unsupported_protocol", 400, retry_class::permanent},
    {errc::client_too_old, "client_too_old", 426, retry_class::permanent},
    {errc::internal, "internal", 500, retry_class::transient},
    {errc::blob_too_large, "blob_too_large", 413, retry_class::permanent},
    {errc::blob_type_refused, "blob_type_refused", 415, retry_class::permanent},
    {errc::blob_hash_mismatch, "blob_hash_mismatch", 422, retry_class::permanent},
    {errc::upload_offset, "upload_offset", 409, retry_class::again},
    {errc::blob_quota, "blob_quota", 429, retry_class::transient},
    {errc::range_not_satisfiable, "range_not_satisfiable", 416, retry_class::permanent},
};

}  // namespace

TEST_CASE("every error code keeps its wire name, HTTP status and retry class", "[protocol][error]") {
    std::set<std::string> names;
    for (const auto& c : k_contract) {
        INFO(c.name);
        CHECK(fp::errc_name(c.code) == c.name);
        CHECK(fp::errc_from_name(c.name) == c.code);
        CHECK(fp::http_status(c.code) == c.http);
        CHECK(fp::classify(c.code) == c.retry);
        names.insert(c.name);
    }
    CHECK(names.size() == std::size(k_contract));
    // The contract covers every enumerator: they are numbered densely from ok to the last.
    CHECK(static_cast<int>(errc::range_not_satisfiable) + 1 == static_cast<int>(std::size(k_contract)));
}

TEST_CASE("unknown codes fall back to internal", "[protocol][error]") {
    CHECK(fp::errc_from_name("no_such_code") == errc::internal);
    CHECK(fp::errc_from_name("") == errc::internal);
    CHECK(fp::errc_from_name("BAD_JSON") == errc::internal);
    const auto unknown = static_cast<errc>(9999);
    CHECK(fp::errc_name(unknown) == "internal");
    CHECK(fp::http_status(unknown) == 500);
    CHECK(fp::classify(unknown) == retry_class::transient);
}

TEST_CASE("errc is a std::error_code enum of category fieldsync.protocol", "[protocol][error]") {
    const std::error_code ec = errc::base_ahead;
    CHECK(ec.category().name() == std::string("fieldsync.protocol"));
    CHECK(ec.message() == "base_ahead");
    CHECK(ec == fp::make_error_code(errc::base_ahead));
    CHECK(ec != fp::make_error_code(errc::unknown_base));
    CHECK(&fp::protocol_category() == &ec.category());
    const std::error_code ok = errc::ok;
    CHECK_FALSE(ok);
}

TEST_CASE("expected holds a value or an error", "[protocol][error]") {
    fp::expected<int> v = 5;
    REQUIRE(v);
    CHECK(*v == 5);
    CHECK(v.value() == 5);
    fp::expected<int> e = fp::error{errc::bad_cursor, "cursor 'x' was not issued by this server"};
    REQUIRE_FALSE(e);
    CHECK(e.err().code == errc::bad_cursor);
    CHECK_THROWS(e.value());
}

namespace {
fp::expected<std::vector<std::string>> names() { return std::vector<std::string>{"Nguyễn Thị Hồng", "Lê Văn Tám"}; }
fp::expected<int> failed() { return fp::error{errc::storage_error, "đĩa đầy"}; }
}  // namespace

// `*f()` once returned a reference into the destroyed temporary: `const auto& x = *f();` and
// `for (auto& e : *f())` read freed memory. A temporary's value and error now come out by value.
static_assert(std::is_same_v<decltype(*names()), std::vector<std::string>>);
static_assert(std::is_same_v<decltype(names().value()), std::vector<std::string>>);
static_assert(std::is_same_v<decltype(failed().err()), fp::error>);
static_assert(std::is_same_v<decltype(*std::declval<fp::expected<int>&>()), int&>);

TEST_CASE("a temporary expected gives its value and error out by value", "[protocol][error]") {
    const auto& held = *names();  // the returned vector lives as long as `held`
    REQUIRE(held.size() == 2);
    CHECK(held[0] == "Nguyễn Thị Hồng");
    std::size_t n = 0;
    for (const auto& name : *names()) n += name.size();
    CHECK(n == std::string("Nguyễn Thị Hồng").size() + std::string("Lê Văn Tám").size());
    const auto& e = failed().err();
    CHECK(e.code == errc::storage_error);
    CHECK(e.message == "đĩa đầy");
}
