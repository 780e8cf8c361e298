#pragma once
// Canonical decomposition (NFD) for the text users type in this domain: Latin letters with
// diacritics, Vietnamese included. Phone keyboards send the same word precomposed (NFC) or
// decomposed (NFD); domain.md asks that search treat both as equal, while stored text keeps
// its bytes. Code points outside U+00C0-U+024F and U+1E00-U+1EFF pass through unchanged,
// combining marks U+0300-U+036F are put in canonical order.

#include <string>
#include <string_view>

namespace fieldsync::protocol {

/// The NFD form of well-formed UTF-8 `text` (ill-formed input is returned unchanged).
std::string to_nfd(std::string_view text);

}  // namespace fieldsync::protocol
