#pragma once
// The district's reports over HTTP (SPEC.md, "Reports"): GET /v1/reports lists the names with
// the campaign year and the years with data, GET /v1/reports/{name}?unit=U&year=Y&period=P
// answers one, computed by the store within the device's scope, as JSON or (format=csv) as a
// CSV download. Reviewer and admin devices only: a field device gets 403 forbidden.
//
// Thread safety: stateless functions over the thread-safe store. Expected failures come back
// as error responses; nothing throws for them.

#include "http/router.hpp"

namespace fieldsync::server::detail {

response report_list(report_store& st, const admitted& a, const request& req);
response report_show(report_store& st, const admitted& a, const request& req);

}  // namespace fieldsync::server::detail
