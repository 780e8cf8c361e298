// The PostgreSQL connection under the central store: sql::db and sql::stmt over libpq.
//
// Statements are prepared (PQprepare) under names of this connection ("fs1", "fs2", ...) with
// the parameters' types left to the server to infer, and executed with text parameters (blobs
// in binary) and text results. A result is fetched whole at the first step; later steps walk
// its rows.

#include "store/sql_postgres.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <system_error>
#include <vector>

namespace fieldsync::server::sql {
namespace {

constexpr Oid k_bool_oid = 16;
constexpr Oid k_bytea_oid = 17;

struct pq_finish {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct pq_clear {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, pq_clear>;

struct translated {
    std::string sql;
    int params = 0;  // the highest parameter number in it
};

// SQLite's parameters as PostgreSQL's (postgres_parameters), with the number of parameters.
translated translate(std::string_view sql) {
    translated t;
    t.sql.reserve(sql.size() + 16);
    const std::size_t n = sql.size();
    std::size_t i = 0;
    auto copy_to = [&](std::size_t j) {
        t.sql.append(sql.substr(i, j - i));
        i = j;
    };
    while (i < n) {
        const char c = sql[i];
        if (c == '\'' || c == '"') {
            // A doubled quote inside ends this literal and opens the next at once: the same.
            const std::size_t close = sql.find(c, i + 1);
            copy_to(close == std::string_view::npos ? n : close + 1);
        } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
            const std::size_t eol = sql.find('\n', i + 2);
            copy_to(eol == std::string_view::npos ? n : eol + 1);
        } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            const std::size_t close = sql.find("*/", i + 2);
            copy_to(close == std::string_view::npos ? n : close + 2);
        } else if (c == '?') {
            std::size_t j = i + 1;
            int number = 0;
            while (j < n && sql[j] >= '0' && sql[j] <= '9') {
                number = std::min(number * 10 + (sql[j] - '0'), 1'000'000);
                ++j;
            }
            if (j == i + 1) number = t.params + 1;
            t.params = std::max(t.params, number);
            t.sql += '$';
            t.sql += std::to_string(number);
            i = j;
        } else if (c == '$' && i + 1 < n && sql[i + 1] >= '0' && sql[i + 1] <= '9' &&
                   (i == 0 || !(std::isalnum(static_cast<unsigned char>(sql[i - 1])) || sql[i - 1] == '_'))) {
            // PostgreSQL's own form, kept, and counted.
            std::size_t j = i + 1;
            int number = 0;
            while (j < n && sql[j] >= '0' && sql[j] <= '9') {
                number = std::min(number * 10 + (sql[j] - '0'), 1'000'000);
                ++j;
            }
            t.params = std::max(t.params, number);
            copy_to(j);
        } else {
            t.sql += c;
            ++i;
        }
    }
    return t;
}

// A libpq message on one line: its line breaks and tabs as single spaces, no trailing space.
std::string one_line(const char* msg) {
    std::string out;
    for (const char* p = msg ? msg : ""; *p; ++p) {
        const bool space = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
        if (!space)
            out += *p;
        else if (!out.empty() && out.back() != ' ')
            out += ' ';
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// Failures a retry may get past: the connection (class 08, but a protocol violation, which is
// a bug), serialization failures, deadlocks, locks not available, resources (class 53), a server
// shutting down or starting, a canceled statement.
bool transient_sqlstate(std::string_view s) {
    if (s.size() != 5 || s == "08P01") return false;
    const std::string_view cls = s.substr(0, 2);
    return cls == "08" || cls == "53" || s == "40001" || s == "40P01" || s == "55P03" || s == "57P01" ||
           s == "57P02" || s == "57P03" || s == "57014" ||
           s == "25006";  // read_only_sql_transaction: a standby (the primary lost, or not yet promoted)
}

// Throws the failure of `sql` as sql::error: "what: <message> (SQLSTATE xxxxx) (in: <sql>)".
// A lost connection (no result, or the connection bad after the failure) is transient: the
// statement was not applied, or for a COMMIT its outcome is unknown, and the caller answers it
// as retryable.
[[noreturn]] void fail(PGconn* conn, const PGresult* r, std::string_view what, std::string_view sql) {
    std::string msg(what);
    msg += ": ";
    const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string text;
    if (primary)
        text = one_line(primary);
    else if (r && *PQresultErrorMessage(r))
        text = one_line(PQresultErrorMessage(r));
    else if (r && PQresultStatus(r) != PGRES_FATAL_ERROR && PQresultStatus(r) != PGRES_NONFATAL_ERROR)
        text = std::string("unexpected result ") + PQresStatus(PQresultStatus(r));
    else
        text = one_line(conn ? PQerrorMessage(conn) : "");
    msg += text.empty() ? "no answer from the server" : text;
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    if (state) {
        msg += " (SQLSTATE ";
        msg += state;
        msg += ')';
    }
    if (!sql.empty()) {
        msg += " (in: ";
        msg += sql;
        msg += ')';
    }
    const bool lost = !r || !conn || PQstatus(conn) == CONNECTION_BAD;
    // A standby refuses pg_walfile_name() (in every write transaction's BEGIN) with 55000
    // "recovery is in progress"; a node being promoted says so until its promotion ends, after
    // which it may already answer pg_is_in_recovery() with false: a failover, not a fault.
    const bool in_recovery = state && std::string_view(state) == "55000" &&
                             text.rfind("recovery is in progress", 0) == 0;
    throw error(msg, lost || in_recovery || (state && transient_sqlstate(state)));
}

bool succeeded(const PGresult* r) {
    if (!r) return false;
    const ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

// Failures to connect that no retry mends: a wrong database, role or password, a refusal by
// pg_hba.conf, a malformed option. Anything else (refused, unreachable, timed out, too many
// clients, starting up, shutting down) may pass.
bool permanent_connect_failure(const std::string& m) {
    for (const char* p : {"does not exist", "authentication failed", "pg_hba.conf", "no password supplied",
                          "permission denied", "invalid "})
        if (m.find(p) != std::string::npos) return true;
    return false;
}

std::int64_t parse_int64(const char* v, int len) {
    const char* end = v + len;
    std::int64_t i = 0;
    const auto [p, ec] = std::from_chars(v, end, i);
    if (ec == std::errc() && p == end) return i;
    // "12.0" (numeric sums), "1e+20" (float8), or beyond 64 bits: as a double, truncated.
    double d = 0;
    const auto [q, ec2] = std::from_chars(v, end, d);
    if (ec2 == std::errc() && q != v) {
        if (std::isnan(d)) return 0;
        if (d >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
        if (d <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
        return static_cast<std::int64_t>(d);
    }
    return ec == std::errc() ? i : 0;
}

void ignore_notice(void*, const char*) {}

class pg_db;

class pg_stmt final : public stmt {
public:
    // Prepares `sql` under a fresh name of `db`. own: a statement of its own (db::prepare),
    // deallocated when destroyed; otherwise one of db's cache, which lives as long as db.
    pg_stmt(pg_db& db, std::string_view sql, bool own);
    ~pg_stmt() override;
    pg_stmt(const pg_stmt&) = delete;
    pg_stmt& operator=(const pg_stmt&) = delete;

    void reset() override {
        end_result();
        params_.clear();
    }
    void bind_int64(int index, std::int64_t v) override { set(index, slot::text, std::to_string(v)); }
    void bind_real(int index, double v) override {
        char buf[64];
        // The shortest text that reads back as the same double.
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        set(index, slot::text, std::string(buf, r.ptr));
    }
    void bind_text(int index, std::string_view v) override {
        // Text parameters travel as C strings; PostgreSQL's text cannot hold NUL anyway.
        if (v.find('\0') != std::string_view::npos)
            throw error("bind: text parameter " + std::to_string(index) +
                            " holds a NUL byte, which PostgreSQL text cannot (bind it as a blob) (in: " + sql_ +
                            ")",
                        false);
        set(index, slot::text, std::string(v));
    }
    void bind_blob(int index, const void* data, std::size_t size) override {
        set(index, slot::blob, size ? std::string(static_cast<const char*>(data), size) : std::string());
    }
    void bind_null(int index) override { set(index, slot::null, std::string()); }

    bool step() override {
        if (!executed_) execute();
        if (!result_ || PQresultStatus(result_.get()) != PGRES_TUPLES_OK) {
            busy_ = false;
            return false;
        }
        const int rows = PQntuples(result_.get());
        if (row_ < rows) ++row_;
        busy_ = row_ < rows;
        return busy_;
    }
    void run() override {
        if (!executed_) execute();
        end_result();
    }
    void run_deferred() override;

    std::int64_t int64(int col) const override {
        const char* v = value(col);
        if (!v) return 0;
        if (type(col) == k_bool_oid) return v[0] == 't' ? 1 : 0;
        return parse_int64(v, PQgetlength(result_.get(), row_, col));
    }
    double real(int col) const override {
        const char* v = value(col);
        if (!v) return 0.0;
        if (type(col) == k_bool_oid) return v[0] == 't' ? 1.0 : 0.0;
        double d = 0.0;
        const auto r = std::from_chars(v, v + PQgetlength(result_.get(), row_, col), d);
        return r.ec == std::errc() ? d : 0.0;
    }
    std::string text(int col) const override {
        const char* v = value(col);
        if (!v) return std::string();
        const Oid t = type(col);
        if (t == k_bool_oid) return v[0] == 't' ? "1" : "0";  // as SQLite, which has no booleans, says
        if (t == k_bytea_oid) {
            std::size_t size = 0;
            unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &size);
            if (!raw) throw error("text: out of memory decoding a bytea column (in: " + sql_ + ")", true);
            std::string out(reinterpret_cast<const char*>(raw), size);
            PQfreemem(raw);
            return out;
        }
        return std::string(v, static_cast<std::size_t>(PQgetlength(result_.get(), row_, col)));
    }
    bool is_null(int col) const override { return value(col) == nullptr; }

    // Stepped onto a row and neither finished nor reset.
    bool mid_step() const noexcept { return busy_; }
    const std::string& sql() const noexcept { return sql_; }
    // The connection closes before this statement of its own: nothing to deallocate.
    void detach() noexcept {
        end_result();
        db_ = nullptr;
    }

private:
    enum class slot : unsigned char { unset, null, text, blob };
    struct param {
        slot kind = slot::unset;
        std::string value;
    };

    void set(int index, slot kind, std::string value) {
        // As SQLite's SQLITE_RANGE: the server would refuse more parameters than the text has.
        if (index < 1 || index > declared_)
            throw error("bind: parameter index " + std::to_string(index) + " out of range: the statement has " +
                            std::to_string(declared_) + " (in: " + sql_ + ")",
                        false);
        if (params_.size() < static_cast<std::size_t>(index)) params_.resize(static_cast<std::size_t>(index));
        params_[static_cast<std::size_t>(index) - 1] = param{kind, std::move(value)};
    }
    void end_result() noexcept {
        result_.reset();
        executed_ = false;
        busy_ = false;
        row_ = -1;
    }
    void execute();
    // Prepares the statement on the server under name_, for the connection's current session.
    void prepare_on_server();
    // The bound parameters as libpq takes them (pointing into params_).
    struct wire_params {
        std::vector<const char*> values;
        std::vector<int> lengths;
        std::vector<int> formats;
    };
    wire_params on_the_wire() const;
    // The current row's value at col, nullptr when NULL, or when there is no such row or column.
    const char* value(int col) const noexcept {
        if (!busy_ || !result_ || col < 0 || col >= PQnfields(result_.get())) return nullptr;
        if (PQgetisnull(result_.get(), row_, col)) return nullptr;
        return PQgetvalue(result_.get(), row_, col);
    }
    Oid type(int col) const noexcept { return PQftype(result_.get(), col); }

    pg_db* db_;
    std::string sql_;   // as the store wrote it, for messages
    std::string name_;  // of the prepared statement
    std::string translated_;  // the text PostgreSQL prepares ($N parameters)
    unsigned long session_ = 0;  // the connection's session it was prepared in (pg_db::session)
    int declared_ = 0;  // parameters in the text: unbound ones go as NULL, as in SQLite
    bool own_;
    std::vector<param> params_;
    result_ptr result_;
    bool executed_ = false;
    bool busy_ = false;
    int row_ = -1;
};

class pg_db final : public db {
public:
    explicit pg_db(const std::string& conninfo) {
        char* err = nullptr;
        PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
        if (!opts) {
            const std::string m = err ? one_line(err) : std::string("out of memory");
            if (err) PQfreemem(err);
            throw error("connect: " + m, !err);
        }
        PQconninfoFree(opts);
        conn_.reset(PQconnectdb(conninfo.c_str()));
        if (!conn_) throw error("connect: out of memory", true);
        if (PQstatus(conn_.get()) != CONNECTION_OK) {
            const std::string m = one_line(PQerrorMessage(conn_.get()));
            throw error("connect: " + m, !permanent_connect_failure(m));
        }
        PQsetNoticeProcessor(conn_.get(), ignore_notice, nullptr);
        set_up_session();
    }
    ~pg_db() override {
        cache_.clear();  // statements before their connection
        for (pg_stmt* s : live_) s->detach();
        live_.clear();
        // conn_'s deleter PQfinish'es the connection last.
    }
    pg_db(const pg_db&) = delete;
    pg_db& operator=(const pg_db&) = delete;

    engine kind() const noexcept override { return engine::postgres; }

    void exec(std::string_view sql) override {
        const std::string s(sql);
        run_simple(s.c_str(), "exec", sql);
    }

    query cached(std::string_view sql) override {
        auto it = cache_.find(sql);
        if (it == cache_.end()) {
            auto s = std::make_unique<pg_stmt>(*this, sql, false);
            it = cache_.emplace(std::string(sql), std::move(s)).first;
        }
        return query(*it->second);
    }

    std::unique_ptr<stmt> prepare(std::string_view sql) override {
        return std::make_unique<pg_stmt>(*this, sql, true);
    }

    std::int64_t changes() const override { return changes_; }

    std::string held_open() const override {
        std::string open;
        const PGTransactionStatusType ts = PQtransactionStatus(conn_.get());
        if (ts == PQTRANS_UNKNOWN)
            open = "a lost connection";
        else if (ts != PQTRANS_IDLE)
            open = "a transaction";
        if (pipelined_) open += std::string(open.empty() ? "" : "; ") + "statements sent and not settled";
        for (const pg_stmt* s : live_) {
            if (!s->mid_step()) continue;
            if (!open.empty()) open += "; ";
            open += "a statement stepped but not finished: ";
            open += s->sql();
        }
        return open;
    }

    void begin_read() override { begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }

    // One write lock for the whole store, a transaction-level advisory lock released at
    // COMMIT or ROLLBACK: writers, on this server or any other on the same database, commit one
    // after another, so the feed's seqs, taken in the transaction, commit in their order and a
    // reader never sees seq n+1 before seq n. (Row locks alone would let two writers take
    // consecutive seqs and commit in the other order.) BEGIN and the lock go in one round trip.
    // The same round trip reads the timeline: the first 8 hex digits of the current WAL
    // file's name (pg_walfile_name needs no privilege, unlike pg_control_checkpoint).
    void begin_write() override {
        auto r = begin("BEGIN; SELECT pg_advisory_xact_lock(4242001), pg_walfile_name(pg_current_wal_lsn())");
        timeline_.clear();
        if (r && PQntuples(r.get()) == 1 && PQnfields(r.get()) == 2) {
            const char* wal = PQgetvalue(r.get(), 0, 1);
            timeline_.assign(wal, std::min<std::size_t>(8, std::strlen(wal)));
        }
        if (timeline_.size() != 8) {
            rollback();
            throw error("begin: the server did not say its timeline (in: BEGIN)", false);
        }
    }

    std::string timeline() const override { return timeline_; }

    void commit() override {
        settle();
        PGconn* c = conn_.get();
        result_ptr r(PQexec(c, "COMMIT"));
        if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
            flush_deallocations();
            fail(c, r.get(), "commit", "COMMIT");
        }
        // COMMIT of a transaction an earlier error aborted rolls it back and says so only by
        // its command tag.
        const bool rolled_back = std::strcmp(PQcmdStatus(r.get()), "ROLLBACK") == 0;
        flush_deallocations();
        if (rolled_back)
            throw error("commit: the transaction had failed and was rolled back (in: COMMIT)", false);
    }

    void rollback() noexcept override {
        try {
            settle();  // a failure there is what is being rolled back
        } catch (...) {
        }
        PGconn* c = conn_.get();
        const PGTransactionStatusType ts = PQtransactionStatus(c);
        if (ts == PQTRANS_IDLE || ts == PQTRANS_UNKNOWN) return;  // nothing open, or no connection
        PQclear(PQexec(c, "ROLLBACK"));
        flush_deallocations();
    }

    // Pipeline mode (stmt::run_deferred): statements sent without waiting for their answers,
    // which settle() reads, at the latest before anything else is sent. libpq buffers what is
    // sent; past k_pipeline_depth statements the answers are read, so neither side's buffers
    // fill up.
    static constexpr std::size_t k_pipeline_depth = 512;

    void send_deferred(const std::string& name, int n, const char* const* values, const int* lengths,
                       const int* formats, const std::string& sql) {
        PGconn* c = conn_.get();
        if (!pipelined_) {
            if (PQenterPipelineMode(c) != 1)
                throw error("execute: cannot enter pipeline mode: " + one_line(PQerrorMessage(c)) + " (in: " + sql + ")",
                            PQstatus(c) == CONNECTION_BAD);
            pipelined_ = true;
        }
        if (PQsendQueryPrepared(c, name.c_str(), n, values, lengths, formats, 0) != 1) {
            const std::string m = one_line(PQerrorMessage(c));
            try {
                settle();
            } catch (...) {
            }
            throw error("execute: " + m + " (in: " + sql + ")", true);
        }
        deferred_.push_back(sql);
        if (deferred_.size() >= k_pipeline_depth) settle();
    }

    // Reads the answers of the statements sent in pipeline mode and leaves it; throws the first
    // failure among them (those after it were not run: the transaction failed there).
    void settle() {
        if (!pipelined_) return;
        pipelined_ = false;
        PGconn* c = conn_.get();
        std::vector<std::string> sent;
        sent.swap(deferred_);
        result_ptr failed;
        std::string failed_sql;
        bool lost = PQpipelineSync(c) != 1;
        std::size_t i = 0;
        int empty = 0;
        while (!lost) {
            result_ptr r(PQgetResult(c));
            if (!r) {
                // One NULL ends each statement's answers; more in a row, or a dead connection,
                // means nothing more is coming.
                if (PQstatus(c) == CONNECTION_BAD || ++empty > 2) lost = true;
                continue;
            }
            empty = 0;
            const ExecStatusType st = PQresultStatus(r.get());
            if (st == PGRES_PIPELINE_SYNC) break;
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_PIPELINE_ABORTED && !failed) {
                failed_sql = i < sent.size() ? sent[i] : std::string("a pipelined statement");
                failed = std::move(r);
            }
            ++i;
        }
        // Fails only with answers still unread (the connection lost): the next transaction
        // opens it again.
        if (PQexitPipelineMode(c) != 1) reconnect_next_ = true;
        if (failed) fail(c, failed.get(), "execute", failed_sql);
        if (lost)
            throw error("execute: the connection was lost with " + std::to_string(sent.size()) +
                            " statements sent (in: " + (sent.empty() ? std::string() : sent.front()) + ")",
                        true);
    }

    // For the statements.
    PGconn* conn() const noexcept { return conn_.get(); }
    // Counts the connection's sessions: a statement prepared in an earlier one is prepared
    // again before it runs (a reconnection loses the server's prepared statements).
    unsigned long session() const noexcept { return session_; }
    std::string next_name() { return "fs" + std::to_string(++named_); }
    void enlist(pg_stmt* s) { live_.insert(s); }
    void forget(pg_stmt* s) noexcept { live_.erase(s); }

    // changes() counts INSERT, UPDATE, DELETE and MERGE, as SQLite's does; other statements
    // (SELECT, BEGIN, COMMIT, DDL) leave it as it was.
    void note(const PGresult* r) noexcept {
        const char* tag = PQcmdStatus(const_cast<PGresult*>(r));
        if (!tag) return;
        const std::string_view t(tag);
        if (!(t.starts_with("INSERT ") || t.starts_with("UPDATE ") || t.starts_with("DELETE ") ||
              t.starts_with("MERGE ")))
            return;
        const char* n = PQcmdTuples(const_cast<PGresult*>(r));
        std::int64_t v = 0;
        if (n && *n) std::from_chars(n, n + std::strlen(n), v);
        changes_ = v;
    }

    // Drops a statement of its own from the server, ignoring failures. In a failed transaction
    // the server would refuse: it is dropped after the transaction ends.
    void deallocate(const std::string& name) noexcept {
        try {
            PGconn* c = conn_.get();
            if (PQstatus(c) != CONNECTION_OK) return;
            if (pipelined_ || PQtransactionStatus(c) == PQTRANS_INERROR) {
                undeallocated_.push_back(name);
                return;
            }
            PQclear(PQexec(c, ("DEALLOCATE " + name).c_str()));
        } catch (...) {
        }
    }

private:
    void set_up_session() {
        // UTF-8 whatever the environment says; bytea in hex (decoded by text()); floats in
        // their shortest exact form; standard strings (a backslash is a backslash).
        run_simple(
            "SET client_min_messages = warning; SET client_encoding = 'UTF8'; SET bytea_output = hex; "
            "SET extra_float_digits = 1; SET standard_conforming_strings = on",
            "connect", "SET ...");
    }

    // A connection the server closed (restarted, failed over, the backend terminated) is
    // opened again with the same parameters, at the start of a transaction only, never
    // inside one: what a lost transaction did is decided by its caller (a transient error;
    // the change ids settle a retry). Fails transient while the server cannot be reached.
    void reconnect_if_lost() {
        PGconn* c = conn_.get();
        if (PQstatus(c) == CONNECTION_OK && !reconnect_next_) return;
        reconnect_next_ = false;
        PQreset(c);
        if (PQpipelineStatus(c) != PQ_PIPELINE_OFF) PQexitPipelineMode(c);
        deferred_.clear();
        pipelined_ = false;
        if (PQstatus(c) != CONNECTION_OK)
            throw error("connect: " + one_line(PQerrorMessage(c)) + " (reconnecting)", true);
        ++session_;
        undeallocated_.clear();  // the old session's statements went with it
        set_up_session();
    }

    result_ptr run_simple(const char* sql, std::string_view what, std::string_view shown) {
        settle();
        PGconn* c = conn_.get();
        result_ptr r(PQexec(c, sql));
        if (!succeeded(r.get())) fail(c, r.get(), what, shown);
        note(r.get());
        return r;
    }

    // Returns the result of the last statement of `sql`.
    result_ptr begin(const char* sql) {
        const PGTransactionStatusType ts = PQtransactionStatus(conn_.get());
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE)
            throw error(std::string("begin: a transaction is already open on this connection (in: ") + sql + ")",
                        false);
        reconnect_if_lost();
        try {
            return run_simple(sql, "begin", sql);
        } catch (const error&) {
            rollback();
            // The connection died while idle (libpq learns it only now): nothing of this
            // transaction ran, so it begins once more on a new connection.
            if (PQstatus(conn_.get()) != CONNECTION_BAD) {
                refuse_standby();
                throw;
            }
            reconnect_if_lost();
            try {
                return run_simple(sql, "begin", sql);
            } catch (...) {
                rollback();
                refuse_standby();
                throw;
            }
        } catch (...) {
            rollback();
            throw;
        }
    }

    // After a failed BEGIN: a connection that reached a standby (a failover under way, or a
    // proxy not yet told; a standby refuses the write lock) fails as transient, and the next
    // transaction connects again, through the proxy to whichever node is primary by then.
    void refuse_standby() {
        PGconn* c = conn_.get();
        if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) return;
        result_ptr r(PQexec(c, "SELECT pg_is_in_recovery()"));
        if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) return;
        if (std::strcmp(PQgetvalue(r.get(), 0, 0), "t") != 0) return;
        reconnect_next_ = true;
        throw error("begin: the PostgreSQL server is a standby in recovery, not the primary (a failover?); "
                    "connecting again at the next transaction",
                    true);
    }

