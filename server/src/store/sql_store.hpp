#pragma once
// The implementation of `store` (store.hpp says what it promises; ARCHITECTURE.md, "Central
// store", shows the tables) on SQL: SQLite or PostgreSQL, through sql.hpp's connections.
// Private to server/src/store. Its members are defined by concern: sql_store.cpp (opening,
// migrations, the read pool, push), write_path.cpp
// (the writer thread, group commit and the sync engine), reads.cpp (feed, records, history,
// conflicts, versions_at, held outcomes, last syncs), devices.cpp (devices, tokens and units), conflicts.cpp
// (resolve), retention.cpp (device_pull, acknowledgements, gc), relay.cpp (a hub's forwards
// and upstream answers), reports.cpp (report); backup.cpp defines the free backup and restore
// functions of store.hpp.

#include <fieldsync/protocol/merge.hpp>
#include <fieldsync/server/store.hpp>

#include "store/sql.hpp"
#include "store/store_util.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace fieldsync::server {

class sql_store final : public store {
public:
    /// Opens a new connection to the store's database (throws sql::error).
    using connector = std::function<std::unique_ptr<sql::db>()>;
    /// Opens a connection that hears of other connections' commits (PostgreSQL); none on SQLite.
    using listener = std::function<std::unique_ptr<sql::commit_notifications>(const std::string& channel)>;
    /// `connect` opens every connection the store uses: the writer's, the pooled readers',
    /// and one per administrative write.
    sql_store(const store_options& o, connector connect, listener listen = {});
    ~sql_store() override { close(); }

    void submit(const device& dev, proto::change_set cs, push_done done) override;
    void close() override;
    const proto::schema& schema() const override { return schema_; }
    const store_metrics& metrics() const override { return metrics_; }
    const std::string& incarnation() const override { return incarnation_; }
    proto::expected<std::int64_t> open_conflicts() override;
    proto::expected<std::vector<std::pair<std::string, std::int64_t>>> last_syncs() override;
    proto::hlc now_hlc() override { return clock_.now(); }
    std::shared_ptr<void> watch_commits(std::function<void()> listener) override;

    using sync_store::pull;
    using sync_store::get;
    using sync_store::history;
    using review_store::conflicts;
    using review_store::conflict;
    proto::expected<pull_page> pull(const scope& sc, std::int64_t after_seq, std::int64_t limit) override;
    proto::expected<pull_page> device_pull(const device& dev, std::int64_t after_seq, std::int64_t limit) override;
    proto::expected<gc_report> gc(const gc_options& o) override;
    proto::expected<std::vector<std::optional<held_version>>> versions_at(const std::vector<proto::pulled_change>& page,
                                                                         std::int64_t after_seq) override;
    proto::expected<std::vector<proto::resolution_notice>> held_outcomes(
        const device& dev, const std::vector<std::string>& conflict_ids) override;
    proto::expected<std::optional<record_view>> get(const scope& sc, const std::string& collection,
                                                    const std::string& id) override;
    proto::expected<std::vector<history_entry>> history(const scope& sc, const std::string& collection,
                                                        const std::string& id) override;
    proto::expected<std::vector<conflict_view>> conflicts(const scope& sc, const std::string& status,
                                                          std::int64_t limit, std::int64_t offset) override;
    proto::expected<std::vector<conflict_view>> conflicts(const scope& sc, const conflict_filter& f) override;
    proto::expected<std::optional<conflict_view>> conflict(const scope& sc, const std::string& id) override;

    proto::expected<std::pair<device, std::string>> add_device(const std::string& name, const std::string& unit_id,
                                                               device_role role) override;
    proto::expected<std::optional<device>> authenticate(const std::string& token) override;
    proto::expected<std::vector<device>> devices() override;
    proto::expected<void> revoke_device(const std::string& device_id) override;
    proto::expected<std::string> rotate_device(const std::string& device_id) override;
    proto::expected<void> move_device(const std::string& device_id, const std::string& unit_id) override;
    proto::expected<enrolment> enrol_device(const std::string& device_id, std::chrono::milliseconds valid_for) override;
    proto::expected<device> redeem_enrolment(const std::string& code, const std::string& token) override;
    proto::expected<unit> put_unit(const unit& u) override;
    proto::expected<std::vector<unit>> units() override;
    proto::expected<report_table> report(const scope& sc, const report_request& r) override;
    proto::expected<report_overview> report_years(const scope& sc, const std::string& unit_id) override;
    proto::expected<campaign_year_info> campaign_year() override;
    proto::expected<void> set_campaign_year(std::optional<std::int64_t> year) override;
    void override_campaign_year(std::optional<std::int64_t> year) override;
    proto::expected<conflict_view> resolve(const device& reviewer, const std::string& conflict_id,
                                           const resolution& r) override;
    proto::expected<resolution_preview> preview(const device& reviewer, const std::string& conflict_id,
                                                const resolution& r) override;
    proto::expected<std::vector<forward_entry>> relay_forwards(std::int64_t after_seq, std::int64_t limit) override;
    proto::expected<void> relay_answer(const proto::sync_response& answer) override;
    proto::expected<std::int64_t> relay_backlog() override;
    // attachments.cpp
    proto::expected<bool> blob_readable(const scope& sc, const std::string& sha256) override;
    proto::expected<std::optional<blob_meta>> blob(const std::string& sha256) override;
    proto::expected<void> keep_blob(const blob_meta& m) override;
    proto::expected<std::int64_t> blob_bytes_since(const std::string& device_id, std::int64_t since_ms) override;
    proto::expected<std::vector<blob_meta>> unnamed_blobs(std::int64_t before_ms) override;
    proto::expected<bool> blob_named(const std::string& sha256) override;
    proto::expected<void> forget_blob(const std::string& sha256) override;
    proto::expected<std::pair<std::int64_t, std::int64_t>> blob_totals() override;

private:
    struct job {
        device dev;
        proto::change_set cs;
        push_done done;
    };

