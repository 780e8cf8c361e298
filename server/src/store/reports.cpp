// The district's reports (SPEC.md, "Reports"): SQL over the live heads of a subtree,
// json_extract (on PostgreSQL, jsonb's ->>) for the fields, grouped by unit path; the roll-up
// to the unit and its children happens here, by path prefix. Only heads are read: a deleted record (a tombstone) counts
// nowhere, and an edited one counts once, as it is now. Every report is of one year: the one
// asked for, else the campaign year (never "the latest year in the data": one record of the
// next year would otherwise move a whole district's figures to an empty year).

#include "store/sql_store.hpp"

#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/protocol/nfd.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

const std::vector<std::string>& report_names() {
    static const std::vector<std::string> names = {"participation", "registrations", "unreviewed_cells",
                                                   "inspections"};
    return names;
}

json to_json(const report_table& r) {
    json rows = json::array();
    for (const auto& row : r.rows) rows.push_back(row);
    return {{"report", r.name},
            {"unit", {{"id", r.root.id}, {"name", r.root.name}, {"kind", r.root.kind}}},
            {"params", r.params.is_null() ? json::object() : r.params},
            {"years", r.years},
            {"campaign_year", r.campaign_year},
            {"has_data", r.has_data},
            {"columns", r.columns},
            {"rows", std::move(rows)},
            {"totals", r.totals.is_null() ? json::object() : r.totals}};
}

namespace {

// Column titles of the CSV a district's staff opens (SPEC.md, "Reports as CSV").
const char* vietnamese_title(const std::string& column) {
    static const std::map<std::string, const char*> titles = {
        {"id", "Mã"},                    {"unit", "Mã đơn vị"},          {"unit_name", "Đơn vị"},
        {"kind", "Loại"},                {"parent_name", "Thuộc"},       {"audience", "Đối tượng"},
        {"sessions", "Số buổi"},         {"invited", "Được mời"},        {"attended", "Tham dự"},
        {"rate", "Tỷ lệ (%)"},           {"members", "Đảng viên"},       {"registered", "Đã đăng ký"},
        {"not_registered", "Chưa đăng ký"}, {"vague", "Chung chung"},    {"reviewed", "Đã nhận xét"},
        {"not_reviewed", "Chưa nhận xét"}, {"date", "Ngày"},             {"team", "Đoàn kiểm tra"},
        {"findings", "Kết quả"},         {"vague_registrations", "Đăng ký chung chung"},
        {"conclusions", "Thông báo kết luận"}};
    const auto it = titles.find(column);
    return it == titles.end() ? column.c_str() : it->second;
}

// A text cell: a spreadsheet runs a cell starting with = + - @ (or a tab or CR, which some
// treat alike) as a formula, so such a text gets a leading apostrophe (OWASP's advice).
// Numbers are written as numbers and never guarded.
std::string guarded(std::string s) {
    if (!s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos) s.insert(0, 1, '\'');
    return s;
}

// RFC 4180: a field holding a comma, a quote, CR or LF is quoted, its quotes doubled.
std::string quoted(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + '"';
}

std::string csv_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_array()) {
        std::string out;
        for (const auto& x : v) out += (out.empty() ? "" : "; ") + csv_text(x);
        return out;
    }
    return v.is_null() ? std::string() : v.dump();
}

std::string csv_cell(const std::string& column, const json& v, bool machine) {
    if (v.is_null()) return std::string();
    if (v.is_string() || v.is_array() || v.is_object()) return quoted(guarded(csv_text(v)));
    if (column == "rate" && v.is_number() && !machine) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", v.get<double>() * 100.0);
        return buf;
    }
    return v.dump();
}

}  // namespace