    void flush_deallocations() noexcept {
        if (undeallocated_.empty()) return;
        try {
            PGconn* c = conn_.get();
            if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) return;
            std::string sql;
            for (const std::string& name : undeallocated_) sql += "DEALLOCATE " + name + ";";
            undeallocated_.clear();
            PQclear(PQexec(c, sql.c_str()));
        } catch (...) {
        }
    }

    std::unique_ptr<PGconn, pq_finish> conn_;
    std::map<std::string, std::unique_ptr<pg_stmt>, std::less<>> cache_;
    std::set<pg_stmt*> live_;                 // every statement of this connection, for held_open
    std::vector<std::string> undeallocated_;  // names to DEALLOCATE once the transaction ends
    unsigned long named_ = 0;
    unsigned long session_ = 0;
    std::int64_t changes_ = 0;
    std::string timeline_;         // of the open write transaction
    bool pipelined_ = false;       // in pipeline mode, with deferred_ sent
    std::vector<std::string> deferred_;  // the statements sent and not yet settled
    bool reconnect_next_ = false;  // the connection reached a standby
};

pg_stmt::pg_stmt(pg_db& db, std::string_view sql, bool own) : db_(&db), sql_(sql), own_(own) {
    translated t = translate(sql);
    declared_ = t.params;
    name_ = db.next_name();
    translated_ = std::move(t.sql);
    prepare_on_server();
    db.enlist(this);
}

