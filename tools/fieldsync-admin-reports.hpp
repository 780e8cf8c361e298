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

/// `report NAME [--unit U] [--year Y] [--period P] [--format table|csv|json] [--machine-headers]`.
/// Exit codes: 0 done; 1 failed; 2 usage (unknown report, unit, format, a bad period).
int run_report(const std::string& db, const std::vector<std::string>& args);

/// `campaign-year [YEAR | --clear]`: prints the campaign year (YEAR<TAB>where it comes from),
/// after keeping YEAR in the store or forgetting the kept one. Exit codes: 0 done; 1 failed;
/// 2 usage.
int run_campaign_year(const std::string& db, const std::vector<std::string>& args);

/// A report as an aligned table (protocol::display_width: NFD text lines up; "no data for
/// YEAR" when the year has none), as CSV (server::to_csv: the server's bytes) or as JSON (what
/// GET /v1/reports/{name} answers).
std::string format_table(const server::report_table& r);
std::string format_csv(const server::report_table& r, bool machine_headers = false);

extern const char* const k_demo_usage;
extern const char* const k_report_usage;
extern const char* const k_campaign_year_usage;

}  // namespace fieldsync::admin
