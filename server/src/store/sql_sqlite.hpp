#pragma once
// The SQLite connection under the central store (sql.hpp), over fieldsync::sqlite. Private to
// server/src/store.

#include "store/sql.hpp"

#include <memory>
#include <string>

struct sqlite3;

namespace fieldsync::server::sql {

/// Opens (creating it if missing) the SQLite file at `path` as the store uses it: WAL,
/// synchronous=FULL, foreign keys, the busy timeout and page cache of tuning.hpp. Throws
/// sql::error.
std::unique_ptr<db> open_sqlite(const std::string& path);
/// The SQLite handle under a connection open_sqlite made (nullptr for another engine's).
sqlite3* sqlite_handle(db& d) noexcept;

}  // namespace fieldsync::server::sql
