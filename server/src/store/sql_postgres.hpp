#pragma once
// The PostgreSQL connection under the central store (sql.hpp), over libpq. Statements come in
// SQLite's form (`?`, `?N`) and are prepared with `$N` parameters whose types the server
// infers. Private to server/src/store; libpq stays out of this header.

#include "store/sql.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace fieldsync::server::sql {

/// Opens a PostgreSQL connection (conninfo: "host=... port=... dbname=..." or a postgresql://
/// URI). Throws sql::error (transient when the server cannot be reached).
std::unique_ptr<db> open_postgres(const std::string& conninfo);

/// Rewrites SQLite-style parameters to PostgreSQL's: "?N" -> "$N", a bare "?" -> "$k" where k
/// is one more than the highest number used so far (SQLite's rule), outside single-quoted
/// string literals, double-quoted identifiers and comments (PostgreSQL's own "$N" stay as they
/// are). Exposed for tests.
std::string postgres_parameters(std::string_view sql);

/// A connection of its own that LISTENs on `channel` (commit_channel).
std::unique_ptr<commit_notifications> listen_postgres(const std::string& conninfo, const std::string& channel);

}  // namespace fieldsync::server::sql
