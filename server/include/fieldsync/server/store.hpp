#pragma once
// The central store: heads, history, the change feed, conflicts, decided change ids and
// devices (ARCHITECTURE.md, "Central store"). The sync engine lives here too: a change-set is
// validated against the schema, decided by protocol::decide and written in one transaction.
//
// Thread safety: every member function may be called from any thread at the same time.
// Writes go to one writer thread that owns the write connection and commits the change-sets
// queued by many callers in one transaction (group commit); a caller's callback runs on the
// writer thread only after its change-set is durable. Reads use a pool of read connections
// and see the last committed state.
//
// Errors: storage failures come back as protocol::error {storage_error | unavailable}; a
// change-set that fails that way changed nothing and may be retried as it is.

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/hlc.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/server/tuning.hpp>
#include <fieldsync/server/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::server {

namespace proto = fieldsync::protocol;
using proto::json;

enum class device_role { field, reviewer, admin };
std::string_view role_name(device_role r) noexcept;
std::optional<device_role> parse_role(std::string_view s) noexcept;

/// What a device's last pull acknowledged (ARCHITECTURE.md, "Retention and gc"). Recorded by
/// device_pull, written to the store in the writer's next transaction or within
/// tuning::ack_flush_interval, never with a commit of its own per pull.
struct acknowledgement {
    std::int64_t epoch = 0;         // the scope epoch of the cursors below
    std::int64_t cursor_seq = 0;    // the cursor the device presented: it holds the feed before it
    std::int64_t issued_seq = 0;    // the cursor the answer carried
    std::int64_t safe_seq = 0;      // gc may purge feed entries up to here without harming the device
    std::int64_t at_ms = 0;         // when (server clock)
};

struct device {
    std::string id;
    std::string name;
    std::string unit_id;
    device_role role = device_role::field;
    std::int64_t created_ms = 0;
    std::optional<std::int64_t> revoked_ms;
    std::string unit_path;          // the path of unit_id (see `unit`), resolved when read
    std::int64_t scope_epoch = 0;   // bumped when the device moves: its cursors start over
    std::optional<acknowledgement> ack;  // none until its first pull is recorded
};

/// A unit of the organisation tree (domain.md). `path` is "/" + the ids from the root down
/// to this unit, each followed by "/", e.g. "/huyen/xa-binh-hoa/ap-3/": the subtree of a
/// unit is every path that starts with its path, one range of an index. A unit id that is
/// not in the tree has the path "/" + id + "/" (a tree of its own), so records and devices
/// may name units before the tree is loaded.
struct unit {
    std::string id;
    std::string parent;             // "" for a root
    std::string name;
    std::string kind;               // district | commune | cell | office
    std::string path;
};

/// What a device may see and write: the subtree under `path`, or everything.
struct scope {
    bool all = false;               // admin devices
    std::string path;               // otherwise: the device's unit path
    bool contains(std::string_view p) const noexcept { return all || p.starts_with(path); }
    static scope of(const device& d) {
        return d.role == device_role::admin ? scope{true, {}} : scope{false, d.unit_path};
    }
};

/// A record that left a device's scope (moved to a unit outside it): the device drops it.
using dropped_record = proto::dropped_record;

/// A record's head as GET /v1/records/{collection}/{id} shows it.
struct record_view {
    std::string collection;
    std::string id;
    std::string unit_id;
    std::int64_t version = 0;
    bool deleted = false;
    json data;                  // null when deleted
    std::int64_t seq = 0;       // feed position of this version
    std::string hlc;
    std::int64_t updated_ms = 0;
};

/// One version in history: who wrote it, when and how.
struct history_entry {
    std::int64_t version = 0;
    std::int64_t seq = 0;
    bool deleted = false;
    json data;
    std::string unit_id;
    std::string device_id;
    std::optional<std::string> device_name;  // that device's name; none when the store does not know it
    std::string change_id;
    std::string hlc;
    std::int64_t server_ms = 0;
    std::string how;            // "applied" | "merged" | "resolved"
    json lost;                  // lww: values that lost a collision (object, maybe empty)
};