std::string to_csv(const report_table& r, bool machine_headers) {
    // The BOM makes Excel read the file as UTF-8 (without it, the Vietnamese names come out as
    // mojibake); a script reading the machine form would see it glued to the first column name.
    std::string out = machine_headers ? "" : "\xEF\xBB\xBF";
    for (std::size_t i = 0; i < r.columns.size(); ++i) {
        if (i) out += ',';
        out += quoted(machine_headers ? r.columns[i] : std::string(vietnamese_title(r.columns[i])));
    }
    out += "\r\n";
    for (const auto& row : r.rows) {
        for (std::size_t i = 0; i < r.columns.size(); ++i) {
            const auto it = row.find(r.columns[i]);
            if (i) out += ',';
            out += csv_cell(r.columns[i], it == row.end() ? json(nullptr) : *it, machine_headers);
        }
        out += "\r\n";
    }
    return out;
}

std::string csv_file_name(const report_table& r) {
    std::string unit = r.root.id.empty() ? std::string("all") : r.root.id;
    for (auto& c : unit)
        if (!(std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) && c != '-' && c != '_' && c != '.')
            c = '_';
    const auto y = r.params.is_object() ? r.params.find("year") : r.params.end();
    const std::string year = y != r.params.end() && y->is_number_integer() ? std::to_string(y->get<std::int64_t>()) : "";
    return r.name + "-" + unit + (year.empty() ? "" : "-" + year) + ".csv";
}

namespace {

constexpr const char* k_campaign_year_key = "campaign_year";
// Vietnam keeps UTC+7 all year (no daylight saving): the campaign's new year starts at local
// midnight, seven hours before UTC's.
constexpr std::int64_t k_vietnam_offset_ms = 7LL * 3600 * 1000;

// The civil year of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
std::int64_t year_of_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10 ? 1 : 0);
}

std::int64_t vietnam_year_of(std::int64_t unix_ms) {
    const std::int64_t ms = unix_ms + k_vietnam_offset_ms;
    const std::int64_t day_ms = 86400000;
    return year_of_days(ms >= 0 ? ms / day_ms : (ms - day_ms + 1) / day_ms);
}

std::optional<std::int64_t> stored_campaign_year(sql::db& db) {
    auto s = db.cached("SELECT value FROM meta WHERE key = ?");
    s.bind(1, std::string(k_campaign_year_key));
    if (!s.step()) return std::nullopt;
    const auto y = proto::parse_integer(s.text(0), 1, 9999);
    return y ? std::optional<std::int64_t>(*y) : std::nullopt;
}

// A review period (SPEC.md, "Reports"): a year, a quarter or a half of one, as months.
struct review_period {
    std::int64_t year = 0;
    int first = 1, last = 12;   // months, inclusive
    std::string text;           // canonical: "2014", "2014-Q2", "2014-H1"
    bool within(const review_period& p) const { return year == p.year && first >= p.first && last <= p.last; }
    // Later ends first; of two ending together, the shorter (it started later).
    bool later_than(const review_period& p) const {
        return year != p.year ? year > p.year : last != p.last ? last > p.last : first > p.first;
    }
};

std::optional<review_period> parse_period(std::string_view s) {
    if (s.size() != 4 && s.size() != 7) return std::nullopt;
    for (std::size_t i = 0; i < 4; ++i)
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
    review_period p;
    p.year = std::stoll(std::string(s.substr(0, 4)));
    if (p.year < 1) return std::nullopt;
    p.text = std::string(s.substr(0, 4));
    if (s.size() == 4) return p;
    const char kind = static_cast<char>(std::toupper(static_cast<unsigned char>(s[5])));
    const int n = s[6] - '0';
    if (s[4] != '-') return std::nullopt;
    if (kind == 'Q' && n >= 1 && n <= 4) {
        p.first = 3 * (n - 1) + 1;
        p.last = 3 * n;
    } else if (kind == 'H' && n >= 1 && n <= 2) {
        p.first = 6 * (n - 1) + 1;
        p.last = 6 * n;
    } else
        return std::nullopt;
    p.text += std::string("-") + kind + static_cast<char>('0' + n);
    return p;
}

// A query value as a message may quote it: printable ASCII only (it may be any bytes).
std::string quotable(const std::string& s) {
    for (const char c : s)
        if (c < 0x20 || c > 0x7e) return std::string();
    return " '" + s + "'";
}

std::string four_digits(std::int64_t year) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04lld", static_cast<long long>(year));
    return buf;
}

