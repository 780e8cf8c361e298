// The district's reports (SPEC.md, "Reports"): SQL over the live heads of a subtree,
// json_extract for the fields, grouped by unit path; the roll-up to the unit and its children
// happens here, by path prefix. Only heads are read: a deleted record (a tombstone) counts
// nowhere, and an edited one counts once, as it is now.

#include "store/sqlite_store.hpp"

#include <fieldsync/protocol/nfd.hpp>

#include <algorithm>
#include <map>

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
            {"columns", r.columns},
            {"rows", std::move(rows)},
            {"totals", r.totals.is_null() ? json::object() : r.totals}};
}

namespace {

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

// The latest year of a collection's data in the range: `expr` picks the year from `data`.
std::optional<std::int64_t> latest_year(sqlite::db& db, const char* sql, const std::string& lo,
                                        const std::string& hi) {
    auto s = db.cached(sql);
    s.bind(1, lo).bind(2, hi);
    std::optional<std::int64_t> year;
    if (s.step() && !s.is_null(0)) year = s.int64(0);
    return year;
}

// What every report reads first: the request, the tree within the scope, the unit reported
// on (`out.root`) with its path range and children.
struct report_context {
    sqlite::db& db;
    const report_request& r;
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

std::optional<std::int64_t> registration_year_of(const report_context& ctx) {
    return ctx.r.year ? ctx.r.year : latest_year(ctx.db,
        "SELECT max(json_extract(data, '$.year')) FROM heads "
        "WHERE collection = 'registrations' AND deleted = 0 AND path >= ? AND path < ?", ctx.lo, ctx.hi);
}

void participation_report(const report_context& ctx, report_table& out) {
    auto& db = ctx.db;
    const auto& r = ctx.r;
    const auto& lo = ctx.lo;
    const auto& hi = ctx.hi;
    const auto& children = ctx.children;
    const rollup roll{out.root, children};
    const auto year = r.year ? r.year : latest_year(db,
        "SELECT max(CAST(substr(json_extract(data, '$.date'), 1, 4) AS INTEGER)) FROM heads "
        "WHERE collection = 'study_sessions' AND deleted = 0 AND path >= ? AND path < ?", lo, hi);
    out.params = {{"year", year ? json(*year) : json(nullptr)}};
    out.columns = {"unit", "unit_name", "audience", "sessions", "invited", "attended", "rate"};
    struct figures {
        std::string label;
        std::int64_t sessions = 0, invited = 0, attended = 0;
    };
    // Row -1 is the unit itself; audiences keyed by their NFD form, so a label typed
    // precomposed on one phone and decomposed on another is one audience.
    std::map<int, std::map<std::string, figures>> rows;
    if (year) {
        auto s = db.cached(
            "SELECT path, json_extract(data, '$.audience'), count(*), "
            "sum(json_extract(data, '$.invited')), sum(json_extract(data, '$.attended')) FROM heads "
            "WHERE collection = 'study_sessions' AND deleted = 0 AND path >= ? AND path < ? "
            "AND substr(json_extract(data, '$.date'), 1, 4) = ? GROUP BY 1, 2 ORDER BY 1, 2");
        s.bind(1, lo).bind(2, hi).bind(3, std::to_string(*year));
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
    const auto registration_year = registration_year_of(ctx);
    out.params = {{"year", registration_year ? json(*registration_year) : json(nullptr)}};
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
        "WITH vague_reviewed AS (SELECT json_extract(data, '$.registration') AS id FROM heads "
        "  WHERE collection = 'reviews' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.vague') = 1), "
        "reg AS (SELECT json_extract(data, '$.member') AS member, "
        "  json_extract(data, '$.status') = 'vague' OR id IN (SELECT id FROM vague_reviewed) AS vague "
        "  FROM heads WHERE collection = 'registrations' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.year') = ?3) "
        "SELECT path, count(*), sum(id IN (SELECT member FROM reg)), "
        "sum(id IN (SELECT member FROM reg WHERE vague)) FROM heads "
        "WHERE collection = 'members' AND deleted = 0 AND path >= ?1 AND path < ?2 GROUP BY path");
    s.bind(1, lo).bind(2, hi).bind(3, registration_year.value_or(-1));
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
    const auto& r = ctx.r;
    const auto& lo = ctx.lo;
    const auto& hi = ctx.hi;
    const auto registration_year = registration_year_of(ctx);
    std::string period = r.period;
    if (period.empty()) {
        auto p = db.cached(
            "SELECT max(json_extract(data, '$.period')) FROM heads "
            "WHERE collection = 'reviews' AND deleted = 0 AND path >= ? AND path < ?");
        p.bind(1, lo).bind(2, hi);
        if (p.step() && !p.is_null(0)) period = p.text(0);
    }
    out.params = {{"year", registration_year ? json(*registration_year) : json(nullptr)},
                  {"period", period.empty() ? json(nullptr) : json(period)}};
    out.columns = {"unit", "unit_name", "parent_name", "members", "registered", "reviewed", "not_reviewed"};
    // Per cell: members with a registration of the year, and those of them whose
    // registration a review of the period covers (a review names the member).
    auto s = db.cached(
        "WITH reg AS (SELECT DISTINCT json_extract(data, '$.member') AS member FROM heads "
        "  WHERE collection = 'registrations' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.year') = ?3), "
        "rev AS (SELECT DISTINCT json_extract(data, '$.member') AS member FROM heads "
        "  WHERE collection = 'reviews' AND deleted = 0 AND path >= ?1 AND path < ?2 "
        "  AND json_extract(data, '$.period') = ?4) "
        "SELECT path, count(*), sum(id IN (SELECT member FROM reg)), "
        "sum(id IN (SELECT member FROM reg) AND id IN (SELECT member FROM rev)) FROM heads "
        "WHERE collection = 'members' AND deleted = 0 AND path >= ?1 AND path < ?2 GROUP BY path ORDER BY path");
    s.bind(1, lo).bind(2, hi).bind(3, registration_year.value_or(-1)).bind(4, period);
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
    const auto& r = ctx.r;
    const auto& lo = ctx.lo;
    const auto& hi = ctx.hi;
    const auto year = r.year ? r.year : latest_year(db,
        "SELECT max(CAST(substr(json_extract(data, '$.date'), 1, 4) AS INTEGER)) FROM heads "
        "WHERE collection = 'inspections' AND deleted = 0 AND path >= ? AND path < ?", lo, hi);
    out.params = {{"year", year ? json(*year) : json(nullptr)}};
    out.columns = {"unit", "unit_name", "date", "team", "findings", "vague_registrations", "conclusions"};
    std::int64_t count = 0, with_vague = 0, vague_total = 0, conclusions_total = 0;
    if (year) {
        auto s = db.cached(
            "SELECT i.id, i.unit_id, i.data, (SELECT count(*) FROM heads c WHERE c.collection = 'conclusions' "
            "  AND c.deleted = 0 AND json_extract(c.data, '$.inspection') = i.id) FROM heads i "
            "WHERE i.collection = 'inspections' AND i.deleted = 0 AND i.path >= ?1 AND i.path < ?2 "
            "AND substr(json_extract(i.data, '$.date'), 1, 4) = ?3 "
            "ORDER BY json_extract(i.data, '$.date'), i.path, i.id");
        s.bind(1, lo).bind(2, hi).bind(3, std::to_string(*year));
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

}  // namespace

proto::expected<report_table> sqlite_store::report(const scope& sc, const report_request& r) {
    const auto& names = report_names();
    if (std::find(names.begin(), names.end(), r.name) == names.end()) {
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        return error{errc::not_found, "no report '" + r.name + "' (reports: " + known + ")"};
    }
    if (r.year && (*r.year < 1 || *r.year > 9999)) return error{errc::bad_request, "year must be 1..9999"};
    if (r.period.size() > 50) return error{errc::bad_request, "period is at most 50 bytes"};

    auto result = read([&](sqlite::db& db) -> proto::expected<report_table> {
        report_context ctx{db, r, {}, {}, {}, {}, {}};
        auto& tree = ctx.tree;
        {
            const std::string lo = sc.all ? "/" : sc.path, hi = sc.all ? "0" : subtree_end(sc.path);
            auto s = db.cached("SELECT id, parent, name, kind, path FROM units WHERE path >= ? AND path < ? ORDER BY path");
            s.bind(1, lo).bind(2, hi);
            while (s.step()) tree.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)});
        }
        report_table out;
        out.name = r.name;
        if (!r.unit_id.empty()) {
            const auto it = std::find_if(tree.begin(), tree.end(), [&](const unit& u) { return u.id == r.unit_id; });
            if (it == tree.end()) return error{errc::not_found, "no unit '" + r.unit_id + "' in this device's scope"};
            out.root = *it;
        } else if (sc.all) {
            // Everything: the tree's root when it has one (a district), else all roots.
            std::vector<const unit*> roots;
            for (const auto& u : tree)
                if (u.parent.empty()) roots.push_back(&u);
            out.root = roots.size() == 1 ? *roots.front() : unit{"", "", "", "", "/"};
        } else {
            const auto it = std::find_if(tree.begin(), tree.end(), [&](const unit& u) { return u.path == sc.path; });
            if (it != tree.end()) out.root = *it;
            else out.root = unit{sc.path.substr(1, sc.path.size() - 2), "", "", "", sc.path};
        }
        ctx.lo = out.root.path;
        ctx.hi = subtree_end(out.root.path);
        for (const auto& u : tree) {
            ctx.by_path[u.path] = &u;
            if (u.parent == out.root.id && u.path != out.root.path && u.path.starts_with(ctx.lo))
                ctx.children.push_back(&u);
        }
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

}  // namespace fieldsync::server