struct conflict_view {
    std::string id;
    std::string collection;
    std::string record_id;
    std::string unit_id;        // the incoming change's unit
    std::string status;         // "open" | "resolved" | "dismissed"
    std::int64_t base_version = 0;
    std::int64_t head_version = 0;
    json base;                  // record at base_version (null when deleted or new)
    json head;                  // head at the time of the conflict (null when deleted)
    bool head_deleted = false;
    json incoming;              // the incoming record made whole (null when a delete)
    bool incoming_deleted = false;
    std::vector<std::string> fields;   // colliding fields as JSON pointers; "" = whole record
    std::string device_id;      // who wrote the incoming side
    std::string change_id;
    std::string hlc;
    std::int64_t created_ms = 0;
    std::string path;           // where it is routed: the deepest unit holding both writers
    // Once closed (status resolved or dismissed):
    std::string closed_by;      // the reviewer's device id
    std::int64_t closed_ms = 0;
    json resolution;            // {"choice", "picks"?, "note"?, "version"?}; null while open
    // The record's head now (filled by conflict(id), not by the list): what a resolution is
    // decided against.
    std::int64_t current_version = 0;
    json current;               // null when deleted
    bool current_deleted = false;
    // Names for people (filled by conflicts() and conflict(); SPEC.md, "Conflicts"), so a
    // reviewer's device, which holds neither the records nor the devices, shows no ids.
    std::string title;                          // the record's title by the schema ("" if none)
    std::optional<std::string> device_name;     // who sent the incoming change; none if unknown
    std::optional<std::string> unit_name;       // unit_id's name in the tree; none if not in it
    std::vector<std::string> path_names;        // the units of `path`, root first, by name (an id not in the tree as itself)
    std::string closed_by_name;                 // once closed: the reviewer's device name ("" if unknown)
};

/// What resolving a conflict would write now (review_store::preview; SPEC.md, "Previewing a
/// resolution").
struct resolution_preview {
    json record;                        // the record after the decision; null when deleted
    bool deleted = false;
    std::int64_t head_version = 0;      // the current head it is decided against
    std::vector<std::string> changed;   // JSON Pointers of top-level fields that differ from that head, sorted
};

/// A reviewer's decision on an open conflict (issue 5; SPEC.md, "Resolving a conflict").
/// The choice decides the colliding fields; fields that did not collide merge as the merge
/// rule merges them, so resolving never loses a change nobody disputed.
struct resolution {
    enum class choice { keep_head, take_incoming, pick, edit, dismiss };
    choice how = choice::keep_head;
    /// The head version the reviewer decided against. If the head has moved since, the
    /// resolution is refused as `stale` and nothing is written.
    std::int64_t head_version = 0;
    /// pick: JSON Pointer of every colliding field -> "head" or "incoming".
    std::map<std::string, std::string> picks;
    /// edit: the record as the reviewer wrote it (checked against the schema), or a delete.
    json edited;
    bool edited_deleted = false;
    std::string note;
};
std::optional<resolution::choice> parse_choice(std::string_view s) noexcept;

/// What a conflict list asks for (GET /v1/conflicts; SPEC.md, "Conflicts"). Empty strings
/// and unset bounds do not filter. Filters combine with AND and never widen the scope.
struct conflict_filter {
    std::string status = "open";                // "open" | "resolved" | "dismissed" | "" (any)
    std::string collection;
    std::string unit_id;                        // conflicts routed into this unit's subtree
    std::string device_id;                      // whose incoming change collided
    std::optional<std::int64_t> created_before_ms;  // created_ms <  this
    std::optional<std::int64_t> created_after_ms;   // created_ms >= this
    std::int64_t limit = 100;
    std::int64_t offset = 0;
};
std::string_view choice_name(resolution::choice c) noexcept;

/// A report the district publishes from the merged data (issue 8; SPEC.md, "Reports"),
/// computed over the live heads (not tombstones) of a unit's subtree. See report_names().
struct report_request {
    std::string name;               // participation | registrations | unreviewed_cells | inspections
    std::string unit_id;            // "" = the caller's own unit (an admin: the tree's root, see SPEC.md)
    std::optional<std::int64_t> year;   // none = the period's year, else the campaign year
    std::string period;             // unreviewed_cells: "" = the latest review period of the year
};