// The years with data for a report in the range lo <= path < hi, ascending: the year of a
// study session's or an inspection's date, the year field of registrations (also what the
// unreviewed cells are counted from).
std::vector<std::int64_t> data_years(sql::db& db, const std::string& name, const std::string& lo,
                                     const std::string& hi) {
    std::set<std::int64_t> years;
    if (name == "participation" || name == "inspections") {
        auto s = db.cached(
            db.kind() == sql::engine::sqlite
            ? "SELECT DISTINCT substr(json_extract(data, '$.date'), 1, 4) FROM heads "
            "WHERE collection = ? AND deleted = 0 AND path >= ? AND path < ? "
            "AND substr(json_extract(data, '$.date'), 1, 4) GLOB '[0-9][0-9][0-9][0-9]'"
            : "SELECT DISTINCT substr(data::jsonb->>'date', 1, 4) FROM heads "
              "WHERE collection = ? AND deleted = 0 AND path >= ? AND path < ? "
              "AND substr(data::jsonb->>'date', 1, 4) ~ '^[0-9]{4}$'");
        s.bind(1, std::string(name == "participation" ? "study_sessions" : "inspections")).bind(2, lo).bind(3, hi);
        while (s.step())
            if (const auto y = proto::parse_integer(s.text(0), 1, 9999)) years.insert(*y);
    } else {
        auto s = db.cached(
            db.kind() == sql::engine::sqlite
            ? "SELECT DISTINCT json_extract(data, '$.year') FROM heads "
            "WHERE collection = 'registrations' AND deleted = 0 AND path >= ? AND path < ? "
            "AND json_type(data, '$.year') = 'integer'"
            : "SELECT DISTINCT (data::jsonb->>'year')::bigint FROM heads "
              "WHERE collection = 'registrations' AND deleted = 0 AND path >= ? AND path < ? "
              "AND jsonb_typeof(data::jsonb->'year') = 'number' AND data::jsonb->>'year' ~ '^[0-9]{1,4}$'");
        s.bind(1, lo).bind(2, hi);
        while (s.step())
            if (const auto y = s.int64(0); y >= 1 && y <= 9999) years.insert(y);
    }
    return {years.begin(), years.end()};
}

// Figures keyed by a unit path, rolled up to the report's unit and to each of its children.
struct rollup {
    const unit& root;
    const std::vector<const unit*>& children;
    // The row a path belongs to: the child whose subtree holds it, or -1 (the unit itself, or
    // a unit that is not in the tree: counted in the total only).
    int child_of(const std::string& path) const {
        for (std::size_t i = 0; i < children.size(); ++i)
            if (path.starts_with(children[i]->path)) return static_cast<int>(i);
        return -1;
    }
};

json unit_cells(const unit& u) {
    return {{"unit", u.id}, {"unit_name", u.name}, {"kind", u.kind}};
}

json ratio(std::int64_t part, std::int64_t whole) {
    if (whole <= 0) return nullptr;
    return static_cast<double>(part) / static_cast<double>(whole);
}

// What every report reads first: the request, the tree within the scope, the unit reported
// on (`out.root`) with its path range and children.
struct report_context {
    sql::db& db;
    const report_request& r;
    std::int64_t year = 0;                      // the year the figures are of
    std::optional<review_period> period;        // unreviewed_cells: the period asked for
    std::vector<unit> tree;
    std::string lo, hi;                         // out.root's subtree: lo <= path < hi
    std::vector<const unit*> children;          // out.root's children, in tree order
    std::map<std::string, const unit*> by_path;
    std::string name_of(const std::string& id) const {
        for (const auto& u : tree)
            if (u.id == id) return u.name;
        return std::string();
    }
};