    // sql_store.cpp
    void migrate();
    void migrate_sqlite();
    void migrate_postgres();
    void recover_clock();
    // The schema the store serves: the one given (written into meta, so the tools opening the
    // store later read it too), else the one a server wrote there, else the default.
    void keep_schema(const proto::schema* given);
    std::unique_ptr<sql::db> acquire_reader();
    // Back to the pool, if it holds nothing open (sql::db::held_open); otherwise it is
    // closed, and a strict build (FIELDSYNC_STRICT_SQLITE: debug and sanitizer builds) aborts.
    void release_reader(std::unique_ptr<sql::db> c);
    void drop_reader();

    // Runs `fn` on a read connection from the pool, in a read transaction of its own (one
    // snapshot, let go when `fn` returns or throws); storage exceptions become errors.
    template <class Fn>
    auto read(Fn&& fn) -> proto::expected<decltype(fn(std::declval<sql::db&>()))> {
        std::unique_ptr<sql::db> conn;
        try {
            conn = acquire_reader();
            auto result = [&] {
                sql::read_transaction tx(*conn);
                return fn(*conn);
            }();
            release_reader(std::move(conn));
            return result;
        } catch (const std::exception& e) {
            // A connection that failed mid-statement is dropped rather than reused.
            drop_reader();
            return store_util::storage_failure(e);
        }
    }

    // Runs `fn` in a write transaction of its own, on a fresh connection. For administration
    // (devices, units), which the admin tool does from another process while the server runs:
    // the store's write lock (sql::db::begin_write) serializes it with the writer thread.
    template <class Fn>
    auto admin_write(Fn&& fn) -> proto::expected<decltype(fn(std::declval<sql::db&>()))> {
        try {
            const auto conn = connect_();
            auto& db = *conn;
            db.begin_write();
            try {
                auto result = fn(db);
                announce_commit(db);
                db.commit();
                tell_commit();
                return result;
            } catch (...) {
                db.rollback();
                throw;
            }
        } catch (const admin_refusal& r) {
            return r.err;
        } catch (const std::exception& e) {
            return store_util::storage_failure(e);
        }
    }
    // Thrown inside admin_write to refuse with an error of the caller's (and roll back).
    struct admin_refusal {
        proto::error err;
    };

    // Calls the listeners of watch_commits (after a commit; any thread).
    void tell_commit() noexcept;
    // Announces this transaction's commit to the other servers (PostgreSQL's NOTIFY, sent at
    // COMMIT, with this store object's voice as payload); nothing on SQLite. Called before
    // commit() by every write that tells its own.
    void announce_commit(sql::db& db) const;
    // The thread that relays other servers' commits to tell_commit (write_path.cpp).
    void hear_commits();
    struct commit_listeners {
        std::mutex mutex;  // held while they are called, so a subscription ends after a call
        std::uint64_t next_key = 0;
        std::map<std::uint64_t, std::function<void()>> all;
    };

    // The path of a unit: its place in the tree, or a tree of its own when it is unknown.
    static std::string path_of(sql::db& db, const std::string& unit_id);
    // The next seq of the feed; seq_ is loaded from meta when a write transaction begins.
    // On PostgreSQL it also notices a promotion (the timeline changed since the last write) and
    // writes off the seqs the lost primary may have shown: meta 'lost_seqs'.
    static std::int64_t load_seq(sql::db& db);
    // Seqs written off at a promotion: more than a primary can show that its synchronous
    // standby has not received.
    static constexpr std::int64_t k_lost_seqs = 1'000'000'000;
    // Whether `seq` lies in the written-off ranges of meta 'lost_seqs'.
    static bool in_lost_seqs(std::string_view lost, std::int64_t seq);
    static void store_seq(sql::db& db, std::int64_t seq);

    // reads.cpp
    static conflict_view read_conflict(sql::stmt& s);
    // Fills the names of conflict_view (title, device, unit, path) within the read's snapshot;
    // one namer per request caches its lookups.
    class conflict_namer;

