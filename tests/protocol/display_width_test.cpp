// Display width with wcwidth semantics (display_width.hpp): Vietnamese NFC and NFD line up,
// wide CJK takes two columns, ill-formed bytes one.

#include <catch2/catch.hpp>

#include <fieldsync/protocol/display_width.hpp>

using fieldsync::protocol::code_point_width;
using fieldsync::protocol::display_width;
using fieldsync::protocol::pad_to_width;
using fieldsync::protocol::wrap_to_width;

TEST_CASE("ASCII, Vietnamese NFC and NFD, combining marks", "[protocol][width]") {
    CHECK(display_width("") == 0);
    CHECK(display_width("abc") == 3);
    // "Nguyễn" NFC: ễ is U+1EC5; NFD: e + U+0302 (circumflex) + U+0303 (tilde).
    CHECK(display_width("Nguy\xE1\xBB\x85n") == 6);
    CHECK(display_width("Nguye\xCC\x82\xCC\x83n") == 6);
    CHECK(display_width("Đảng bộ xã Bình Hòa") == 19);
    // "Hòa" with a combining grave (U+0300) after o.
    CHECK(display_width("Ho\xCC\x80" "a") == 3);
    CHECK(code_point_width(0x0323) == 0);  // dot below (nặng)
    CHECK(code_point_width(0x031B) == 0);  // horn (ơ, ư)
    CHECK(code_point_width(0x200B) == 0);  // zero-width space
}

TEST_CASE("wide characters take two columns, controls none, bad bytes one", "[protocol][width]") {
    CHECK(display_width("中文") == 4);
    CHECK(display_width("한국어") == 6);
    CHECK(display_width("ｶﾀｶﾅ") == 4);   // halfwidth katakana stay narrow
    CHECK(display_width("ＡＢ") == 4);    // fullwidth Latin
    CHECK(display_width("\xF0\x9F\x98\x80") == 2);  // an emoji
    CHECK(display_width("a\tb") == 2);
    CHECK(display_width("\xFF\xFE") == 2);
    CHECK(display_width("a\xE1\xBB") == 3);  // a truncated sequence at the end: two bad bytes
    CHECK(display_width("\xED\xA0\x80") == 3);  // a surrogate: three bad bytes
}

TEST_CASE("padding and wrapping by columns keep marks with their letters", "[protocol][width]") {
    CHECK(pad_to_width("Hòa", 5) == "Hòa  ");
    CHECK(pad_to_width("Ho\xCC\x80" "a", 5) == "Ho\xCC\x80" "a  ");
    CHECK(pad_to_width("中文", 5) == "中文 ");
    CHECK(pad_to_width("toolong", 3) == "toolong");

    const auto nfd = wrap_to_width("ho\xCC\x80" "a bi\xCC\x80nh", 3);
    REQUIRE(nfd.size() == 3);
    CHECK(nfd[0] == "ho\xCC\x80" "a");  // the grave stays with its o
    CHECK(nfd[1] == " bi\xCC\x80");     // and with its i, though the line is full
    CHECK(nfd[2] == "nh");
    const auto wide = wrap_to_width("中文字", 4);
    REQUIRE(wide.size() == 2);
    CHECK(wide[0] == "中文");
    CHECK(wide[1] == "字");
    CHECK(wrap_to_width("a\nb", 10) == std::vector<std::string>{"a", "b"});
    CHECK(wrap_to_width("", 10) == std::vector<std::string>{""});
    for (const auto& line : wrap_to_width("Rời khỏi phòng thì tắt quạt máy, tắt đèn", 7)) CHECK(display_width(line) <= 7);
}
