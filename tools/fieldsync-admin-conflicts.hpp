#pragma once
// `fieldsync-admin conflicts list|show|resolve` (issue 5): conflict review on the command
// line, through the store directly (like the other fieldsync-admin commands).

#include <string>
#include <vector>

namespace fieldsync::admin {

/// Runs `conflicts SUBCOMMAND ARGS...` against the store at `db` (--help is main's dispatch:
/// run_verb). Exit codes: 0 done; 1 failed (the message says why); 2 usage; 3 stale: the
/// record changed since the conflict was shown (it is printed again: decide again).
int run_conflicts(const std::string& db, const std::vector<std::string>& args);

extern const char* const k_conflicts_usage;

}  // namespace fieldsync::admin
