#pragma once
// The store the tests run on (ARCHITECTURE.md, "Testing": one test source, two stores).
// Normally SQLite, at the path the test gives. When FIELDSYNC_TEST_POSTGRES_FILE names a file
// holding a libpq connection string (ctest's "postgres: " entries: tools/pg-instance starts
// the server and writes it), the same tests run on PostgreSQL: each store path becomes a
// schema of its own in that database, named from the path, so a test that opens its store
// again (a restart) finds what it wrote, and tests never see each other's data.

#include <fieldsync/server/store.hpp>

#include <memory>
#include <string>

namespace fieldsync::test {

/// "postgres" when the tests run on PostgreSQL, else "sqlite".
std::string store_engine_under_test();

/// Opens the store under test for `options` (options.path: the SQLite file the test chose).
protocol::expected<std::unique_ptr<server::store>> open_store_under_test(server::store_options options);

/// The --store argument of fieldsync-server and fieldsync-admin for the store of `path`:
/// "sqlite:PATH", or "postgres:CONNINFO" of its schema.
std::string store_argument_under_test(const std::string& path);

/// Runs `sql` (no results kept) on the PostgreSQL instance under test, on a connection of
/// its own: for tests of PostgreSQL alone ([postgres]) that act on the server, e.g. cutting
/// connections, or with `store_path` on the tables of that store (its schema). Throws when the
/// tests do not run on PostgreSQL or the SQL fails.
void run_on_postgres_under_test(const std::string& sql, const std::string& store_path = {});

}  // namespace fieldsync::test
