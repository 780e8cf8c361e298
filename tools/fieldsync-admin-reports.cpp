#include "fieldsync-admin-reports.hpp"
#include "fieldsync-admin-common.hpp"

#include "demo/demo_store.hpp"

#include <fieldsync/protocol/display_width.hpp>
#include <fieldsync/protocol/ids.hpp>

#include <climits>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

namespace fieldsync::admin {

using protocol::json;

const char* const k_demo_usage =
    "usage: fieldsync-admin --db PATH demo --district NAME [--seed N] [--communes N] [--members N]\n"
    "Loads a realistic data set in the shape of the district's 2014 campaign into an empty store:\n"
    "the unit tree (communes with hamlet cells, office cells), members with Vietnamese names,\n"
    "registrations (concrete and vague), committee reviews, study sessions, the district's 10\n"
    "inspections and their conclusions, and a device per role. Written through the store, so\n"
    "versions, history and the feed are real. The same seed gives the same data.\n"
    "Defaults: --seed 2014 --communes 12 --members 2000. Only \"Giồng Trôm\" has names.\n"
    "Prints each device as ROLE<TAB>UNIT<TAB>NAME<TAB>TOKEN on stdout (tokens are shown once).\n";

const char* const k_report_usage =
    "usage: fieldsync-admin --db PATH report NAME [--unit U] [--year Y] [--period P] [--format table|csv|json]\n"
    "                                        [--machine-headers]\n"
    "The district's figures from the merged data (live records only), for the subtree of U (default:\n"
    "the whole tree), rolled up by unit:\n"
    "  participation      study sessions by unit and audience: invited, attended, rate\n"
    "  registrations      members with and without a registration of the year, vague ones\n"
    "  unreviewed_cells   cells whose committee has not reviewed (all) its registered members in the period\n"
    "  inspections        the district's inspections, their findings and conclusions\n"
    "Every report is of one year: --year, else the campaign year ('campaign-year'). --period\n"
    "(unreviewed_cells) is YYYY, YYYY-Q1..YYYY-Q4 or YYYY-H1/YYYY-H2, of that year (alone, it sets\n"
    "the year); it defaults to the latest period of the year's reviews. --format csv prints what\n"
    "the server's ?format=csv answers (UTF-8 with a BOM, Vietnamese column titles, rates in %);\n"
    "--machine-headers gives the column names and raw values instead, without the BOM.\n";

const char* const k_campaign_year_usage =
    "usage: fieldsync-admin --db PATH campaign-year [YEAR | --clear]\n"
    "Prints the campaign year every report is of unless another is asked for, and where it comes\n"
    "from (configured in the store, or this year's in Vietnam when none is); YEAR (1..9999) keeps\n"
    "it in the store, --clear forgets it. fieldsync-server --campaign-year overrides it.\n";

namespace {


bool parse_number(const std::string& s, std::int64_t& out) {
    const auto v = fieldsync::protocol::parse_integer(s, INT64_MIN, INT64_MAX);
    if (v) out = *v;
    return v.has_value();
}

std::string percent(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", v * 100.0);
    return buf;
}

// A cell as text: strings as they are, arrays joined with "; ", rates as percentages.
std::string cell_text(const std::string& column, const json& v, bool for_csv) {
    if (v.is_null()) return for_csv ? "" : "-";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_array()) {
        std::string out;
        for (const auto& x : v) out += (out.empty() ? "" : "; ") + cell_text(column, x, for_csv);
        return out;
    }
    if (v.is_number_float()) {
        if (column == "rate" && !for_csv) return percent(v.get<double>());
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", v.get<double>());
        return buf;
    }
    return v.dump();
}

const char* heading(const std::string& column) {
    static const std::map<std::string, const char*> names = {
        {"unit", "UNIT"},         {"unit_name", "NAME"},         {"kind", "KIND"},
        {"audience", "AUDIENCE"}, {"sessions", "SESSIONS"},      {"invited", "INVITED"},
        {"attended", "ATTENDED"}, {"rate", "RATE"},              {"members", "MEMBERS"},
        {"registered", "REGISTERED"}, {"not_registered", "NOT REGISTERED"}, {"vague", "VAGUE"},
        {"parent_name", "IN"},    {"reviewed", "REVIEWED"},      {"not_reviewed", "NOT REVIEWED"},
        {"date", "DATE"},         {"team", "TEAM"},              {"findings", "FINDINGS"},
        {"vague_registrations", "VAGUE REG."}, {"conclusions", "CONCLUSIONS"}};
    const auto it = names.find(column);
    return it == names.end() ? column.c_str() : it->second;
}

std::string describe(const server::report_table& r) {
    std::string out = r.name + " — " + (r.root.id.empty() ? std::string("all units") : r.root.name + " (" + r.root.id + ")");
    if (r.params.is_object())
        for (const auto& [k, v] : r.params.items()) out += ", " + k + " " + (v.is_null() ? "-" : v.is_string() ? v.get<std::string>() : v.dump());
    std::string years;
    for (const auto y : r.years) years += (years.empty() ? "" : ", ") + std::to_string(y);
    out += " (campaign year " + std::to_string(r.campaign_year) + "; data for " + (years.empty() ? "no year" : years) + ")";
    return out;
}

}  // namespace