/// A report as a table: `rows` are JSON objects whose keys include `columns`, in tree order.
/// Rolled-up reports (participation, registrations) have one row for the unit itself (its
/// whole subtree) and one per child unit (that child's subtree); the listing reports
/// (unreviewed_cells, inspections) have one row per cell or inspection of the subtree.
struct report_table {
    std::string name;
    unit root;                      // the unit reported on (id "" and path "/" for everything)
    json params;                    // what the figures are of: {"year"}, {"year", "period"}
    std::vector<std::string> columns;
    std::vector<json> rows;
    json totals;                    // the subtree's totals (an object of figures)
    std::vector<std::int64_t> years;    // the years with data for this report in the subtree, ascending
    std::int64_t campaign_year = 0;     // the configured campaign year (see campaign_year())
    bool has_data = false;              // params.year is one of `years`
};
/// The report names, in the order the tools list them.
const std::vector<std::string>& report_names();
/// The JSON form of a report, as GET /v1/reports/{name} answers it (SPEC.md, "Reports").
json to_json(const report_table& r);
/// A report as CSV, as GET /v1/reports/{name}?format=csv answers it and `fieldsync-admin report
/// --format csv` prints it (SPEC.md, "Reports as CSV"): Vietnamese column titles and rates as
/// percentages with a UTF-8 BOM, or (`machine_headers`) the column names and raw values without.
std::string to_csv(const report_table& r, bool machine_headers);
/// The file name a report's CSV is offered under: "<report>-<unit id or all>-<year>.csv" (ASCII).
std::string csv_file_name(const report_table& r);

/// Where the campaign year reports default to comes from (SPEC.md, "The campaign year").
struct campaign_year_info {
    std::int64_t year = 0;
    std::string source;             // "override" (the server's --campaign-year), "configured" (meta), "clock"
};
/// What GET /v1/reports tells beside the names: the campaign year, and the years with data
/// for any report in the subtree, ascending.
struct report_overview {
    std::int64_t campaign_year = 0;
    std::vector<std::int64_t> years;
};

struct pull_page {
    std::vector<proto::pulled_change> changes;
    std::vector<dropped_record> dropped;
    std::int64_t last_seq = 0;  // the cursor to send next time
    bool more = false;
    /// device_pull only: the cursor lay behind what gc purged, so this page starts over from
    /// the beginning of the device's scope (SPEC.md, "Retention and re-snapshot").
    bool restarted = false;
};

/// What `gc` does (ARCHITECTURE.md, "Retention and gc").
struct gc_options {
    /// A device that acknowledged a pull within this window (and is not revoked) is active:
    /// nothing it may still need is purged.
    std::int64_t window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(tuning::retention_window).count();
    bool dry_run = false;       // count what would go, write nothing
    std::int64_t batch_rows = tuning::gc_batch_rows;  // rows per short write transaction
};

struct gc_report {
    bool dry_run = false;
    std::int64_t feed_seq = 0;          // the feed's seq when gc began
    std::int64_t previous_horizon = 0;  // the purge horizon before this run
    std::int64_t horizon = 0;           // feed entries at or below it that only served catch-up are purged
    std::int64_t active_devices = 0;
    std::int64_t inactive_devices = 0;  // acknowledged before the window, or never synced, or revoked
    std::string held_back_by;           // the active device with the lowest safe position ("" if none)
    std::int64_t tombstones = 0;        // deleted heads purged (or that would be)
    std::int64_t drops = 0;             // drop notices purged
    std::int64_t decided = 0;           // remembered answers purged
};

/// A version of a record as history keeps it (store::versions_at).
struct held_version {
    std::int64_t version = 0;
    bool deleted = false;
    json data;                  // null when deleted
};

/// What the store measures for GET /metrics (ARCHITECTURE.md, "Operations").
struct store_metrics {
    latency_histogram commit_seconds;               // group commits: BEGIN IMMEDIATE to COMMIT returned
    std::atomic<std::uint64_t> failed_commits{0};   // group transactions that could not begin or commit
};

