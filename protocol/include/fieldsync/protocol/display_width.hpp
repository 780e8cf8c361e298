#pragma once
// Terminal display width of UTF-8 text, with wcwidth semantics: combining marks and
// zero-width characters take 0 columns, East Asian wide and fullwidth characters 2, other
// printable characters 1. So Vietnamese text in NFD (a base letter plus combining marks)
// is as wide as the same text in NFC, and tables built with it line up in a terminal.
//
// Ill-formed UTF-8 never throws: each byte that does not start a valid sequence counts as
// one column (a terminal shows it as one replacement character). Control characters count 0.
// Pure functions; thread-safe.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace fieldsync::protocol {

/// Columns of one code point (0, 1 or 2).
int code_point_width(char32_t cp) noexcept;

/// Columns of a whole UTF-8 string.
std::size_t display_width(std::string_view utf8) noexcept;

/// Splits `utf8` into lines of at most `columns` columns (at least one code point each),
/// breaking only between characters: combining marks stay with their base letter. Newlines
/// in the text start a new line. An empty string gives one empty line.
std::vector<std::string> wrap_to_width(std::string_view utf8, std::size_t columns);

/// `utf8` followed by spaces up to `columns` columns (unchanged when already wider).
std::string pad_to_width(std::string_view utf8, std::size_t columns);

}  // namespace fieldsync::protocol
