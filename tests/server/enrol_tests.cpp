// Enrolment codes in the store (SPEC.md, "Enrolment"): a code is exchanged once for the token
// the client made; the same exchange again is answered again; a used, expired, replaced or
// unknown code, or a revoked device, is refused and changes nothing. The clock is a seam.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include <fieldsync/server/store.hpp>

#include <atomic>
#include <filesystem>
#include <random>
#include <regex>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
namespace srv = fieldsync::server;
using proto::errc;
using namespace std::chrono_literals;

namespace {

struct enrol_fixture {
    fs::path dir;
    std::shared_ptr<std::atomic<std::int64_t>> now = std::make_shared<std::atomic<std::int64_t>>(1'780'000'000'000);
    std::unique_ptr<srv::store> st;
    srv::device secretary;
    std::string first_token;

    enrol_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-enrol-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        srv::store_options o;
        o.path = (dir / "central.db").string();
        o.wall = [n = now] { return n->load(); };
        auto s = fieldsync::test::open_store_under_test(o);
        REQUIRE(s.has_value());
        st = std::move(s).value();
        REQUIRE(st->put_unit({"ap-5", "", "Chi bộ ấp Tân Lợi", "cell", ""}).has_value());
        auto added = st->add_device("Bí thư chi bộ ấp Tân Lợi", "ap-5", srv::device_role::field);
        REQUIRE(added.has_value());
        secretary = added->first;
        first_token = added->second;
    }
    ~enrol_fixture() {
        st.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    // The device a token signs in as ("" for none).
    std::string who(const std::string& token) {
        auto d = st->authenticate(token);
        REQUIRE(d.has_value());
        return *d ? (*d)->id : "";
    }
};

std::string token_of(char c) { return "fs1_" + std::string(64, c); }

}  // namespace

TEST_CASE("an enrolment code is exchanged once for the token the client made", "[store][enrol]") {
    enrol_fixture f;
    auto code = f.st->enrol_device(f.secretary.id, 24h);
    REQUIRE(code.has_value());
    CHECK(std::regex_match(code->code, std::regex("[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")));
    CHECK(code->device_id == f.secretary.id);
    CHECK(code->expires_ms == f.now->load() + 24 * 3600 * 1000);

    // Typed as people type it: lower case, spaces for dashes.
    std::string typed;
    for (char c : code->code) typed += c == '-' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto dev = f.st->redeem_enrolment(typed, token_of('a'));
    REQUIRE(dev.has_value());
    CHECK(dev->id == f.secretary.id);
    CHECK(dev->name == "Bí thư chi bộ ấp Tân Lợi");
    CHECK(f.who(token_of('a')) == f.secretary.id);
    CHECK(f.who(f.first_token).empty());  // the token add_device made stops working

    SECTION("the same exchange again, its answer lost, is answered again") {
        auto again = f.st->redeem_enrolment(code->code, token_of('a'));
        REQUIRE(again.has_value());
        CHECK(again->id == f.secretary.id);
    }
    SECTION("another token for the used code is refused, and the device keeps its token") {
        auto other = f.st->redeem_enrolment(code->code, token_of('b'));
        REQUIRE_FALSE(other.has_value());
        CHECK(other.err().code == errc::enrolment_used);
        CHECK(f.who(token_of('a')) == f.secretary.id);
        CHECK(f.who(token_of('b')).empty());
    }
    SECTION("once the token was rotated, the old exchange is not answered any more") {
        REQUIRE(f.st->rotate_device(f.secretary.id).has_value());
        auto again = f.st->redeem_enrolment(code->code, token_of('a'));
        REQUIRE_FALSE(again.has_value());
        CHECK(again.err().code == errc::enrolment_used);
    }
}

TEST_CASE("expired, replaced, unknown and malformed codes are refused and change nothing", "[store][enrol]") {
    enrol_fixture f;
    auto first = f.st->enrol_device(f.secretary.id, 1h);
    REQUIRE(first.has_value());

    SECTION("expired: the clock passes the code's end") {
        f.now->fetch_add(3600 * 1000);
        auto late = f.st->redeem_enrolment(first->code, token_of('c'));
        REQUIRE_FALSE(late.has_value());
        CHECK(late.err().code == errc::enrolment_expired);
        CHECK(f.who(f.first_token) == f.secretary.id);
        CHECK(f.who(token_of('c')).empty());
        // A new code for the device works.
        auto fresh = f.st->enrol_device(f.secretary.id, 1h);
        REQUIRE(fresh.has_value());
        CHECK(f.st->redeem_enrolment(fresh->code, token_of('c')).has_value());
    }
    SECTION("replaced: a newer code for the device ends the older one") {
        auto second = f.st->enrol_device(f.secretary.id, 1h);
        REQUIRE(second.has_value());
        CHECK(second->code != first->code);
        auto old = f.st->redeem_enrolment(first->code, token_of('c'));
        REQUIRE_FALSE(old.has_value());
        CHECK(old.err().code == errc::not_found);
        CHECK(f.st->redeem_enrolment(second->code, token_of('c')).has_value());
    }
    SECTION("revoked: the device's codes stop working") {
        REQUIRE(f.st->revoke_device(f.secretary.id).has_value());
        auto r = f.st->redeem_enrolment(first->code, token_of('c'));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.err().code == errc::enrolment_expired);
        CHECK(f.who(token_of('c')).empty());
        auto none = f.st->enrol_device(f.secretary.id, 1h);
        REQUIRE_FALSE(none.has_value());
        CHECK(none.err().code == errc::not_found);
    }
    SECTION("unknown and malformed codes, malformed tokens, a token another device has") {
        const auto unknown = f.st->redeem_enrolment("0000-0000-0000-0000", token_of('c'));
        REQUIRE_FALSE(unknown.has_value());
        CHECK(unknown.err().code == errc::not_found);
        for (const std::string bad : {"", "ABC", "0000-0000-0000-0000-0", "UUUU-0000-0000-0000", "mã-ghi-danh"}) {
            INFO(bad);
            const auto r = f.st->redeem_enrolment(bad, token_of('c'));
            REQUIRE_FALSE(r.has_value());
            CHECK(r.err().code == errc::bad_request);
        }
        for (const std::string bad : {std::string(""), "fs1_" + std::string(63, 'a'), "fs1_" + std::string(64, 'A'),
                                      "fs2_" + std::string(64, 'a'), "fs1_" + std::string(64, 'g')}) {
            INFO(bad);
            const auto r = f.st->redeem_enrolment(first->code, bad);
            REQUIRE_FALSE(r.has_value());
            CHECK(r.err().code == errc::bad_request);
        }
        const auto taken = f.st->redeem_enrolment(first->code, f.first_token);
        REQUIRE_FALSE(taken.has_value());
        CHECK(taken.err().code == errc::bad_request);
        // None of that used the code.
        CHECK(f.st->redeem_enrolment(first->code, token_of('c')).has_value());
    }
    SECTION("codes for no device, and validities out of range") {
        CHECK(f.st->enrol_device("khong-co", 1h).err().code == errc::not_found);
        CHECK(f.st->enrol_device(f.secretary.id, 30s).err().code == errc::bad_request);
        CHECK(f.st->enrol_device(f.secretary.id, 24h * 31).err().code == errc::bad_request);
    }
}