struct store_options {
    std::string path;                           // SQLite file (created if missing), or PostgreSQL's conninfo
    const proto::schema* schema = nullptr;      // default: proto::schema::default_schema()
    proto::hlc_clock::wall_fn wall = proto::hlc_clock::system_wall_ms;  // clock seam
    int read_connections = 4;
    /// A relay hub's store (ARCHITECTURE.md, "Relay hub"): it decides nothing itself. A
    /// device's change that passes the hub's own checks is kept as a forward and answered
    /// `queued`; its final answer is the upstream's, given by relay_answer.
    bool relay = false;
};

/// A device's change a relay hub keeps for its upstream (store_options::relay).
struct forward_entry {
    std::int64_t seq = 0;       // order of arrival at the hub
    std::string device_id;
    proto::change change;       // as the device sent it: change_id, op, base, data, hlc
};

// The central store, by role (ARCHITECTURE.md, "Central store"). Each role is an interface
// of its own, so a caller holds only the role it uses and a second implementation (or a test
// decorator) implements only what it needs; `store` is all of them, as the SQLite store
// implements it. Every result is a protocol::expected (expected<void> when there is no value).

/// Sync: change-sets in, the feed out, and the record reads within a scope (POST /v1/sync,
/// GET /v1/records/...). The writer that commits change-sets belongs to this role.
class sync_store {
public:
    using push_done = std::function<void(proto::expected<std::vector<proto::change_result>>)>;

    virtual ~sync_store() = default;

    /// Queues a decoded change-set from `dev` for the writer. `done` runs once, on the writer
    /// thread, after the outcomes are durable (or with an error, when nothing was applied).
    /// Results are in the order of cs.changes. A change_id this device sent before is
    /// answered with its first answer and not applied again.
    virtual void submit(const device& dev, proto::change_set cs, push_done done) = 0;
    /// submit() and wait: for tools and tests.
    proto::expected<std::vector<proto::change_result>> push(const device& dev, proto::change_set cs);

    /// Up to `limit` feed entries of `sc` after after_seq, in seq order: heads whose latest
    /// version (or move into the scope) has a greater seq, and records that moved out of the
    /// scope. The cost grows with the entries of the scope's subtree, not of the whole store.
    virtual proto::expected<pull_page> pull(const scope& sc, std::int64_t after_seq, std::int64_t limit) = 0;
    proto::expected<pull_page> pull(std::int64_t after_seq, std::int64_t limit) {
        return pull(scope{true, {}}, after_seq, limit);
    }
    /// A device's pull (POST /v1/sync): pull() in the device's scope, with retention
    /// (ARCHITECTURE.md, "Retention and gc"): a cursor behind the purge horizon that the
    /// device's acknowledgements do not vouch for starts over from the beginning
    /// (`restarted`: the device re-snapshots), and what the device acknowledged is recorded.
    /// The reads are one snapshot, so a gc running meanwhile is seen whole or not at all.
    /// Records carry their data as the stored JSON text (pulled_change::data_json), which a
    /// JSON answer splices in; proto::materialize gives the tree.
    virtual proto::expected<pull_page> device_pull(const device& dev, std::int64_t after_seq, std::int64_t limit) = 0;

    /// For each record of `page`, the version a device that applied the feed up to
    /// `after_seq` holds: its latest version in history with seq <= after_seq; nullopt when
    /// it had none then. Pulled changes travel as diffs against it (SPEC.md, "Pulled field
    /// diffs"); whether the device really holds it is the device's check.
    virtual proto::expected<std::vector<std::optional<held_version>>> versions_at(
        const std::vector<proto::pulled_change>& page, std::int64_t after_seq) = 0;

    /// What became of the held changes `dev` names (SPEC.md, "Decisions reaching the device"):
    /// a notice for each closed conflict whose incoming change `dev` sent, with the decision,
    /// the note and the reviewer's unit; `unknown` for an id that is not such a conflict here
    /// (another device's conflict is answered `unknown` too, so its existence is not
    /// revealed). Open conflicts are left out: their outcome is not known yet.
    virtual proto::expected<std::vector<proto::resolution_notice>> held_outcomes(
        const device& dev, const std::vector<std::string>& conflict_ids) = 0;