    // conflicts.cpp: what a resolution decides, computed on `db` by resolve and by preview.
    struct resolution_plan;
    resolution_plan plan_resolution(sql::db& db, const device& reviewer, const std::string& conflict_id,
                                    const resolution& r) const;
    // With `stored_text`, records keep their data as the stored JSON text (data_json), for
    // answers that splice it in; else it is parsed.
    static pull_page pull_on(sql::db& db, const scope& sc, std::int64_t after_seq, std::int64_t limit,
                             bool stored_text = false);

    // reports.cpp: the campaign year as seen through `db`'s transaction.
    campaign_year_info campaign_year_on(sql::db& db) const;

    // retention.cpp
    // Acknowledgements waiting for a write transaction (under queue_mutex_).
    std::map<std::string, acknowledgement> take_acks();
    static void write_acks(sql::db& db, const std::map<std::string, acknowledgement>& acks);
    // A record whose tombstone gc purged, rebuilt from its last version in history (nullopt:
    // the store never had the record). Sets `path` to where that version lives.
    static std::optional<proto::head_state> purged_head(sql::db& db, const std::string& collection,
                                                        const std::string& id, std::string& unit_id);

    // write_path.cpp
    void writer_loop();
    void commit_group(std::vector<job>& group);
    std::vector<proto::change_result> apply(const device& dev, const proto::change_set& cs);
    std::optional<proto::change_result> decided(const std::string& device_id, const std::string& change_id);
    proto::change_result decide_one(const device& dev, const proto::change& c, std::int64_t now_ms);
    // A record's head as the writer sees it: from heads, else (gc purged its tombstone) rebuilt
    // from history (`purged`, with the unit of that version). No head: the record is new.
    struct located_head {
        std::optional<proto::head_state> head;
        std::string path;           // where the head lives
        bool purged = false;
        std::string purged_unit;
    };
    located_head locate_head(const std::string& collection, const std::string& id);
    // PostgreSQL: what a group's change-sets will look up (their remembered answers, heads and
    // units), read for the whole group in a few round trips once it holds the write lock
    // (write_path.cpp). Each entry answers one lookup; a failed change-set drops it all.
    struct write_cache;
    std::shared_ptr<write_cache> cache_;  // the writer thread's, during a group only
    void prefetch(const std::vector<job>& group);
    // The path of a unit, from the group's cache when there is one.
    std::string unit_path(const std::string& unit_id);
    // The clock a change is written with: its own, unless absent or too far ahead.
    proto::hlc stamp_of(const proto::change& c);
    // Writes an open conflict between `head` and the incoming side; returns its id.
    std::string write_conflict(const device& dev, const proto::change& c, const located_head& at,
                               const std::optional<proto::version_state>& base, const proto::merge_outcome& o,
                               const proto::hlc& stamp, const std::string& path, std::int64_t now_ms);
    // The head version a rejected answer to `c` carries: 0 when the record does not exist, or
    // lies outside the device's scope (which is not revealed).
    std::int64_t visible_head_version(const device& dev, const proto::change& c);
    // relay.cpp: a hub's answer to a device's change (store_options::relay).
    proto::change_result relay_one(const device& dev, const proto::change& c, const std::string& batch_id,
                                   std::int64_t now_ms);

    const connector connect_;
    proto::schema schema_;  // set by the constructor (keep_schema), then only read
    const proto::hlc_clock::wall_fn wall_;
    const bool relay_;
    proto::hlc_clock clock_;

    const std::unique_ptr<sql::db> writer_conn_;
    sql::db& writer_db_;  // used by the constructor, then by the writer thread only
    std::int64_t seq_ = 0;  // writer thread: the last seq handed out in this transaction
    std::thread writer_;
    const listener listen_;
    std::thread hearer_;  // hear_commits, when listen_ is set
    std::atomic<bool> stop_hearing_{false};
    // Random, per store object: its own commits, heard again through LISTEN, are not told twice.
    const std::string voice_ = store_util::random_uuid();
    std::string channel_;  // sql::commit_channel of the incarnation, set at open
    std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    std::deque<job> queue_;
    bool closing_ = false;
    std::map<std::string, acknowledgement> acks_;  // device id -> its latest, not yet written
    // device id -> its latest seen by this process, written or not: device_pull's first source,
    // so an acknowledgement between being taken for a write and its commit is never missed.
    std::map<std::string, acknowledgement> latest_acks_;
    store_metrics metrics_;
    std::string incarnation_;  // read at open
    std::atomic<std::int64_t> campaign_year_override_{0};  // reports.cpp; 0 = none
    // Shared with the subscriptions, which may be ended after the store is gone.
    const std::shared_ptr<commit_listeners> listeners_ = std::make_shared<commit_listeners>();

    std::mutex readers_mutex_;
    std::condition_variable readers_cv_;
    std::vector<std::unique_ptr<sql::db>> idle_readers_;
    int open_readers_ = 0;  // connections handed out right now
    const int max_readers_;
};

}  // namespace fieldsync::server
