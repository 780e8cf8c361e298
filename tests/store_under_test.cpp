#include "store_under_test.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#ifdef FIELDSYNC_WITH_POSTGRES
#include <libpq-fe.h>
#endif

namespace fieldsync::test {
namespace {

// The connection string of the PostgreSQL instance under test, "" when the tests run on SQLite.
std::string postgres_conninfo() {
    const char* file = std::getenv("FIELDSYNC_TEST_POSTGRES_FILE");
    if (!file || !*file) return {};
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line) || line.empty())
        throw std::runtime_error(std::string("FIELDSYNC_TEST_POSTGRES_FILE: no connection string in ") + file);
    return line;
}

// A schema name of the path: "t_" and the FNV-1a hash of it, in hex.
std::string schema_of(const std::string& path) {
    std::uint64_t h = 1469598103934665603ull;
    for (const unsigned char c : path) h = (h ^ c) * 1099511628211ull;
    std::ostringstream out;
    out << "t_" << std::hex << h;
    return out.str();
}

std::string schema_conninfo(const std::string& base, const std::string& path) {
#ifdef FIELDSYNC_WITH_POSTGRES
    const auto schema = schema_of(path);
    PGconn* c = PQconnectdb(base.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        std::string msg = PQerrorMessage(c);
        PQfinish(c);
        throw std::runtime_error("cannot reach the PostgreSQL under test: " + msg);
    }
    PGresult* r = PQexec(c, ("SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS " + schema).c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string msg = ok ? "" : PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error("cannot make the schema " + schema + ": " + msg);
    return base + " options='-c search_path=" + schema + "'";
#else
    (void)base;
    (void)path;
    throw std::runtime_error("FIELDSYNC_TEST_POSTGRES_FILE is set, but this build has no PostgreSQL");
#endif
}

}  // namespace

std::string store_engine_under_test() { return postgres_conninfo().empty() ? "sqlite" : "postgres"; }

protocol::expected<std::unique_ptr<server::store>> open_store_under_test(server::store_options options) {
    const auto base = postgres_conninfo();
    if (base.empty()) return server::open_sqlite_store(options);
    options.path = schema_conninfo(base, options.path);
    return server::open_postgres_store(options);
}

void run_on_postgres_under_test(const std::string& sql, const std::string& store_path) {
    const auto base = postgres_conninfo();
    if (base.empty()) throw std::runtime_error("run_on_postgres_under_test: the tests do not run on PostgreSQL");
#ifdef FIELDSYNC_WITH_POSTGRES
    const auto conninfo = store_path.empty() ? base : schema_conninfo(base, store_path);
    PGconn* c = PQconnectdb(conninfo.c_str());
    PGresult* r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql.c_str()) : nullptr;
    const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    const std::string msg = PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error("run_on_postgres_under_test: " + msg);
#else
    (void)sql;
    (void)store_path;
    throw std::runtime_error("FIELDSYNC_TEST_POSTGRES_FILE is set, but this build has no PostgreSQL");
#endif
}

std::string store_argument_under_test(const std::string& path) {
    const auto base = postgres_conninfo();
    return base.empty() ? "sqlite:" + path : "postgres:" + schema_conninfo(base, path);
}

}  // namespace fieldsync::test
