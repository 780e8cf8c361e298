#pragma once
// The invariants the crash test and the soak bench check on a store after a run (ARCHITECTURE.md,
// "Testing"): what the promise to users says, read back from the store file.
//   - every answered change is present exactly once, with the answered version (history); a
//     `merged` equal to the head wrote nothing but names a version that exists; a conflict
//     answer names a conflict of that change; a rejected change wrote nothing;
//   - no history entry belongs to a change that was never answered;
//   - PRAGMA integrity_check is ok;
//   - history seqs are 1..N with no gap or repeat;
//   - the feed pulled from the beginning holds every record once, at its head version.
// The store must not be served by anyone else while it is checked.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace fieldsync::tools {

/// One change as a client sent it and the result the server answered for it.
struct answered_change {
    std::string change_id;
    std::string collection;
    std::string id;
    nlohmann::json result;   // one element of the answer's "results"
};

struct check_totals {
    long records = 0;
    long versions = 0;
    long applied = 0, merged = 0, conflicts = 0, rejected = 0;
};

/// PRAGMA integrity_check on a read-only connection; the failure text through `fail`.
bool integrity_ok(const std::filesystem::path& db, const std::function<void(const std::string&)>& fail);

/// Checks every invariant above; each broken one is reported through `fail` (the check goes
/// on, so one run shows all of them). Opens the store itself (migrating it if needed).
check_totals check_store(const std::filesystem::path& db, const std::vector<answered_change>& answered,
                         const std::function<void(const std::string&)>& fail);

}  // namespace fieldsync::tools
