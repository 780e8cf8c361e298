#include "http/reports.hpp"

#include "http/encoding.hpp"

namespace fieldsync::server::detail {

namespace proto = fieldsync::protocol;
using proto::errc;

namespace {

// Figures aggregate a subtree; a field device (a phone in a cell) syncs records and has no use
// for them, and keeping them to reviewers and admins keeps who reads the district's figures
// the same set of devices that decides its conflicts.
std::optional<proto::error> may_read_reports(const device& d) {
    if (d.role == device_role::field)
        return proto::error{errc::forbidden, "reports are for reviewer and admin devices"};
    return std::nullopt;
}

// SPEC.md, "Reports as CSV": a download, so the browser saves it under the report's name.
response csv_answer(const request& req, const report_table& table, bool machine_headers) {
    response res{http::status::ok, req.version()};
    res.set(http::field::server, "fieldsync/0.1");
    res.set(http::field::content_type, "text/csv; charset=utf-8");
    res.set(http::field::content_disposition, "attachment; filename=\"" + csv_file_name(table) + "\"");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = to_csv(table, machine_headers);
    res.prepare_payload();
    return res;
}

}  // namespace

response report_list(report_store& st, const admitted& a, const request& req) {
    if (auto refused = may_read_reports(*a.dev)) return answer(req, *refused);
    std::string unit_id;
    for (const auto& [k, v] : a.query)
        if (k == "unit") unit_id = v;
    auto overview = st.report_years(scope::of(*a.dev), unit_id);
    if (!overview) return answer(req, overview.err());
    return answer(req, json{{"reports", report_names()},
                            {"campaign_year", overview->campaign_year},
                            {"years", overview->years}});
}

response report_show(report_store& st, const admitted& a, const request& req) {
    if (auto refused = may_read_reports(*a.dev)) return answer(req, *refused);
    report_request r;
    r.name = a.params[0];
    bool csv = false, machine_headers = false;
    for (const auto& [k, v] : a.query) {
        if (v.empty()) continue;  // an unfilled form field
        if (k == "unit") r.unit_id = v;
        else if (k == "period") r.period = v;
        else if (k == "year") {
            const auto y = parse_decimal(v);
            if (!y || *y < 1 || *y > 9999) return answer(req, proto::error{errc::bad_request, "year must be 1..9999"});
            r.year = *y;
        } else if (k == "format") {
            if (v != "json" && v != "csv") return answer(req, proto::error{errc::bad_request, "format must be json or csv"});
            csv = v == "csv";
        } else if (k == "headers") {
            if (v != "machine" && v != "vi")
                return answer(req, proto::error{errc::bad_request, "headers must be vi or machine"});
            machine_headers = v == "machine";
        } else
            return answer(req, proto::error{errc::bad_request,
                                            "unknown query parameter '" + k +
                                                "' (reports take unit, year, period, format and headers)"});
    }
    auto table = st.report(scope::of(*a.dev), r);
    if (!table) return answer(req, table.err());
    if (csv) return csv_answer(req, *table, machine_headers);
    return answer(req, to_json(*table));
}

}  // namespace fieldsync::server::detail
