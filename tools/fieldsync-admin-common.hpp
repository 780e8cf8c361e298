#pragma once
// What every fieldsync-admin verb shares: exit codes, the usage refusal, opening the store,
// times and tables as the administrator reads them.

#include <fieldsync/server/store.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::admin {

inline constexpr int k_exit_failure = 1;  // the command ran and failed; the message says why
inline constexpr int k_exit_usage = 2;    // the command line is wrong
inline constexpr int k_exit_stale = 3;    // conflicts resolve: the record moved since it was shown

/// Prints "fieldsync-admin: MESSAGE" and the verb's usage on stderr; returns k_exit_usage.
int usage_error(const std::string& message, const char* usage);

/// --help or -h among the arguments.
bool wants_help(const std::vector<std::string>& args);

/// Opens the store at `path` (one read connection: a tool reads little), or prints why not.
std::optional<std::unique_ptr<server::store>> open_store(const std::string& path);

/// UTC "2026-11-25 08:30:00Z"; "" for 0 or less (never happened).
std::string format_ms(std::int64_t ms);

/// Prints rows as aligned columns on stdout. Widths are terminal columns (display_width), so
/// Vietnamese names, NFC or NFD, and wide text line up.
void print_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace fieldsync::admin