    /// Reads within a scope: a record outside it is answered as missing, so its existence is
    /// not revealed.
    virtual proto::expected<std::optional<record_view>> get(const scope& sc, const std::string& collection,
                                                            const std::string& id) = 0;
    virtual proto::expected<std::vector<history_entry>> history(const scope& sc, const std::string& collection,
                                                                const std::string& id) = 0;
    // Unscoped reads, for tools and tests.
    proto::expected<std::optional<record_view>> get(const std::string& collection, const std::string& id) {
        return get(scope{true, {}}, collection, id);
    }
    proto::expected<std::vector<history_entry>> history(const std::string& collection, const std::string& id) {
        return history(scope{true, {}}, collection, id);
    }

    /// The store's incarnation: a random id made when the store is created and replaced by
    /// every restore (restore_sqlite_store). Every sync answer carries it.
    virtual const std::string& incarnation() const = 0;
    virtual const proto::schema& schema() const = 0;
    /// The server's hybrid logical clock (stamps changes that come without one).
    virtual proto::hlc now_hlc() = 0;

    /// Tells of commits, for syncs waiting for a change (SPEC.md, "Waiting for changes"):
    /// `listener` is called after each commit of this store object that may change what a
    /// pull reads (a group commit that moved the feed; every administrative write:
    /// resolutions and dismissals, units, devices, a relay hub's mirror), on the committing
    /// thread, once the commit is visible to new reads. It must be quick, must not throw and
    /// must not call the store. Writes of another process on the same file (fieldsync-admin)
    /// are not told. Destroying the returned handle ends the subscription; a call in progress
    /// finishes first. A store that cannot tell returns an empty handle and never calls.
    virtual std::shared_ptr<void> watch_commits(std::function<void()> listener) {
        (void)listener;
        return nullptr;
    }

    /// The writer's figures for GET /metrics (commit latency, failed commits).
    virtual const store_metrics& metrics() const = 0;
    /// Stops the writer after the queued change-sets are committed; later submits are
    /// answered `unavailable`. Idempotent; the destructor calls it.
    virtual void close() = 0;
};

/// A one-time enrolment code for a device (SPEC.md, "Enrolment"). The code is shown once; the
/// store keeps only its hash.
struct enrolment {
    std::string code;               // "XXXX-XXXX-XXXX-XXXX": 80 random bits in Crockford base32
    std::string device_id;
    std::int64_t expires_ms = 0;    // ms since the epoch
};

/// Devices and the organisation tree: who may sync, and what each device sees.
class directory_store {
public:
    virtual ~directory_store() = default;

    /// The organisation tree. put_unit adds a unit or changes its name, kind or parent; a new
    /// parent moves its whole subtree, and the records of the subtree follow in the feed
    /// (dropped by devices that no longer see them, delivered to those that now do). Errors:
    /// bad_request (unknown parent, a parent inside the unit's own subtree, bad id or kind).
    virtual proto::expected<unit> put_unit(const unit& u) = 0;
    virtual proto::expected<std::vector<unit>> units() = 0;

    /// Devices. add_device returns the new device and its token (shown once; only a hash of
    /// it is stored). authenticate returns nullopt for unknown or revoked tokens.
    virtual proto::expected<std::pair<device, std::string>> add_device(const std::string& name,
                                                                       const std::string& unit_id,
                                                                       device_role role) = 0;
    virtual proto::expected<std::optional<device>> authenticate(const std::string& token) = 0;
    virtual proto::expected<std::vector<device>> devices() = 0;

    /// Device administration; each takes effect on the device's next request. not_found for
    /// an unknown device id. rotate returns the new token (the old one stops working); move
    /// binds the device to another unit and starts its pulls over in the new scope.
    virtual proto::expected<void> revoke_device(const std::string& device_id) = 0;
    virtual proto::expected<std::string> rotate_device(const std::string& device_id) = 0;
    virtual proto::expected<void> move_device(const std::string& device_id, const std::string& unit_id) = 0;

