#pragma once
// The conflict review endpoints (SPEC.md, "Conflicts", "Resolving a conflict" and "Previewing
// a resolution"): the filtered list, one conflict with who wrote each side, POST .../resolve
// and .../preview. Kept apart from router.cpp, which only routes to them.
//
// Thread safety: stateless functions over the thread-safe store. Expected failures come back
// as error responses; nothing throws for them.

#include "http/router.hpp"

namespace fieldsync::server::detail {

/// GET /v1/conflicts with its filters.
response review_list(const store_roles& st, const admitted& a, const request& req);
/// GET /v1/conflicts/{id}.
response review_show(const store_roles& st, const admitted& a, const request& req);
/// POST /v1/conflicts/{id}/resolve. A stale refusal carries the conflict as it is now.
response review_resolve(const store_roles& st, const admitted& a, const request& req);
/// POST /v1/conflicts/{id}/preview: what .../resolve would write with the same body, by the
/// same code, writing nothing; refused as .../resolve refuses.
response review_preview(const store_roles& st, const admitted& a, const request& req);

/// The JSON view of one conflict, with device names and the writers of each side when
/// `detailed` (what GET /v1/conflicts/{id} answers).
json conflict_json(const store_roles& st, const conflict_view& c, bool detailed);

}  // namespace fieldsync::server::detail
