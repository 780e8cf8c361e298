#pragma once
// What every fieldsync-admin verb shares: exit codes, the usage refusal, the skeleton a verb
// runs in (its --help, the store opened and closed around it), failures as the administrator
// reads them, times and tables.

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/server/store.hpp>

#include <cstdint>
#include <functional>
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

/// The store --db names when it is not given: $FIELDSYNC_DB, else data/fieldsync.db (relative
/// to the working directory).
std::string default_db();

/// Whether open_store may create a missing store: only `init` and `demo` make one (main sets
/// it for them); every other verb refuses a path with no store, so a mistyped --db never
/// makes an empty store. Not thread-safe: set once, before the verb runs.
void allow_new_store(bool allow);

/// Whether there is a store at `path`, or allow_new_store says one may be made; if not, says
/// so on stderr, suggesting `init`.
bool store_may_open(const std::string& path);

/// Opens the store at `path` (one read connection: a tool reads little), or prints why not:
/// among others, that there is no store there (unless allow_new_store), suggesting `init`.
std::optional<std::unique_ptr<server::store>> open_store(const std::string& path);

/// Opens the store at `db`, runs `body` on it and closes it: body's exit code, or
/// k_exit_failure when the store does not open (open_store says why).
int with_store(const std::string& db, const std::function<int(server::store&)>& body);

/// A device named on the command line by its id, a unique prefix of its id (at least
/// k_min_id_prefix characters) or its name (compared in NFD, so NFC and NFD input match). nullopt,
/// with the reason and the candidates printed on stderr, when it names none or several.
inline constexpr std::size_t k_min_id_prefix = 4;
std::optional<server::device> find_device(server::store& st, const std::string& ref);

/// Prints "fieldsync-admin: MESSAGE" on stderr; returns k_exit_failure.
int failed(const std::string& message);

/// Prints "fieldsync-admin: WHAT: <the error's message>" on stderr; returns k_exit_usage when
/// the store refused the input (bad_request), else k_exit_failure.
int refused(const std::string& what, const protocol::error& e);

/// A verb: `init`, `device add`... Its arguments are those after its name.
struct verb {
    const char* name;
    const char* usage;  // printed on stdout for --help or -h anywhere among its arguments
    int (*run)(const std::string& db, const std::vector<std::string>& args);
    bool needs_db = true;  // false: it reads --db among its arguments or checks it itself
};

/// A verb with subcommands: `device add|list|...`.
struct verb_group {
    const char* name;
    const char* choices;  // "add, list or move", for the missing subcommand's message
    const char* usage;
    std::vector<verb> verbs;
};

/// The skeleton of every verb: --help prints its usage (exit 0); a verb that needs the store
/// is refused without --db (with `tool_usage`, the tool's own); then it runs.
int run_verb(const verb& v, const std::string& db, const std::vector<std::string>& args, const char* tool_usage);

/// `GROUP SUBCOMMAND ARGS...`: --help right after the group prints the group's usage; a
/// missing or unknown subcommand is a usage error; the subcommand runs through run_verb.
int run_group(const verb_group& g, const std::string& db, const std::vector<std::string>& args,
              const char* tool_usage);

/// UTC "2026-11-25 08:30:00Z"; "" for 0 or less (never happened).
std::string format_ms(std::int64_t ms);

/// Prints rows as aligned columns on stdout. Widths are terminal columns (display_width), so
/// Vietnamese names, NFC or NFD, and wide text line up.
void print_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace fieldsync::admin
