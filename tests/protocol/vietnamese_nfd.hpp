#pragma once
// NFD decompositions of the precomposed Latin letters that Vietnamese uses (base letter plus
// the combining marks U+0300 U+0301 U+0302 U+0303 U+0306 U+0309 U+031B U+0323), generated from
// Python's unicodedata. The tests need NFD text without pulling ICU into the build.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace fieldsync::test {

struct nfd_entry {
    char32_t code_point;
    std::string_view nfd;
};

inline constexpr std::array<nfd_entry, 222> k_vietnamese_nfd{{
    {U'\x00C0', "\x41\xCC\x80"},  // À
    {U'\x00C1', "\x41\xCC\x81"},  // Á
    {U'\x00C2', "\x41\xCC\x82"},  // Â
    {U'\x00C3', "\x41\xCC\x83"},  // Ã
    {U'\x00C8', "\x45\xCC\x80"},  // È
    {U'\x00C9', "\x45\xCC\x81"},  // É
    {U'\x00CA', "\x45\xCC\x82"},  // Ê
    {U'\x00CC', "\x49\xCC\x80"},  // Ì
    {U'\x00CD', "\x49\xCC\x81"},  // Í
    {U'\x00CE', "\x49\xCC\x82"},  // Î
    {U'\x00D1', "\x4E\xCC\x83"},  // Ñ
    {U'\x00D2', "\x4F\xCC\x80"},  // Ò
    {U'\x00D3', "\x4F\xCC\x81"},  // Ó
    {U'\x00D4', "\x4F\xCC\x82"},  // Ô
    {U'\x00D5', "\x4F\xCC\x83"},  // Õ
    {U'\x00D9', "\x55\xCC\x80"},  // Ù
    {U'\x00DA', "\x55\xCC\x81"},  // Ú
    {U'\x00DB', "\x55\xCC\x82"},  // Û
    {U'\x00DD', "\x59\xCC\x81"},  // Ý
    {U'\x00E0', "\x61\xCC\x80"},  // à
    {U'\x00E1', "\x61\xCC\x81"},  // á
    {U'\x00E2', "\x61\xCC\x82"},  // â
    {U'\x00E3', "\x61\xCC\x83"},  // ã
    {U'\x00E8', "\x65\xCC\x80"},  // è
    {U'\x00E9', "\x65\xCC\x81"},  // é
    {U'\x00EA', "\x65\xCC\x82"},  // ê
    {U'\x00EC', "\x69\xCC\x80"},  // ì
    {U'\x00ED', "\x69\xCC\x81"},  // í
    {U'\x00EE', "\x69\xCC\x82"},  // î
    {U'\x00F1', "\x6E\xCC\x83"},  // ñ
    {U'\x00F2', "\x6F\xCC\x80"},  // ò
    {U'\x00F3', "\x6F\xCC\x81"},  // ó
    {U'\x00F4', "\x6F\xCC\x82"},  // ô
    {U'\x00F5', "\x6F\xCC\x83"},  // õ
    {U'\x00F9', "\x75\xCC\x80"},  // ù
    {U'\x00FA', "\x75\xCC\x81"},  // ú
    {U'\x00FB', "\x75\xCC\x82"},  // û
    {U'\x00FD', "\x79\xCC\x81"},  // ý
    {U'\x0102', "\x41\xCC\x86"},  // Ă
    {U'\x0103', "\x61\xCC\x86"},  // ă
    {U'\x0106', "\x43\xCC\x81"},  // Ć
    {U'\x0107', "\x63\xCC\x81"},  // ć
    {U'\x0108', "\x43\xCC\x82"},  // Ĉ
    {U'\x0109', "\x63\xCC\x82"},  // ĉ
    {U'\x0114', "\x45\xCC\x86"},  // Ĕ
    {U'\x0115', "\x65\xCC\x86"},  // ĕ
    {U'\x011C', "\x47\xCC\x82"},  // Ĝ
    {U'\x011D', "\x67\xCC\x82"},  // ĝ
    {U'\x011E', "\x47\xCC\x86"},  // Ğ
    {U'\x011F', "\x67\xCC\x86"},  // ğ
    {U'\x0124', "\x48\xCC\x82"},  // Ĥ
    {U'\x0125', "\x68\xCC\x82"},  // ĥ
    {U'\x0128', "\x49\xCC\x83"},  // Ĩ
    {U'\x0129', "\x69\xCC\x83"},  // ĩ
    {U'\x012C', "\x49\xCC\x86"},  // Ĭ
    {U'\x012D', "\x69\xCC\x86"},  // ĭ
    {U'\x0134', "\x4A\xCC\x82"},  // Ĵ
    {U'\x0135', "\x6A\xCC\x82"},  // ĵ
    {U'\x0139', "\x4C\xCC\x81"},  // Ĺ
    {U'\x013A', "\x6C\xCC\x81"},  // ĺ
    {U'\x0143', "\x4E\xCC\x81"},  // Ń
    {U'\x0144', "\x6E\xCC\x81"},  // ń
    {U'\x014E', "\x4F\xCC\x86"},  // Ŏ
    {U'\x014F', "\x6F\xCC\x86"},  // ŏ
    {U'\x0154', "\x52\xCC\x81"},  // Ŕ
    {U'\x0155', "\x72\xCC\x81"},  // ŕ
    {U'\x015A', "\x53\xCC\x81"},  // Ś
    {U'\x015B', "\x73\xCC\x81"},  // ś
    {U'\x015C', "\x53\xCC\x82"},  // Ŝ
    {U'\x015D', "\x73\xCC\x82"},  // ŝ
    {U'\x0168', "\x55\xCC\x83"},  // Ũ
    {U'\x0169', "\x75\xCC\x83"},  // ũ
    {U'\x016C', "\x55\xCC\x86"},  // Ŭ
    {U'\x016D', "\x75\xCC\x86"},  // ŭ
    {U'\x0174', "\x57\xCC\x82"},  // Ŵ
    {U'\x0175', "\x77\xCC\x82"},  // ŵ
    {U'\x0176', "\x59\xCC\x82"},  // Ŷ
    {U'\x0177', "\x79\xCC\x82"},  // ŷ
    {U'\x0179', "\x5A\xCC\x81"},  // Ź
    {U'\x017A', "\x7A\xCC\x81"},  // ź
    {U'\x01A0', "\x4F\xCC\x9B"},  // Ơ
    {U'\x01A1', "\x6F\xCC\x9B"},  // ơ
    {U'\x01AF', "\x55\xCC\x9B"},  // Ư
    {U'\x01B0', "\x75\xCC\x9B"},  // ư
    {U'\x01F4', "\x47\xCC\x81"},  // Ǵ
    {U'\x01F5', "\x67\xCC\x81"},  // ǵ
    {U'\x01F8', "\x4E\xCC\x80"},  // Ǹ
    {U'\x01F9', "\x6E\xCC\x80"},  // ǹ
    {U'\x1E04', "\x42\xCC\xA3"},  // Ḅ
    {U'\x1E05', "\x62\xCC\xA3"},  // ḅ
    {U'\x1E0C', "\x44\xCC\xA3"},  // Ḍ
    {U'\x1E0D', "\x64\xCC\xA3"},  // ḍ
    {U'\x1E24', "\x48\xCC\xA3"},  // Ḥ
    {U'\x1E25', "\x68\xCC\xA3"},  // ḥ
    {U'\x1E30', "\x4B\xCC\x81"},  // Ḱ
    {U'\x1E31', "\x6B\xCC\x81"},  // ḱ
    {U'\x1E32', "\x4B\xCC\xA3"},  // Ḳ
    {U'\x1E33', "\x6B\xCC\xA3"},  // ḳ
    {U'\x1E36', "\x4C\xCC\xA3"},  // Ḷ
    {U'\x1E37', "\x6C\xCC\xA3"},  // ḷ
    {U'\x1E3E', "\x4D\xCC\x81"},  // Ḿ
    {U'\x1E3F', "\x6D\xCC\x81"},  // ḿ
    {U'\x1E42', "\x4D\xCC\xA3"},  // Ṃ
    {U'\x1E43', "\x6D\xCC\xA3"},  // ṃ
    {U'\x1E46', "\x4E\xCC\xA3"},  // Ṇ
    {U'\x1E47', "\x6E\xCC\xA3"},  // ṇ
    {U'\x1E4C', "\x4F\xCC\x83\xCC\x81"},  // Ṍ
    {U'\x1E4D', "\x6F\xCC\x83\xCC\x81"},  // ṍ
    {U'\x1E54', "\x50\xCC\x81"},  // Ṕ
    {U'\x1E55', "\x70\xCC\x81"},  // ṕ
    {U'\x1E5A', "\x52\xCC\xA3"},  // Ṛ
    {U'\x1E5B', "\x72\xCC\xA3"},  // ṛ
    {U'\x1E62', "\x53\xCC\xA3"},  // Ṣ
    {U'\x1E63', "\x73\xCC\xA3"},  // ṣ
    {U'\x1E6C', "\x54\xCC\xA3"},  // Ṭ
    {U'\x1E6D', "\x74\xCC\xA3"},  // ṭ
    {U'\x1E78', "\x55\xCC\x83\xCC\x81"},  // Ṹ
    {U'\x1E79', "\x75\xCC\x83\xCC\x81"},  // ṹ
    {U'\x1E7C', "\x56\xCC\x83"},  // Ṽ
    {U'\x1E7D', "\x76\xCC\x83"},  // ṽ
    {U'\x1E7E', "\x56\xCC\xA3"},  // Ṿ
    {U'\x1E7F', "\x76\xCC\xA3"},  // ṿ
    {U'\x1E80', "\x57\xCC\x80"},  // Ẁ
    {U'\x1E81', "\x77\xCC\x80"},  // ẁ
    {U'\x1E82', "\x57\xCC\x81"},  // Ẃ
    {U'\x1E83', "\x77\xCC\x81"},  // ẃ
    {U'\x1E88', "\x57\xCC\xA3"},  // Ẉ
    {U'\x1E89', "\x77\xCC\xA3"},  // ẉ
    {U'\x1E90', "\x5A\xCC\x82"},  // Ẑ
    {U'\x1E91', "\x7A\xCC\x82"},  // ẑ
    {U'\x1E92', "\x5A\xCC\xA3"},  // Ẓ
    {U'\x1E93', "\x7A\xCC\xA3"},  // ẓ
    {U'\x1EA0', "\x41\xCC\xA3"},  // Ạ
    {U'\x1EA1', "\x61\xCC\xA3"},  // ạ
    {U'\x1EA2', "\x41\xCC\x89"},  // Ả
    {U'\x1EA3', "\x61\xCC\x89"},  // ả
    {U'\x1EA4', "\x41\xCC\x82\xCC\x81"},  // Ấ
    {U'\x1EA5', "\x61\xCC\x82\xCC\x81"},  // ấ
    {U'\x1EA6', "\x41\xCC\x82\xCC\x80"},  // Ầ
    {U'\x1EA7', "\x61\xCC\x82\xCC\x80"},  // ầ
    {U'\x1EA8', "\x41\xCC\x82\xCC\x89"},  // Ẩ
    {U'\x1EA9', "\x61\xCC\x82\xCC\x89"},  // ẩ
    {U'\x1EAA', "\x41\xCC\x82\xCC\x83"},  // Ẫ
    {U'\x1EAB', "\x61\xCC\x82\xCC\x83"},  // ẫ
    {U'\x1EAC', "\x41\xCC\xA3\xCC\x82"},  // Ậ
    {U'\x1EAD', "\x61\xCC\xA3\xCC\x82"},  // ậ
    {U'\x1EAE', "\x41\xCC\x86\xCC\x81"},  // Ắ
    {U'\x1EAF', "\x61\xCC\x86\xCC\x81"},  // ắ
    {U'\x1EB0', "\x41\xCC\x86\xCC\x80"},  // Ằ
    {U'\x1EB1', "\x61\xCC\x86\xCC\x80"},  // ằ
    {U'\x1EB2', "\x41\xCC\x86\xCC\x89"},  // Ẳ
    {U'\x1EB3', "\x61\xCC\x86\xCC\x89"},  // ẳ
    {U'\x1EB4', "\x41\xCC\x86\xCC\x83"},  // Ẵ
    {U'\x1EB5', "\x61\xCC\x86\xCC\x83"},  // ẵ
    {U'\x1EB6', "\x41\xCC\xA3\xCC\x86"},  // Ặ
    {U'\x1EB7', "\x61\xCC\xA3\xCC\x86"},  // ặ
    {U'\x1EB8', "\x45\xCC\xA3"},  // Ẹ
    {U'\x1EB9', "\x65\xCC\xA3"},  // ẹ
    {U'\x1EBA', "\x45\xCC\x89"},  // Ẻ
    {U'\x1EBB', "\x65\xCC\x89"},  // ẻ
    {U'\x1EBC', "\x45\xCC\x83"},  // Ẽ
    {U'\x1EBD', "\x65\xCC\x83"},  // ẽ
    {U'\x1EBE', "\x45\xCC\x82\xCC\x81"},  // Ế
    {U'\x1EBF', "\x65\xCC\x82\xCC\x81"},  // ế
    {U'\x1EC0', "\x45\xCC\x82\xCC\x80"},  // Ề
    {U'\x1EC1', "\x65\xCC\x82\xCC\x80"},  // ề
    {U'\x1EC2', "\x45\xCC\x82\xCC\x89"},  // Ể
    {U'\x1EC3', "\x65\xCC\x82\xCC\x89"},  // ể
    {U'\x1EC4', "\x45\xCC\x82\xCC\x83"},  // Ễ
    {U'\x1EC5', "\x65\xCC\x82\xCC\x83"},  // ễ
    {U'\x1EC6', "\x45\xCC\xA3\xCC\x82"},  // Ệ
    {U'\x1EC7', "\x65\xCC\xA3\xCC\x82"},  // ệ
    {U'\x1EC8', "\x49\xCC\x89"},  // Ỉ
    {U'\x1EC9', "\x69\xCC\x89"},  // ỉ
    {U'\x1ECA', "\x49\xCC\xA3"},  // Ị
    {U'\x1ECB', "\x69\xCC\xA3"},  // ị
    {U'\x1ECC', "\x4F\xCC\xA3"},  // Ọ
    {U'\x1ECD', "\x6F\xCC\xA3"},  // ọ
    {U'\x1ECE', "\x4F\xCC\x89"},  // Ỏ
    {U'\x1ECF', "\x6F\xCC\x89"},  // ỏ
    {U'\x1ED0', "\x4F\xCC\x82\xCC\x81"},  // Ố
    {U'\x1ED1', "\x6F\xCC\x82\xCC\x81"},  // ố
    {U'\x1ED2', "\x4F\xCC\x82\xCC\x80"},  // Ồ
    {U'\x1ED3', "\x6F\xCC\x82\xCC\x80"},  // ồ
    {U'\x1ED4', "\x4F\xCC\x82\xCC\x89"},  // Ổ
    {U'\x1ED5', "\x6F\xCC\x82\xCC\x89"},  // ổ
    {U'\x1ED6', "\x4F\xCC\x82\xCC\x83"},  // Ỗ
    {U'\x1ED7', "\x6F\xCC\x82\xCC\x83"},  // ỗ
    {U'\x1ED8', "\x4F\xCC\xA3\xCC\x82"},  // Ộ
    {U'\x1ED9', "\x6F\xCC\xA3\xCC\x82"},  // ộ
    {U'\x1EDA', "\x4F\xCC\x9B\xCC\x81"},  // Ớ
    {U'\x1EDB', "\x6F\xCC\x9B\xCC\x81"},  // ớ
    {U'\x1EDC', "\x4F\xCC\x9B\xCC\x80"},  // Ờ
    {U'\x1EDD', "\x6F\xCC\x9B\xCC\x80"},  // ờ
    {U'\x1EDE', "\x4F\xCC\x9B\xCC\x89"},  // Ở
    {U'\x1EDF', "\x6F\xCC\x9B\xCC\x89"},  // ở
    {U'\x1EE0', "\x4F\xCC\x9B\xCC\x83"},  // Ỡ
    {U'\x1EE1', "\x6F\xCC\x9B\xCC\x83"},  // ỡ
    {U'\x1EE2', "\x4F\xCC\x9B\xCC\xA3"},  // Ợ
    {U'\x1EE3', "\x6F\xCC\x9B\xCC\xA3"},  // ợ
    {U'\x1EE4', "\x55\xCC\xA3"},  // Ụ
    {U'\x1EE5', "\x75\xCC\xA3"},  // ụ
    {U'\x1EE6', "\x55\xCC\x89"},  // Ủ
    {U'\x1EE7', "\x75\xCC\x89"},  // ủ
    {U'\x1EE8', "\x55\xCC\x9B\xCC\x81"},  // Ứ
    {U'\x1EE9', "\x75\xCC\x9B\xCC\x81"},  // ứ
    {U'\x1EEA', "\x55\xCC\x9B\xCC\x80"},  // Ừ
    {U'\x1EEB', "\x75\xCC\x9B\xCC\x80"},  // ừ
    {U'\x1EEC', "\x55\xCC\x9B\xCC\x89"},  // Ử
    {U'\x1EED', "\x75\xCC\x9B\xCC\x89"},  // ử
    {U'\x1EEE', "\x55\xCC\x9B\xCC\x83"},  // Ữ
    {U'\x1EEF', "\x75\xCC\x9B\xCC\x83"},  // ữ
    {U'\x1EF0', "\x55\xCC\x9B\xCC\xA3"},  // Ự
    {U'\x1EF1', "\x75\xCC\x9B\xCC\xA3"},  // ự
    {U'\x1EF2', "\x59\xCC\x80"},  // Ỳ
    {U'\x1EF3', "\x79\xCC\x80"},  // ỳ
    {U'\x1EF4', "\x59\xCC\xA3"},  // Ỵ
    {U'\x1EF5', "\x79\xCC\xA3"},  // ỵ
    {U'\x1EF6', "\x59\xCC\x89"},  // Ỷ
    {U'\x1EF7', "\x79\xCC\x89"},  // ỷ
    {U'\x1EF8', "\x59\xCC\x83"},  // Ỹ
    {U'\x1EF9', "\x79\xCC\x83"},  // ỹ
}};

/// Decomposes every letter of the table in UTF-8 `nfc`; other text is copied as it is.
inline std::string to_vietnamese_nfd(std::string_view nfc) {
    std::string out;
    out.reserve(nfc.size() * 3 / 2);
    std::size_t i = 0;
    while (i < nfc.size()) {
        const auto c = static_cast<unsigned char>(nfc[i]);
        std::size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        if (i + len > nfc.size()) len = nfc.size() - i;
        char32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(nfc[i + k]) & 0x3F);
        bool replaced = false;
        for (const auto& e : k_vietnamese_nfd) {
            if (e.code_point == cp) {
                out += e.nfd;
                replaced = true;
                break;
            }
        }
        if (!replaced) out.append(nfc.substr(i, len));
        i += len;
    }
    return out;
}

}  // namespace fieldsync::test