void pg_stmt::prepare_on_server() {
    db_->settle();
    result_ptr r(PQprepare(db_->conn(), name_.c_str(), translated_.c_str(), 0, nullptr));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) fail(db_->conn(), r.get(), "prepare", sql_);
    session_ = db_->session();
}

pg_stmt::~pg_stmt() {
    if (!db_) return;
    db_->forget(this);
    // Not one of an earlier session: the server has no such name (a failed DEALLOCATE would
    // abort the transaction around it).
    if (own_ && session_ == db_->session()) db_->deallocate(name_);
}

pg_stmt::wire_params pg_stmt::on_the_wire() const {
    const std::size_t n = static_cast<std::size_t>(declared_);
    wire_params w{std::vector<const char*>(n, nullptr), std::vector<int>(n, 0), std::vector<int>(n, 0)};
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const param& p = params_[i];
        if (p.kind == slot::text || p.kind == slot::blob) {
            w.values[i] = p.value.c_str();
            w.lengths[i] = static_cast<int>(p.value.size());
            w.formats[i] = p.kind == slot::blob ? 1 : 0;
        }
    }
    return w;
}

void pg_stmt::run_deferred() {
    if (!db_) throw error("execute: the statement's connection is closed (in: " + sql_ + ")", false);
    if (session_ != db_->session()) prepare_on_server();
    const auto w = on_the_wire();
    db_->send_deferred(name_, declared_, w.values.data(), w.lengths.data(), w.formats.data(), sql_);
    end_result();
}