std::string format_table(const server::report_table& r) {
    std::vector<std::vector<std::string>> rows;
    std::vector<bool> numeric(r.columns.size(), true);
    rows.emplace_back();
    for (const auto& c : r.columns) rows.back().push_back(heading(c));
    for (const auto& row : r.rows) {
        rows.emplace_back();
        for (std::size_t i = 0; i < r.columns.size(); ++i) {
            const auto v = row.contains(r.columns[i]) ? row[r.columns[i]] : json(nullptr);
            if (!v.is_number() && !v.is_null()) numeric[i] = false;
            rows.back().push_back(cell_text(r.columns[i], v, false));
        }
    }
    std::vector<std::size_t> width(r.columns.size(), 0);
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], protocol::display_width(row[i]));
    std::ostringstream out;
    out << describe(r) << "\n";
    if (!r.has_data) {
        const auto y = r.params.is_object() ? r.params.value("year", json(nullptr)) : json(nullptr);
        out << "no data for " << (y.is_null() ? std::string("this year") : y.dump()) << "\n";
        return out.str();
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            const auto pad = width[i] - protocol::display_width(row[i]);
            if (numeric[i]) line += std::string(pad, ' ') + row[i];
            else line += i + 1 < row.size() ? protocol::pad_to_width(row[i], width[i]) : row[i];
            if (i + 1 < row.size()) line += "  ";
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << "\n";
    }
    if (r.rows.empty()) out << "(no rows)\n";
    if (r.totals.is_object() && !r.totals.empty()) {
        out << "totals:";
        bool first = true;
        for (const auto& [k, v] : r.totals.items()) {
            out << (first ? " " : ", ") << k << " " << cell_text(k, v, false);
            first = false;
        }
        out << "\n";
    }
    return out.str();
}

std::string format_csv(const server::report_table& r, bool machine_headers) { return server::to_csv(r, machine_headers); }

int run_demo(const std::string& db_in, const std::vector<std::string>& args) {
    std::string db = db_in;
    demo::options o;
    bool district = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (i + 1 >= args.size()) return usage_error("'" + a + "' needs a value", k_demo_usage);
        const auto& v = args[++i];
        std::int64_t n = 0;
        if (a == "--district") { o.district = v; district = true; }
        else if (a == "--db") db = v;
        else if (a == "--seed") {
            if (!parse_number(v, n) || n < 0) return usage_error("--seed must be a non-negative integer", k_demo_usage);
            o.seed = static_cast<std::uint64_t>(n);
        } else if (a == "--communes") {
            if (!parse_number(v, n)) return usage_error("--communes must be an integer", k_demo_usage);
            o.communes = static_cast<int>(n);
        } else if (a == "--members") {
            if (!parse_number(v, n) || n > 100000) return usage_error("--members must be an integer", k_demo_usage);
            o.members = static_cast<int>(n);
        } else
            return usage_error("unknown argument '" + a + "'", k_demo_usage);
    }
    if (!district) return usage_error("--district is required", k_demo_usage);
    if (db.empty()) return usage_error("--db PATH is required", k_demo_usage);
    auto data = demo::generate(o);
    if (!data) return usage_error(data.err().message, k_demo_usage);
    return with_store(db, [&](server::store& st) {
        auto loaded = demo::load(st, *data);
        if (!loaded) return refused("cannot load the demo", loaded.err());
        // The demo is one campaign's data: its reports open on that year.
        if (auto kept = st.set_campaign_year(o.year); !kept) return refused("cannot set the campaign year", kept.err());
        std::size_t members = 0;
        for (const auto& rec : data->records) members += rec.collection == "members" ? 1 : 0;
        std::cerr << "fieldsync-admin: demo of " << data->units.front().name << " (seed " << o.seed << ") loaded: "
                  << data->units.size() << " units, " << members << " members, " << loaded->records << " records ("
                  << loaded->versions << " versions), " << loaded->devices.size()
                  << " devices; their tokens follow, shown only this once\n";
        for (const auto& [dev, token] : loaded->devices)
            std::cout << dev.role << "\t" << dev.unit_id << "\t" << dev.name << "\t" << token << "\n";
        std::cout.flush();
        return 0;
    });
}