void participation_report(const report_context& ctx, report_table& out) {
    auto& db = ctx.db;
    const auto& lo = ctx.lo;
    const auto& hi = ctx.hi;
    const auto& children = ctx.children;
    const rollup roll{out.root, children};
    out.params = {{"year", ctx.year}};
    out.columns = {"unit", "unit_name", "audience", "sessions", "invited", "attended", "rate"};
    struct figures {
        std::string label;
        std::int64_t sessions = 0, invited = 0, attended = 0;
    };
    // Row -1 is the unit itself; audiences keyed by their NFD form, so a label typed
    // precomposed on one phone and decomposed on another is one audience.
    std::map<int, std::map<std::string, figures>> rows;
    {
        auto s = db.cached(
            db.kind() == sql::engine::sqlite
            ? "SELECT path, json_extract(data, '$.audience'), count(*), "
            "sum(json_extract(data, '$.invited')), sum(json_extract(data, '$.attended')) FROM heads "
            "WHERE collection = 'study_sessions' AND deleted = 0 AND path >= ? AND path < ? "
            "AND substr(json_extract(data, '$.date'), 1, 4) = ? GROUP BY 1, 2 ORDER BY 1, 2"
            : "SELECT path, data::jsonb->>'audience', count(*), "
              "sum((data::jsonb->>'invited')::numeric), sum((data::jsonb->>'attended')::numeric) FROM heads "
              "WHERE collection = 'study_sessions' AND deleted = 0 AND path >= ? AND path < ? "
              "AND substr(data::jsonb->>'date', 1, 4) = ? GROUP BY 1, 2 ORDER BY 1, 2");
        s.bind(1, lo).bind(2, hi).bind(3, four_digits(ctx.year));
        while (s.step()) {
            const auto label = s.text(1);
            const auto key = proto::to_nfd(label);
            for (const int row : {-1, roll.child_of(s.text(0))}) {
                auto& f = rows[row][key];
                if (f.label.empty()) f.label = label;
                f.sessions += s.int64(2);
                f.invited += s.int64(3);
                f.attended += s.int64(4);
                if (row == -1 && roll.child_of(s.text(0)) == -1) break;
            }
        }
    }
    json totals = {{"sessions", 0}, {"invited", 0}, {"attended", 0}};
    for (const auto& [row, audiences] : rows) {
        const unit& u = row < 0 ? out.root : *children[static_cast<std::size_t>(row)];
        for (const auto& [key, f] : audiences) {
            json j = unit_cells(u);
            j["audience"] = f.label;
            j["sessions"] = f.sessions;
            j["invited"] = f.invited;
            j["attended"] = f.attended;
            j["rate"] = ratio(f.attended, f.invited);
            out.rows.push_back(std::move(j));
            if (row < 0) {
                totals["sessions"] = totals["sessions"].get<std::int64_t>() + f.sessions;
                totals["invited"] = totals["invited"].get<std::int64_t>() + f.invited;
                totals["attended"] = totals["attended"].get<std::int64_t>() + f.attended;
            }
        }
    }
    totals["rate"] = ratio(totals["attended"].get<std::int64_t>(), totals["invited"].get<std::int64_t>());
    out.totals = std::move(totals);
}