void pg_stmt::execute() {
    if (!db_) throw error("execute: the statement's connection is closed (in: " + sql_ + ")", false);
    db_->settle();
    PGconn* c = db_->conn();
    if (session_ != db_->session()) prepare_on_server();
    const auto w = on_the_wire();
    result_ptr r(PQexecPrepared(c, name_.c_str(), declared_, w.values.data(), w.lengths.data(), w.formats.data(), 0));
    if (!succeeded(r.get())) fail(c, r.get(), "execute", sql_);
    db_->note(r.get());
    result_ = std::move(r);
    executed_ = true;
    busy_ = false;
    row_ = -1;
}

}  // namespace

std::unique_ptr<db> open_postgres(const std::string& conninfo) { return std::make_unique<pg_db>(conninfo); }

namespace {

class pg_listener final : public commit_notifications {
public:
    pg_listener(const std::string& conninfo, const std::string& channel) : conn_(PQconnectdb(conninfo.c_str())) {
        PGconn* c = conn_.get();
        if (!c || PQstatus(c) != CONNECTION_OK)
            throw error("listen: " + (c ? one_line(PQerrorMessage(c)) : std::string("out of memory")), true);
        PQsetNoticeProcessor(c, ignore_notice, nullptr);
        result_ptr r(PQexec(c, ("LISTEN \"" + channel + "\"").c_str()));
        if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) fail(c, r.get(), "listen", "LISTEN");
    }

    bool wait(int timeout_ms, const std::string& own) override {
        PGconn* c = conn_.get();
        if (drain(own)) return true;
        const int sock = PQsocket(c);
        if (sock < 0) throw error("listen: the connection is closed", true);
        pollfd p{sock, POLLIN, 0};
        const int n = ::poll(&p, 1, timeout_ms);
        if (n <= 0) return false;  // the time ran out, or a signal
        if (!PQconsumeInput(c)) throw error("listen: " + one_line(PQerrorMessage(c)), true);
        return drain(own);
    }

private:
    bool drain(const std::string& own) noexcept {
        bool any = false;
        while (PGnotify* n = PQnotifies(conn_.get())) {
            if (!n->extra || own != n->extra) any = true;
            PQfreemem(n);
        }
        return any;
    }

    std::unique_ptr<PGconn, pq_finish> conn_;
};

}  // namespace

std::unique_ptr<commit_notifications> listen_postgres(const std::string& conninfo, const std::string& channel) {
    return std::make_unique<pg_listener>(conninfo, channel);
}

std::string postgres_parameters(std::string_view sql) { return translate(sql).sql; }

}  // namespace fieldsync::server::sql
