#pragma once
// The attachment endpoints (SPEC.md, "Attachments"): GET and PUT /v1/uploads/{sha256} (a
// resumable upload, chunk by chunk) and GET /v1/blobs/{sha256} (a ranged download within the
// device's scope). HTTP only: the bytes are the blob_store's, the facts and the scope check
// the store's (attachment_store).

#include "http/router.hpp"

#include <cstdint>
#include <memory>

namespace fieldsync::server::detail {

class http_metrics;

response upload_status(const blob_settings& b, const store_roles& st, const admitted& a, const request& req);
response upload_chunk(const blob_settings& b, const store_roles& st, http_metrics* m, const admitted& a,
                      const request& req);
response blob_download(const blob_settings& b, const store_roles& st, http_metrics* m, const admitted& a,
                       const request& req);

}  // namespace fieldsync::server::detail