void registrations_report(const report_context& ctx, report_table& out) {
    auto& db = ctx.db;
    const auto& lo = ctx.lo;
    const auto& hi = ctx.hi;
    const auto& children = ctx.children;
    const rollup roll{out.root, children};
    out.params = {{"year", ctx.year}};
    out.columns = {"unit", "unit_name", "kind", "members", "registered", "not_registered", "vague", "rate"};
    struct figures {
        std::int64_t members = 0, registered = 0, vague = 0;
    };
    std::map<int, figures> rows;
    rows[-1];
    for (std::size_t i = 0; i < children.size(); ++i) rows[static_cast<int>(i)];
    // A member counts as registered with a live registration of the year naming them,
    // and as vague when one is marked vague, or a review of it found it vague.
    // Both sets are built once (IN over a subquery makes an ephemeral index), so the
    // cost is one pass over members, registrations and reviews each.
    auto s = db.cached(
        db.kind() == sql::engine::sqlite
            ? "WITH vague_reviewed AS (SELECT json_extract(data, '$.registration') AS id FROM heads "
        "  WHERE collection = 'reviews' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.vague') = 1), "
        "reg AS (SELECT json_extract(data, '$.member') AS member, "
        "  json_extract(data, '$.status') = 'vague' OR id IN (SELECT id FROM vague_reviewed) AS vague "
        "  FROM heads WHERE collection = 'registrations' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.year') = ?3) "
        "SELECT path, count(*), sum(id IN (SELECT member FROM reg)), "
        "sum(id IN (SELECT member FROM reg WHERE vague)) FROM heads "
        "WHERE collection = 'members' AND deleted = 0 AND path >= ?1 AND path < ?2 GROUP BY path"
            : "WITH vague_reviewed AS (SELECT data::jsonb->>'registration' AS id FROM heads "
              "  WHERE collection = 'reviews' AND deleted = 0 AND path >= ?1 AND path < ?2 "
              "  AND data::jsonb->'vague' IN ('true'::jsonb, '1'::jsonb)), "
              "reg AS (SELECT data::jsonb->>'member' AS member, "
              "  (data::jsonb->>'status' = 'vague' OR id IN (SELECT id FROM vague_reviewed)) AS vague "
              "  FROM heads WHERE collection = 'registrations' AND deleted = 0 AND path >= ?1 AND path < ?2 "
              "  AND data::jsonb->'year' = to_jsonb(CAST(?3 AS bigint))) "
              "SELECT path, count(*), sum(CASE WHEN id IN (SELECT member FROM reg) THEN 1 ELSE 0 END), "
              "sum(CASE WHEN id IN (SELECT member FROM reg WHERE vague) THEN 1 ELSE 0 END) FROM heads "
              "WHERE collection = 'members' AND deleted = 0 AND path >= ?1 AND path < ?2 GROUP BY path");
    s.bind(1, lo).bind(2, hi).bind(3, ctx.year);
    while (s.step()) {
        const int child = roll.child_of(s.text(0));
        for (const int row : {-1, child}) {
            auto& f = rows[row];
            f.members += s.int64(1);
            f.registered += s.int64(2);
            f.vague += s.int64(3);
            if (child == -1) break;
        }
    }
    for (const auto& [row, f] : rows) {
        json j = unit_cells(row < 0 ? out.root : *children[static_cast<std::size_t>(row)]);
        j["members"] = f.members;
        j["registered"] = f.registered;
        j["not_registered"] = f.members - f.registered;
        j["vague"] = f.vague;
        j["rate"] = ratio(f.registered, f.members);
        if (row < 0) {
            out.totals = j;
            for (const char* k : {"unit", "unit_name", "kind"}) out.totals.erase(k);
        }
        out.rows.push_back(std::move(j));
    }
}