    /// Enrolment (SPEC.md, "Enrolment"). enrol_device makes a one-time code for an active
    /// device, valid for `valid_for`; the device's earlier unused codes stop working. Errors:
    /// not_found (no active device of that id), bad_request (a validity outside 1 minute to
    /// 30 days).
    virtual proto::expected<enrolment> enrol_device(const std::string& device_id, std::chrono::milliseconds valid_for) = 0;
    /// Exchanges a code (case, dashes and spaces ignored) for the device: its token becomes
    /// `token`, which the enrolling client made (tokens have the form "fs1_" and 64 lowercase
    /// hex digits). The same code and token again answer the same device as long as that token
    /// is the device's, so a client whose answer was lost can ask again. Errors: bad_request
    /// (a code or token of the wrong form), not_found (no such code), enrolment_used (the code
    /// was exchanged with another token, or the device's token changed since), enrolment_expired
    /// (the code's time ran out, or the device was revoked). A refusal changes nothing.
    virtual proto::expected<device> redeem_enrolment(const std::string& code, const std::string& token) = 0;

    /// Each device's last sync: the time of its last acknowledged pull (`acknowledgement::at_ms`,
    /// written or still in memory), ms since the epoch. Devices that never synced and revoked
    /// devices are left out.
    virtual proto::expected<std::vector<std::pair<std::string, std::int64_t>>> last_syncs() = 0;
};

/// Review: the conflicts offline edits produce, and reviewers' decisions on them.
class review_store {
public:
    virtual ~review_store() = default;

    /// Conflicts with the given status ("" = any) whose unit lies in the scope, newest first;
    /// `offset` pages through them. A conflict outside the scope is answered as missing.
    virtual proto::expected<std::vector<conflict_view>> conflicts(const scope& sc, const std::string& status,
                                                                  std::int64_t limit, std::int64_t offset) = 0;
    /// The same, filtered (conflict_filter); newest first.
    virtual proto::expected<std::vector<conflict_view>> conflicts(const scope& sc, const conflict_filter& f) = 0;
    virtual proto::expected<std::optional<conflict_view>> conflict(const scope& sc, const std::string& id) = 0;
    // Unscoped reads, for tools and tests.
    proto::expected<std::vector<conflict_view>> conflicts(const std::string& status, std::int64_t limit,
                                                          std::int64_t offset) {
        return conflicts(scope{true, {}}, status, limit, offset);
    }
    proto::expected<std::optional<conflict_view>> conflict(const std::string& id) {
        return conflict(scope{true, {}}, id);
    }

    /// Resolves (or dismisses) an open conflict within the reviewer's scope: writes a new
    /// version ("resolved" in history) on top of the head, which syncs like any change, and
    /// closes the conflict with who, when and what was chosen. Older open conflicts of the
    /// same record must be closed first. Errors: forbidden (a field device), not_found (no
    /// such conflict in scope), conflict_closed, stale (head moved), bad_request (a pick
    /// missing or unknown, an edit that breaks the schema: the message says which), and
    /// storage failures.
    virtual proto::expected<conflict_view> resolve(const device& reviewer, const std::string& conflict_id,
                                                   const resolution& r) = 0;
    /// What resolve(reviewer, conflict_id, r) would write now, computed by the same code and
    /// written never: the same refusals (stale, conflict_closed, ...), and for `dismiss` the
    /// head as it is.
    virtual proto::expected<resolution_preview> preview(const device& reviewer, const std::string& conflict_id,
                                                        const resolution& r) = 0;

    /// Conflicts open now: a count over the status index, cheap enough for every scrape.
    virtual proto::expected<std::int64_t> open_conflicts() = 0;
};

/// Reports: the district's figures over the merged data.
class report_store {
public:
    virtual ~report_store() = default;

    /// A report over the live records of the scope (SPEC.md, "Reports"). Errors: not_found
    /// for an unknown report name, and for a unit that is not in the tree or not in the
    /// scope (its existence is not revealed); bad_request for a year or period of a bad form.
    virtual proto::expected<report_table> report(const scope& sc, const report_request& r) = 0;
    /// The campaign year and the years with data for any report in the subtree of `unit_id`
    /// ("" as in report_request). Errors: not_found for a unit as report() refuses it.
    virtual proto::expected<report_overview> report_years(const scope& sc, const std::string& unit_id) = 0;