int run_report(const std::string& db_in, const std::vector<std::string>& args) {
    if (args.empty() || args[0].rfind("--", 0) == 0) return usage_error("report needs a name", k_report_usage);
    std::string db = db_in, format = "table";
    server::report_request req;
    req.name = args[0];
    bool machine_headers = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--machine-headers") {
            machine_headers = true;
            continue;
        }
        if (i + 1 >= args.size()) return usage_error("'" + a + "' needs a value", k_report_usage);
        const auto& v = args[++i];
        std::int64_t n = 0;
        if (a == "--unit") req.unit_id = v;
        else if (a == "--db") db = v;
        else if (a == "--period") req.period = v;
        else if (a == "--format") {
            if (v != "table" && v != "csv" && v != "json") return usage_error("--format must be table, csv or json", k_report_usage);
            format = v;
        } else if (a == "--year") {
            if (!parse_number(v, n) || n < 1 || n > 9999) return usage_error("--year must be a year", k_report_usage);
            req.year = n;
        } else
            return usage_error("unknown argument '" + a + "'", k_report_usage);
    }
    if (db.empty()) return usage_error("--db PATH is required", k_report_usage);
    return with_store(db, [&](server::store& st) {
        auto r = st.report(server::scope{true, {}}, req);
        if (!r) {
            std::cerr << "fieldsync-admin: " << r.err().message << "\n";
            return r.err().code == protocol::errc::not_found || r.err().code == protocol::errc::bad_request
                       ? k_exit_usage
                       : k_exit_failure;
        }
        if (format == "json") std::cout << server::to_json(*r).dump(2) << "\n";
        else if (format == "csv") std::cout << format_csv(*r, machine_headers);
        else std::cout << format_table(*r);
        return 0;
    });
}

int run_campaign_year(const std::string& db_in, const std::vector<std::string>& args) {
    std::string db = db_in;
    std::optional<std::int64_t> year;
    bool clear = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        std::int64_t n = 0;
        if (a == "--db") {
            if (i + 1 >= args.size()) return usage_error("'--db' needs a value", k_campaign_year_usage);
            db = args[++i];
        } else if (a == "--clear") clear = true;
        else if (!year && parse_number(a, n) && n >= 1 && n <= 9999) year = n;
        else return usage_error("'" + a + "' is not a year from 1 to 9999", k_campaign_year_usage);
    }
    if (clear && year) return usage_error("give a YEAR or --clear, not both", k_campaign_year_usage);
    if (db.empty()) return usage_error("--db PATH is required", k_campaign_year_usage);
    return with_store(db, [&](server::store& st) {
        if (year || clear)
            if (auto kept = st.set_campaign_year(year); !kept) return refused("cannot set the campaign year", kept.err());
        auto now = st.campaign_year();
        if (!now) return refused("cannot read the campaign year", now.err());
        std::cout << now->year << "\t" << (now->source == "configured" ? "configured" : "this year in Vietnam (none configured)")
                  << "\n";
        return 0;
    });
}

}  // namespace fieldsync::admin
