#pragma once
// Test-only access to a replica's internals (conventions.md: never by widening the public API).

#include "replica_impl.hpp"

namespace fieldsync::client {

struct replica_test_access {
    static replica::impl& of(replica& r) { return *r.impl_; }
    /// See replica::impl::test_after_commit.
    static void set_after_commit(replica& r, std::function<bool(std::int64_t)> hook) {
        std::lock_guard lock(r.impl_->mutex);
        r.impl_->test_after_commit = std::move(hook);
    }
    /// See replica::impl::test_protocol_version.
    static void set_protocol_version(replica& r, std::int64_t version) {
        std::lock_guard lock(r.impl_->mutex);
        r.impl_->test_protocol_version = version;
    }
};

}  // namespace fieldsync::client
