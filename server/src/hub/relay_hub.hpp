#pragma once
// A relay hub (ARCHITECTURE.md, "Relay hub"): a commune's server whose store (opened with
// store_options::relay) its field devices sync with, linked to the district's server by a
// client-library replica that holds the hub's own device token there. Each round hands the
// devices' new changes to the replica as they were sent (same change_id, base, data), syncs,
// and takes the district's answer into the hub's store: final answers for the devices, and
// the district's records at the district's versions.
//
// This is the one place the server uses the client library (design.md, "Parts"): the
// fieldsync::hub target links fieldsync::client, fieldsync::server does not.
//
// Thread safety: start() and stop() from the owner's thread; round() and status() from any
// thread (rounds are serialised). The store must outlive the hub.

#include <fieldsync/server/store.hpp>
#include <fieldsync/server/tuning.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace fieldsync::server {

struct hub_options {
    std::string upstream_url;           // the district server, "http://host:port"
    std::string upstream_token;         // the hub's device token at the district
    std::string replica_path;           // the upstream link's replica file
    /// An https upstream is verified against these CAs only (a PEM file, as a district that is
    /// its own CA hands out); empty: the system's CA store. Unused for http.
    std::string upstream_ca_file;
    std::chrono::milliseconds poll_interval = tuning::hub_poll_interval;
    std::chrono::milliseconds pull_interval = tuning::hub_pull_interval;
    std::chrono::milliseconds retry_interval = tuning::hub_retry_interval;
    std::chrono::milliseconds retry_cap = tuning::hub_retry_cap;
};

struct hub_status {
    std::int64_t rounds = 0;            // rounds that reached the upstream and were taken in
    std::int64_t failed_rounds = 0;
    std::int64_t forwarded = 0;         // devices' changes answered by the upstream (this run)
    std::int64_t pulled = 0;            // upstream records newer than the hub's, taken in
    std::int64_t backlog = 0;           // devices' changes waiting for the upstream's answer
    bool link_up = false;               // the last round reached the upstream
    std::string last_error;             // of the last failed round
};

class relay_hub {
public:
    /// Opens (creating as needed) the replica at options.replica_path and points it at the
    /// upstream. Errors: bad_request (no URL or token), storage_error (the replica file).
    static protocol::expected<std::unique_ptr<relay_hub>> open(hub_options options, relay_store& st);
    ~relay_hub();
    relay_hub(const relay_hub&) = delete;
    relay_hub& operator=(const relay_hub&) = delete;

    /// Runs rounds on a thread of its own: when devices' changes wait, every pull_interval
    /// otherwise, and after a failure with a growing delay. Idempotent.
    void start();
    /// Stops the thread after the round in flight (an upstream request may take up to the
    /// replica's request timeout). Nothing is lost: what was not answered is resent later.
    void stop();
    /// One round now, on the calling thread: hand new forwards, sync until the upstream has
    /// nothing more. Errors: unavailable (the link or the upstream), storage_error.
    std::optional<protocol::error> round();
    hub_status status() const;

    struct impl;

private:
    explicit relay_hub(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace fieldsync::server