    /// The year reports are of when none is asked for: the override, else the year kept in
    /// the store's meta (`campaign_year`), else the current year of the store's clock in
    /// Vietnam time (UTC+7). Errors: storage failures.
    virtual proto::expected<campaign_year_info> campaign_year() = 0;
    /// Keeps the campaign year in the store (nullopt: forgets it, back to the clock's year).
    /// Errors: bad_request for a year outside 1..9999; storage failures.
    virtual proto::expected<void> set_campaign_year(std::optional<std::int64_t> year) = 0;
    /// This process only (fieldsync-server --campaign-year): a year that wins over the stored
    /// one, nullopt for none. Thread-safe; not kept in the store.
    virtual void override_campaign_year(std::optional<std::int64_t> year) = 0;
};

/// Retention: what only served catch-up goes, once no active device needs it.
class retention_store {
public:
    virtual ~retention_store() = default;

    /// Purges what only served catch-up and no active device needs: tombstones (deleted heads
    /// without an open conflict) and drop notices at or below the horizon (the lowest safe
    /// position of the active devices), and remembered answers (`decided`) older than the
    /// window that their device can no longer resend. History is never purged. Records the
    /// horizon in meta first, then deletes in short transactions, so the server keeps serving.
    /// A dry run counts and writes nothing. Errors: storage failures (what was purged before
    /// stays purged; running it again finishes the work).
    virtual proto::expected<gc_report> gc(const gc_options& o) = 0;
};

/// A relay hub's store (store_options::relay; ARCHITECTURE.md, "Relay hub"): the forwards it
/// keeps for its upstream, and the upstream's answers.
class relay_store {
public:
    virtual ~relay_store() = default;

    /// Up to `limit` forwards not yet settled, with seq > after_seq, in arrival order.
    virtual proto::expected<std::vector<forward_entry>> relay_forwards(std::int64_t after_seq,
                                                                       std::int64_t limit) = 0;
    /// Takes in one transaction an upstream answer: each final result settles its forward
    /// (the device's retry is then answered with it), and the pulled records are mirrored at
    /// the upstream's versions (a head the hub already has at that version or newer is kept);
    /// dropped records leave the hub's feed. Idempotent: the same answer twice changes nothing
    /// more.
    virtual proto::expected<void> relay_answer(const proto::sync_response& answer) = 0;
    /// How many forwards are not settled yet.
    virtual proto::expected<std::int64_t> relay_backlog() = 0;
};

/// What the store knows of a kept blob (SPEC.md, "Attachments"); its bytes are the
/// blob_store's (blob_store.hpp).
struct blob_meta {
    std::string sha256;
    std::int64_t size = 0;
    std::string content_type;
    std::string device_id;          // the device whose upload completed it first
    std::int64_t created_ms = 0;
};

/// Attachments: which records name each blob (written with every version, by
/// store_util::write_version), who may read it, and the kept blobs' facts.
class attachment_store {
public:
    virtual ~attachment_store() = default;

    /// True when a device of scope `sc` may read a record, any version of which names the blob
    /// (the record's head lies in the scope; an admin scope reads every named blob).
    virtual proto::expected<bool> blob_readable(const scope& sc, const std::string& sha256) = 0;
    /// The kept blob's facts, or nullopt.
    virtual proto::expected<std::optional<blob_meta>> blob(const std::string& sha256) = 0;
    /// Records a blob the blob_store has just kept. A blob already recorded keeps its first row.
    virtual proto::expected<void> keep_blob(const blob_meta& m) = 0;
    /// Bytes of the blobs the device completed at or after `since_ms` (its daily allowance).
    virtual proto::expected<std::int64_t> blob_bytes_since(const std::string& device_id, std::int64_t since_ms) = 0;
    /// Kept blobs that no version of any record names, recorded before `before_ms` (gc).
    virtual proto::expected<std::vector<blob_meta>> unnamed_blobs(std::int64_t before_ms) = 0;
    /// True when some version of some record names the blob.
    virtual proto::expected<bool> blob_named(const std::string& sha256) = 0;
    /// Forgets a blob's row (gc, after its bytes are removed).
    virtual proto::expected<void> forget_blob(const std::string& sha256) = 0;
    /// How many blobs are kept and their bytes (the metrics' gauges).
    virtual proto::expected<std::pair<std::int64_t, std::int64_t>> blob_totals() = 0;
};

