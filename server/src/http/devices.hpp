#pragma once
// The devices over HTTP, for the /admin/ page (SPEC.md, "Devices"): GET /v1/devices lists
// them with their units' names and last syncs; POST /v1/devices/{id}/enrol makes a
// one-time enrolment code for one, as `fieldsync-admin device enrol` does, and answers it
// with the link and the link's QR code (SVG). Admin devices only: others get 403 forbidden.
//
// Thread safety: stateless functions over the thread-safe store. Expected failures come back
// as error responses; nothing throws for them.

#include "http/router.hpp"

namespace fieldsync::server::detail {

response device_list(directory_store& st, const admitted& a, const request& req);
response device_enrol(directory_store& st, const admitted& a, const request& req);

}  // namespace fieldsync::server::detail