void unreviewed_cells_report(const report_context& ctx, report_table& out) {
    auto& db = ctx.db;
    const auto& lo = ctx.lo;
    const auto& hi = ctx.hi;
    // The stored periods of the subtree's reviews: those of the year's form count; a review
    // counts for the period asked when its own period lies within it (a review of 2014-Q2
    // is one of 2014-H1 and of 2014 too).
    std::vector<std::pair<review_period, std::string>> stored;  // parsed, and as stored
    {
        auto p = db.cached(
            db.kind() == sql::engine::sqlite
            ? "SELECT DISTINCT json_extract(data, '$.period') FROM heads "
            "WHERE collection = 'reviews' AND deleted = 0 AND path >= ? AND path < ? "
            "AND json_type(data, '$.period') = 'text'"
            : "SELECT DISTINCT data::jsonb->>'period' FROM heads "
              "WHERE collection = 'reviews' AND deleted = 0 AND path >= ? AND path < ? "
              "AND jsonb_typeof(data::jsonb->'period') = 'string'");
        p.bind(1, lo).bind(2, hi);
        while (p.step()) {
            const auto text = p.text(0);
            if (const auto parsed = parse_period(text); parsed && parsed->year == ctx.year)
                stored.emplace_back(*parsed, text);
        }
    }
    std::optional<review_period> period = ctx.period;
    if (!period)
        for (const auto& [parsed, text] : stored)
            if (!period || parsed.later_than(*period)) period = parsed;
    json matching = json::array();
    if (period)
        for (const auto& [parsed, text] : stored)
            if (parsed.within(*period)) matching.push_back(text);
    out.params = {{"year", ctx.year}, {"period", period ? json(period->text) : json(nullptr)}};
    out.columns = {"unit", "unit_name", "parent_name", "members", "registered", "reviewed", "not_reviewed"};
    // Per cell: members with a registration of the year, and those of them whose
    // registration a review of the period covers (a review names the member).
    auto s = db.cached(
        db.kind() == sql::engine::sqlite
            ? "WITH reg AS (SELECT DISTINCT json_extract(data, '$.member') AS member FROM heads "
        "  WHERE collection = 'registrations' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.year') = ?3), "
        "rev AS (SELECT DISTINCT json_extract(data, '$.member') AS member FROM heads "
        "  WHERE collection = 'reviews' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.period') IN (SELECT value FROM json_each(?4))) "
        "SELECT path, count(*), sum(id IN (SELECT member FROM reg)), "
        "sum(id IN (SELECT member FROM reg) AND id IN (SELECT member FROM rev)) FROM heads "
        "WHERE collection = 'members' AND deleted = 0 AND path >= ?1 AND path < ?2 GROUP BY path ORDER BY path"
            : "WITH reg AS (SELECT DISTINCT data::jsonb->>'member' AS member FROM heads "
              "  WHERE collection = 'registrations' AND deleted = 0 AND path >= ?1 AND path < ?2 "
              "  AND data::jsonb->'year' = to_jsonb(CAST(?3 AS bigint))), "
              "rev AS (SELECT DISTINCT data::jsonb->>'member' AS member FROM heads "
              "  WHERE collection = 'reviews' AND deleted = 0 AND path >= ?1 AND path < ?2 "
              "  AND data::jsonb->>'period' IN (SELECT jsonb_array_elements_text(CAST(?4 AS jsonb)))) "
              "SELECT path, count(*), sum(CASE WHEN id IN (SELECT member FROM reg) THEN 1 ELSE 0 END), "
              "sum(CASE WHEN id IN (SELECT member FROM reg) AND id IN (SELECT member FROM rev) THEN 1 ELSE 0 END) "
              "FROM heads WHERE collection = 'members' AND deleted = 0 AND path >= ?1 AND path < ?2 "
              "GROUP BY path ORDER BY path");
    s.bind(1, lo).bind(2, hi).bind(3, ctx.year).bind(4, matching.dump());
    std::int64_t cells = 0, none = 0, partial = 0;
    while (s.step()) {
        const auto path = s.text(0);
        const auto registered = s.int64(2), reviewed = s.int64(3);
        if (registered == 0) continue;
        ++cells;
        if (reviewed == registered) continue;
        (reviewed == 0 ? none : partial) += 1;
        const auto it = ctx.by_path.find(path);
        const unit u = it != ctx.by_path.end() ? *it->second : unit{path.substr(1, path.size() - 2), "", "", "", path};
        json j = {{"unit", u.id}, {"unit_name", u.name}, {"parent_name", ctx.name_of(u.parent)},
                  {"members", s.int64(1)}, {"registered", registered}, {"reviewed", reviewed},
                  {"not_reviewed", registered - reviewed}};
        out.rows.push_back(std::move(j));
    }
    out.totals = {{"cells_with_registrations", cells}, {"cells_not_reviewed", none},
                  {"cells_partly_reviewed", partial}};
}