/// Every role of the central store, as one object (the SQLite store; the PostgreSQL store).
class store : public sync_store,
              public directory_store,
              public review_store,
              public report_store,
              public retention_store,
              public relay_store,
              public attachment_store {};

/// The roles the HTTP server uses, each a reference into a store: normally all the same store
/// (`of`); a test decorator stands in for the one role it watches (`with_sync`).
struct store_roles {
    sync_store& sync;
    directory_store& directory;
    review_store& review;
    report_store& reports;
    attachment_store& attachments;

    static store_roles of(store& st) { return {st, st, st, st, st}; }
    store_roles with_sync(sync_store& s) const { return {s, directory, review, reports, attachments}; }
};

/// Opens (creating and migrating as needed) a SQLite store: options.path is the file.
proto::expected<std::unique_ptr<store>> open_sqlite_store(const store_options& options);
/// Opens (creating the tables in an empty database) a store on PostgreSQL: options.path is
/// the libpq connection string ("host=... dbname=..." or a postgresql:// URI). Several
/// servers may open the same database at once (ARCHITECTURE.md, "The store on PostgreSQL").
/// `unavailable` when this build has no PostgreSQL (libpq was missing).
proto::expected<std::unique_ptr<store>> open_postgres_store(const store_options& options);

/// What `migrate_sqlite_to_postgres` copied: each table's rows and its digest (SHA-256 over
/// its rows' SHA-256s in byte order, hex), the same on both sides.
struct migration_report {
    struct table {
        std::string name;
        std::int64_t rows = 0;
        std::string digest;
    };
    std::vector<table> tables;
};

/// Copies the SQLite store at `sqlite_path` into the PostgreSQL database of `conninfo`, which
/// holds no store yet or an empty one (bad_request otherwise): every table, row for row,
/// including the feed's seq, the incarnation, devices' token hashes and remembered answers,
/// so devices go on syncing with the cursors they hold. One PostgreSQL transaction, committed
/// only when every table's row count and digest match the file's. No server may be serving
/// the file (unavailable). Built with libpq only (unavailable otherwise).
proto::expected<migration_report> migrate_sqlite_to_postgres(const std::string& sqlite_path,
                                                             const std::string& conninfo);

/// What a backup or a restore produced.
struct backup_report {
    std::int64_t bytes = 0;
    std::int64_t seq = 0;                   // the feed's last seq in the copy
    std::string incarnation;                // the copy's incarnation (a restore's is new)
    std::int64_t newest_change_ms = 0;      // server time of the newest version in it (0: none)
    std::int64_t blobs = 0;                 // attachments copied beside it (<dest>.blobs)
    std::int64_t blob_bytes = 0;
};

/// Copies the store file at `store_path` to `dest` with SQLite's online backup, while a server
/// may be serving it from another process: one consistent snapshot, written to a temporary
/// file beside `dest`, checked with PRAGMA integrity_check, synced, then renamed. Never
/// overwrites: `dest` must not exist (bad_request). not_found when there is no store.
proto::expected<backup_report> backup_sqlite_store(const std::string& store_path, const std::string& dest);

/// Replaces the store at `store_path` with a checked copy of `backup` under a new incarnation.
/// No server may have the store open. The replaced files are kept beside it as
/// `<store>.replaced-<ms>` (named in `*replaced`). bad_request: `backup` is not a sound
/// fieldsync store.
proto::expected<backup_report> restore_sqlite_store(const std::string& backup, const std::string& store_path,
                                                    std::string* replaced = nullptr);

}  // namespace fieldsync::server
