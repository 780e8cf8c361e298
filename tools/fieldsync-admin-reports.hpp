#pragma once
// `fieldsync-admin demo` and `fieldsync-admin report` (issue 8): the district's demo data set
// written into a store, and the district's reports printed from one, through the store
// directly (like the other fieldsync-admin commands); --help is main's dispatch (run_verb).

#include <fieldsync/server/store.hpp>

#include <string>
#include <vector>

namespace fieldsync::admin {

/// `demo --district NAME [--seed N] [--communes N] [--members N]`: loads the demo into an
/// empty store and prints its devices (role, unit, name, token; tab-separated) on stdout.
/// Exit codes: 0 done; 1 failed; 2 usage (a district the names do not know, a store that
/// already holds data).
int run_demo(const std::string& db, const std::vector<std::string>& args);

/// `report NAME [--unit U] [--year Y] [--period P] [--format table|csv|json]`.
/// Exit codes: 0 done; 1 failed; 2 usage (unknown report, unit or format).
int run_report(const std::string& db, const std::vector<std::string>& args);

/// A report as an aligned table (protocol::display_width: NFD text lines up), as CSV (RFC
/// 4180 quoting, a header line) or as JSON (what GET /v1/reports/{name} answers).
std::string format_table(const server::report_table& r);
std::string format_csv(const server::report_table& r);

extern const char* const k_demo_usage;
extern const char* const k_report_usage;

}  // namespace fieldsync::admin
