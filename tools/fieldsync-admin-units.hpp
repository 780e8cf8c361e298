#pragma once
// `fieldsync-admin unit add|list|move|import`: the organisation tree.

#include "fieldsync-admin-common.hpp"

namespace fieldsync::admin {

/// The `unit` verbs, for main's dispatch.
const verb_group& unit_commands();

}  // namespace fieldsync::admin
