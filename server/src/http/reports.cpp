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

}  // namespace

response report_list(const admitted& a, const request& req) {
    if (auto refused = may_read_reports(*a.dev)) return answer(req, *refused);
    return answer(req, json{{"reports", report_names()}});
}

response report_show(report_store& st, const admitted& a, const request& req) {
    if (auto refused = may_read_reports(*a.dev)) return answer(req, *refused);
    report_request r;
    r.name = a.params[0];
    for (const auto& [k, v] : a.query) {
        if (v.empty()) continue;  // an unfilled form field
        if (k == "unit") r.unit_id = v;
        else if (k == "period") r.period = v;
        else if (k == "year") {
            const auto y = parse_decimal(v);
            if (!y || *y < 1 || *y > 9999) return answer(req, proto::error{errc::bad_request, "year must be 1..9999"});
            r.year = *y;
        } else
            return answer(req, proto::error{errc::bad_request, "unknown query parameter '" + k +
                                                                   "' (reports take unit, year and period)"});
    }
    auto table = st.report(scope::of(*a.dev), r);
    if (!table) return answer(req, table.err());
    return answer(req, to_json(*table));
}

}  // namespace fieldsync::server::detail
