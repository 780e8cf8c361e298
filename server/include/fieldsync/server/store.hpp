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

#include <cstdint>
#include <functional>
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

struct device {
    std::string id;
    std::string name;
    std::string unit_id;
    device_role role = device_role::field;
    std::int64_t created_ms = 0;
    std::optional<std::int64_t> revoked_ms;
};

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
};

struct pull_page {
    std::vector<proto::pulled_change> changes;
    std::int64_t last_seq = 0;  // the cursor to send next time
    bool more = false;
};

struct store_options {
    std::string path;                           // SQLite file; created if missing
    const proto::schema* schema = nullptr;      // default: proto::schema::default_schema()
    proto::hlc_clock::wall_fn wall = proto::hlc_clock::system_wall_ms;  // clock seam
    int read_connections = 4;
};

class store {
public:
    using push_done = std::function<void(proto::expected<std::vector<proto::change_result>>)>;

    virtual ~store() = default;

    /// Queues a decoded change-set from `dev` for the writer. `done` runs once, on the writer
    /// thread, after the outcomes are durable (or with an error, when nothing was applied).
    /// Results are in the order of cs.changes. A change_id this device sent before is
    /// answered with its first answer and not applied again.
    virtual void submit(const device& dev, proto::change_set cs, push_done done) = 0;
    /// submit() and wait: for tools and tests.
    proto::expected<std::vector<proto::change_result>> push(const device& dev, proto::change_set cs);

    /// Up to `limit` heads whose latest version has seq > after_seq, in seq order.
    virtual proto::expected<pull_page> pull(std::int64_t after_seq, std::int64_t limit) = 0;
    virtual proto::expected<std::optional<record_view>> get(const std::string& collection,
                                                            const std::string& id) = 0;
    virtual proto::expected<std::vector<history_entry>> history(const std::string& collection,
                                                                const std::string& id) = 0;
    /// Conflicts with the given status ("" = any), newest first; `offset` pages through them.
    virtual proto::expected<std::vector<conflict_view>> conflicts(const std::string& status, std::int64_t limit,
                                                                  std::int64_t offset) = 0;
    virtual proto::expected<std::optional<conflict_view>> conflict(const std::string& id) = 0;

    /// Devices. add_device returns the new device and its token (shown once; only a hash of
    /// it is stored). authenticate returns nullopt for unknown or revoked tokens.
    virtual proto::expected<std::pair<device, std::string>> add_device(const std::string& name,
                                                                       const std::string& unit_id,
                                                                       device_role role) = 0;
    virtual proto::expected<std::optional<device>> authenticate(const std::string& token) = 0;
    virtual proto::expected<std::vector<device>> devices() = 0;

    /// Stops the writer after the queued change-sets are committed; later submits are
    /// answered `unavailable`. Idempotent; the destructor calls it.
    virtual void close() = 0;

    virtual const proto::schema& schema() const = 0;
    /// The server's hybrid logical clock (stamps changes that come without one).
    virtual proto::hlc now_hlc() = 0;
};

/// Opens (creating and migrating as needed) a SQLite store.
proto::expected<std::unique_ptr<store>> open_sqlite_store(const store_options& options);

}  // namespace fieldsync::server