void inspections_report(const report_context& ctx, report_table& out) {
    auto& db = ctx.db;
    const auto& lo = ctx.lo;
    const auto& hi = ctx.hi;
    out.params = {{"year", ctx.year}};
    out.columns = {"unit", "unit_name", "date", "team", "findings", "vague_registrations", "conclusions"};
    std::int64_t count = 0, with_vague = 0, vague_total = 0, conclusions_total = 0;
    {
        auto s = db.cached(
            db.kind() == sql::engine::sqlite
            ? "SELECT i.id, i.unit_id, i.data, (SELECT count(*) FROM heads c WHERE c.collection = 'conclusions' "
            "  AND c.deleted = 0 AND json_extract(c.data, '$.inspection') = i.id) FROM heads i "
            "WHERE i.collection = 'inspections' AND i.deleted = 0 AND i.path >= ?1 AND i.path < ?2 "
            "AND substr(json_extract(i.data, '$.date'), 1, 4) = ?3 "
            "ORDER BY json_extract(i.data, '$.date'), i.path, i.id"
            : "SELECT i.id, i.unit_id, i.data, (SELECT count(*) FROM heads c WHERE c.collection = 'conclusions' "
              "  AND c.deleted = 0 AND c.data::jsonb->>'inspection' = i.id) FROM heads i "
              "WHERE i.collection = 'inspections' AND i.deleted = 0 AND i.path >= ?1 AND i.path < ?2 "
              "AND substr(i.data::jsonb->>'date', 1, 4) = ?3 "
              "ORDER BY (i.data::jsonb->>'date') COLLATE \"C\", i.path, i.id");
        s.bind(1, lo).bind(2, hi).bind(3, four_digits(ctx.year));
        while (s.step()) {
            const auto data = parse_stored(s.text(2));
            const auto unit_id = data.value("unit", s.text(1));
            const auto vague = data.contains("vague_registrations") && data["vague_registrations"].is_number_integer()
                                   ? data["vague_registrations"].get<std::int64_t>() : 0;
            json j = {{"id", s.text(0)},
                      {"unit", unit_id},
                      {"unit_name", ctx.name_of(unit_id)},
                      {"date", data.value("date", "")},
                      {"team", data.value("team", json::array())},
                      {"findings", data.value("findings", json::array())},
                      {"vague_registrations", vague},
                      {"conclusions", s.int64(3)}};
            ++count;
            with_vague += vague > 0 ? 1 : 0;
            vague_total += vague;
            conclusions_total += s.int64(3);
            out.rows.push_back(std::move(j));
        }
    }
    out.totals = {{"inspections", count}, {"with_vague_registrations", with_vague},
                  {"vague_registrations", vague_total}, {"conclusions", conclusions_total}};
}

// The tree within the scope, and the unit reported on with its subtree's range and children
// (into ctx and `root`). Errors: not_found for a unit not in the tree or out of scope.
std::optional<proto::error> locate_root(report_context& ctx, const scope& sc, const std::string& unit_id, unit& root) {
    auto& db = ctx.db;
    auto& tree = ctx.tree;
    {
        const std::string lo = sc.all ? "/" : sc.path, hi = sc.all ? "0" : subtree_end(sc.path);
        auto s = db.cached("SELECT id, parent, name, kind, path FROM units WHERE path >= ? AND path < ? ORDER BY path");
        s.bind(1, lo).bind(2, hi);
        while (s.step()) tree.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)});
    }
    if (!unit_id.empty()) {
        const auto it = std::find_if(tree.begin(), tree.end(), [&](const unit& u) { return u.id == unit_id; });
        if (it == tree.end()) return error{errc::not_found, "no unit '" + unit_id + "' in this device's scope"};
        root = *it;
    } else if (sc.all) {
        // Everything: the tree's root when it has one (a district), else all roots.
        std::vector<const unit*> roots;
        for (const auto& u : tree)
            if (u.parent.empty()) roots.push_back(&u);
        root = roots.size() == 1 ? *roots.front() : unit{"", "", "", "", "/"};
    } else {
        const auto it = std::find_if(tree.begin(), tree.end(), [&](const unit& u) { return u.path == sc.path; });
        if (it != tree.end()) root = *it;
        else root = unit{sc.path.substr(1, sc.path.size() - 2), "", "", "", sc.path};
    }
    ctx.lo = root.path;
    ctx.hi = subtree_end(root.path);
    for (const auto& u : tree) {
        ctx.by_path[u.path] = &u;
        if (u.parent == root.id && u.path != root.path && u.path.starts_with(ctx.lo)) ctx.children.push_back(&u);
    }
    return std::nullopt;
}

}  // namespace

