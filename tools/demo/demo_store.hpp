#pragma once
// Writes a demo data set (demo.hpp) into a central store through the store API, so versions,
// history and the change feed are what real syncs would have made: the units, the demo's
// devices, then the records in change-sets written by the district's admin device, then the
// edit races (data_set::races), each device writing its own change as it would by syncing.

#include "demo/demo.hpp"

#include <fieldsync/server/store.hpp>

#include <string>
#include <utility>
#include <vector>

namespace fieldsync::demo {

struct load_result {
    std::vector<std::pair<device_row, std::string>> devices;   // with their tokens (shown once)
    std::size_t records = 0;                                    // distinct records written
    std::size_t versions = 0;                                   // versions written (edits included)
    std::vector<std::string> conflicts;                         // the races' conflict ids, in data_set::races order
};

/// Loads `d` into `st`. Refuses (bad_request) a store that already holds units or records,
/// so the demo never mixes with real data; a change the store does not apply is an error
/// naming it (the data set is made to validate, so that is a bug to report).
protocol::expected<load_result> load(server::store& st, const data_set& d);

}  // namespace fieldsync::demo
