#include "invariants/store_check.hpp"

#include <fieldsync/server/store.hpp>

#include <fieldsync/sqlite/sqlite.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace fieldsync::tools {

namespace srv = fieldsync::server;
using record_key = std::pair<std::string, std::string>;  // collection, id

bool integrity_ok(const std::filesystem::path& db, const std::function<void(const std::string&)>& fail) {
    std::string out;
    try {
        sqlite::db h(db.string(), sqlite::db::mode::read_only);
        auto q = h.cached("PRAGMA integrity_check");
        while (q.step()) out += q.text(0);
    } catch (const sqlite::error& e) {
        fail(std::string("cannot run integrity_check: ") + e.what());
        return false;
    }
    if (out != "ok") fail("PRAGMA integrity_check: " + out);
    return out == "ok";
}

check_totals check_store(const std::filesystem::path& db, const std::vector<answered_change>& answered,
                         const std::function<void(const std::string&)>& fail) {
    check_totals t;
    integrity_ok(db, fail);
    srv::store_options so;
    so.path = db.string();
    auto opened = srv::open_sqlite_store(so);
    if (!opened) {
        fail("cannot open the store: " + opened.err().message);
        return t;
    }
    auto& st = **opened;

    // Every record any change named, and its history.
    std::set<record_key> keys;
    for (const auto& c : answered) keys.emplace(c.collection, c.id);
    std::map<record_key, std::vector<srv::history_entry>> history;
    std::map<std::string, int> seen_change;  // change_id -> history entries
    std::vector<std::int64_t> seqs;
    for (const auto& key : keys) {
        auto h = st.history(key.first, key.second);
        if (!h) {
            fail("history of " + key.second + ": " + h.err().message);
            continue;
        }
        for (const auto& e : *h) {
            seqs.push_back(e.seq);
            if (!e.change_id.empty()) ++seen_change[e.change_id];
        }
        history[key] = std::move(*h);
    }

    std::set<std::string> answered_ids;
    for (const auto& c : answered) {
        const auto& r = c.result;
        answered_ids.insert(c.change_id);
        const auto status = r.value("status", "");
        const auto version = r.value("version", std::int64_t{-1});
        const auto& h = history[{c.collection, c.id}];
        int with_id = 0;
        bool version_matches = false, version_exists = false;
        for (const auto& e : h) {
            if (e.change_id == c.change_id) {
                ++with_id;
                version_matches = e.version == version;
            }
            if (e.version == version) version_exists = true;
        }
        const std::string who = c.change_id + " (" + status + " v" + std::to_string(version) + ")";
        if (status == "applied") {
            ++t.applied;
            if (with_id != 1 || !version_matches)
                fail(who + ": " + std::to_string(with_id) + " history entries, version match " +
                     std::to_string(version_matches));
        } else if (status == "merged") {
            ++t.merged;
            // A merge equal to the head writes no version (ARCHITECTURE.md, Departures).
            if (with_id > 1 || (with_id == 1 && !version_matches) || (with_id == 0 && !version_exists))
                fail(who + ": " + std::to_string(with_id) + " history entries, version match " +
                     std::to_string(version_matches));
        } else if (status == "conflict") {
            ++t.conflicts;
            if (with_id != 0) fail(who + ": a conflict wrote history");
            const auto cf = st.conflict(r.value("conflict_id", ""));
            if (!cf || !*cf || (*cf)->change_id != c.change_id)
                fail(who + ": no conflict " + r.value("conflict_id", "") + " for it");
        } else if (status == "rejected") {
            ++t.rejected;
            if (with_id != 0) fail(who + ": a rejected change wrote history");
        } else {
            fail(who + ": unknown status " + r.dump());
        }
    }
    for (const auto& [cid, n] : seen_change)
        if (!answered_ids.count(cid)) fail("history holds " + cid + ", which was never answered");

    // Seqs: strictly increasing with no gap.
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t k = 0; k < seqs.size(); ++k)
        if (seqs[k] != static_cast<std::int64_t>(k) + 1) {
            fail("history seq " + std::to_string(k + 1) + " is " + std::to_string(seqs[k]) + " (gap or repeat)");
            break;
        }

    // The feed from the beginning: each record once, at its head version.
    std::map<record_key, std::int64_t> fed;
    std::int64_t after = 0, last = 0;
    for (int page = 0; page < 1'000'000; ++page) {
        auto p = st.pull(after, 500);
        if (!p) {
            fail("pull: " + p.err().message);
            break;
        }
        for (const auto& c : p->changes)
            if (!fed.emplace(record_key{c.collection, c.id}, c.version).second) fail("the feed repeats " + c.id);
        if (p->last_seq < last) fail("the feed's cursor went back");
        last = after = p->last_seq;
        if (!p->more) break;
    }
    for (const auto& [key, h] : history) {
        if (h.empty()) continue;
        const auto head = st.get(key.first, key.second);
        if (!head || !*head) {
            fail("no head for " + key.second);
            continue;
        }
        const auto it = fed.find(key);
        if (it == fed.end())
            fail("the feed misses " + key.second);
        else if (it->second != (*head)->version)
            fail("the feed has " + key.second + " at an old version");
        if ((*head)->version != h.back().version) fail(key.second + ": head version is not the last history version");
    }
    const auto with_history =
        std::count_if(history.begin(), history.end(), [](const auto& h) { return !h.second.empty(); });
    if (static_cast<std::ptrdiff_t>(fed.size()) != with_history) fail("the feed holds records with no history");
    st.close();
    t.records = static_cast<long>(with_history);
    t.versions = static_cast<long>(seqs.size());
    return t;
}

}  // namespace fieldsync::tools