proto::expected<report_table> sql_store::report(const scope& sc, const report_request& r) {
    const auto& names = report_names();
    if (std::find(names.begin(), names.end(), r.name) == names.end()) {
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        return error{errc::not_found, "no report '" + r.name + "' (reports: " + known + ")"};
    }
    if (r.year && (*r.year < 1 || *r.year > 9999)) return error{errc::bad_request, "year must be 1..9999"};
    if (r.period.size() > 50) return error{errc::bad_request, "period is at most 50 bytes"};
    // A period names its year: it must agree with the year asked, or it sets the year.
    std::optional<review_period> period;
    if (r.name == "unreviewed_cells" && !r.period.empty()) {
        period = parse_period(r.period);
        if (!period)
            return error{errc::bad_request, "period" + quotable(r.period) +
                                                " is not a review period: YYYY (the whole year), YYYY-Q1 to YYYY-Q4 "
                                                "or YYYY-H1, YYYY-H2"};
        if (r.year && *r.year != period->year)
            return error{errc::bad_request, "period " + period->text + " is not of year " + std::to_string(*r.year)};
    }

    auto result = read([&](sql::db& db) -> proto::expected<report_table> {
        report_context ctx{db, r, 0, period, {}, {}, {}, {}, {}};
        report_table out;
        out.name = r.name;
        if (auto refused = locate_root(ctx, sc, r.unit_id, out.root)) return *refused;
        out.campaign_year = campaign_year_on(db).year;
        ctx.year = r.year ? *r.year : period ? period->year : out.campaign_year;
        out.years = data_years(db, r.name, ctx.lo, ctx.hi);
        out.has_data = std::binary_search(out.years.begin(), out.years.end(), ctx.year);
        if (r.name == "participation")
            participation_report(ctx, out);
        else if (r.name == "registrations")
            registrations_report(ctx, out);
        else if (r.name == "unreviewed_cells")
            unreviewed_cells_report(ctx, out);
        else
            inspections_report(ctx, out);
        return out;
    });
    if (!result) return result.err();
    return std::move(*result);
}

proto::expected<report_overview> sql_store::report_years(const scope& sc, const std::string& unit_id) {
    auto result = read([&](sql::db& db) -> proto::expected<report_overview> {
        const report_request r;
        report_context ctx{db, r, 0, std::nullopt, {}, {}, {}, {}, {}};
        unit root;
        if (auto refused = locate_root(ctx, sc, unit_id, root)) return *refused;
        report_overview out;
        out.campaign_year = campaign_year_on(db).year;
        std::set<std::int64_t> years;
        // unreviewed_cells counts from the registrations' years, as registrations does.
        for (const char* name : {"participation", "registrations", "inspections"})
            for (const auto y : data_years(db, name, ctx.lo, ctx.hi)) years.insert(y);
        out.years.assign(years.begin(), years.end());
        return out;
    });
    if (!result) return result.err();
    return std::move(*result);
}

campaign_year_info sql_store::campaign_year_on(sql::db& db) const {
    if (const auto o = campaign_year_override_.load(); o > 0) return {o, "override"};
    if (const auto y = stored_campaign_year(db)) return {*y, "configured"};
    return {vietnam_year_of(wall_()), "clock"};
}

proto::expected<campaign_year_info> sql_store::campaign_year() {
    auto result = read([&](sql::db& db) { return campaign_year_on(db); });
    if (!result) return result.err();
    return *result;
}

proto::expected<void> sql_store::set_campaign_year(std::optional<std::int64_t> year) {
    if (year && (*year < 1 || *year > 9999)) return error{errc::bad_request, "the campaign year must be 1..9999"};
    auto done = admin_write([&](sql::db& db) {
        if (year)
            db.cached("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                .bind(1, std::string(k_campaign_year_key))
                .bind(2, std::to_string(*year))
                .run();
        else
            db.cached("DELETE FROM meta WHERE key = ?").bind(1, std::string(k_campaign_year_key)).run();
        return true;
    });
    if (!done) return done.err();
    return {};
}

void sql_store::override_campaign_year(std::optional<std::int64_t> year) {
    campaign_year_override_.store(year && *year >= 1 && *year <= 9999 ? *year : 0);
}

}  // namespace fieldsync::server
