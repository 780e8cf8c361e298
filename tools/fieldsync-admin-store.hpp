#pragma once
// `fieldsync-admin init|gc|backup|restore`: the store file as a whole.

#include "fieldsync-admin-common.hpp"

namespace fieldsync::admin {

/// The verbs init, gc, backup and restore, for main's dispatch.
const std::vector<verb>& store_commands();

}  // namespace fieldsync::admin
