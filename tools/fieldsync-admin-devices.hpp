#pragma once
// `fieldsync-admin device add|list|revoke|rotate|move`: register devices, list them, revoke,
// rotate or move one.

#include "fieldsync-admin-common.hpp"

namespace fieldsync::admin {

/// The `device` verbs, for main's dispatch.
const verb_group& device_commands();

}  // namespace fieldsync::admin
