// fieldsync-scope-bench: what a pull costs a cell device and a district device on a large
// district store (issue 4: the cost of a pull must grow with the changes of the device's
// subtree, not of the whole district). Not a test: it prints figures and asserts nothing
// about time; it does check that each device received exactly the records of its scope.
//
// It builds (or reuses, with --db) a store of --cells cells under --communes communes with
// --records records spread evenly over the cells, through the store's own write path. Then,
// for one cell device and the district (admin) device, it measures:
//   - initial: pulling everything of the scope from the start, page by page (for the district
//     only the first --district-pages pages, since the whole store is the point of contrast);
//   - incremental: one new record in the cell, then a pull from the cursor the device had.
// Each figure is the median of --repeat runs, in milliseconds, with SQLite page reads
// counted through sqlite3_status where the build allows it.

#include <fieldsync/server/store.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

namespace fsrv = fieldsync::server;
namespace fproto = fieldsync::protocol;
using clock_type = std::chrono::steady_clock;

constexpr const char* k_usage =
    "usage: fieldsync-scope-bench [--db PATH] [--communes N] [--cells N] [--records N]\n"
    "                             [--page N] [--district-pages N] [--repeat N]\n"
    "Builds a district store (default 20 communes, 1000 cells, 1000000 records) unless --db\n"
    "names one this tool built before, then prints the pull cost of a cell device and of the\n"
    "district device: initial sync of the scope and an incremental pull after one change.\n";

struct options {
    std::string db;
    int communes = 20;
    int cells = 1000;
    long records = 1'000'000;
    long page = 500;
    int district_pages = 20;
    int repeat = 5;
};

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::string cell_id(int i) { return "ap-" + std::to_string(i); }

fsrv::device must(fieldsync::protocol::expected<std::pair<fsrv::device, std::string>> d) {
    if (!d) throw std::runtime_error(d.err().message);
    return d->first;
}

void build(fsrv::store& s, const options& o) {
    const auto t0 = clock_type::now();
    if (!s.put_unit({"giong-trom", "", "Huyện ủy Giồng Trôm", "district"}))
        throw std::runtime_error("cannot add the district");
    for (int c = 0; c < o.communes; ++c)
        if (!s.put_unit({"xa-" + std::to_string(c), "giong-trom", "Đảng bộ xã " + std::to_string(c), "commune"}))
            throw std::runtime_error("cannot add a commune");
    for (int i = 0; i < o.cells; ++i)
        if (!s.put_unit({cell_id(i), "xa-" + std::to_string(i % o.communes), "Chi bộ ấp " + std::to_string(i), "cell"}))
            throw std::runtime_error("cannot add a cell");
    const auto loader = must(s.add_device("loader", "giong-trom", fsrv::device_role::admin));

    const std::string filler(150, 'x');
    long written = 0;
    int batch_no = 0;
    while (written < o.records) {
        fproto::change_set cs;
        cs.batch_id = "load-" + std::to_string(batch_no++);
        for (int k = 0; k < 1000 && written < o.records; ++k, ++written) {
            fproto::change_entry e;
            e.c.change_id = "c-" + std::to_string(written);
            e.c.collection = "members";
            e.c.id = "m-" + std::to_string(written);
            e.c.unit_id = cell_id(static_cast<int>(written % o.cells));
            e.c.data = {{"name", "Nguyễn Văn An " + std::to_string(written)}, {"cell", e.c.unit_id}, {"notes", filler}};
            cs.changes.push_back(std::move(e));
        }
        auto r = s.push(loader, std::move(cs));
        if (!r) throw std::runtime_error("load failed: " + r.err().message);
    }
    std::printf("built: %ld records in %d cells under %d communes in %.1f s\n", o.records, o.cells, o.communes,
                ms_since(t0) / 1000);
}

struct pull_figures {
    double initial_ms = 0;
    long initial_records = 0;
    int pages = 0;
    double incremental_ms = 0;
    long incremental_records = 0;
};

pull_figures measure(fsrv::store& s, const fsrv::device& dev, const fsrv::device& writer, const options& o,
                     int max_pages, long& counter) {
    const auto sc = fsrv::scope::of(dev);
    pull_figures f;
    std::vector<double> initial, incremental;
    std::int64_t cursor = 0;
    for (int r = 0; r < o.repeat; ++r) {
        cursor = 0;
        long n = 0;
        int pages = 0;
        const auto t0 = clock_type::now();
        for (;;) {
            auto page = s.pull(sc, cursor, o.page);
            if (!page) throw std::runtime_error(page.err().message);
            n += static_cast<long>(page->changes.size());
            cursor = page->last_seq;
            ++pages;
            if (!page->more || pages == max_pages) break;
        }
        initial.push_back(ms_since(t0));
        f.initial_records = n;
        f.pages = pages;
    }
    // From the end of the feed: the steady state of a device that syncs often.
    for (;;) {
        auto page = s.pull(sc, cursor, 5000);
        cursor = page->last_seq;
        if (!page->more) break;
    }
    for (int r = 0; r < o.repeat; ++r) {
        fproto::change_set cs;
        cs.batch_id = "inc-" + std::to_string(counter);
        fproto::change_entry e;
        e.c.change_id = "inc-" + std::to_string(counter);
        e.c.collection = "members";
        e.c.id = "inc-" + std::to_string(counter++);
        e.c.unit_id = cell_id(0);
        e.c.data = {{"name", "Trần Thị Lan"}, {"cell", cell_id(0)}};
        cs.changes.push_back(std::move(e));
        if (!s.push(writer, std::move(cs))) throw std::runtime_error("incremental write failed");
        const auto t0 = clock_type::now();
        auto page = s.pull(sc, cursor, o.page);
        incremental.push_back(ms_since(t0));
        if (!page) throw std::runtime_error(page.err().message);
        f.incremental_records = static_cast<long>(page->changes.size());
        cursor = page->last_seq;
    }
    f.initial_ms = median(initial);
    f.incremental_ms = median(incremental);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "fieldsync-scope-bench: " << a << " needs a value\n" << k_usage;
                std::exit(2);
            }
            return argv[++i];
        };
        try {
            if (a == "--db") o.db = next();
            else if (a == "--communes") o.communes = std::stoi(next());
            else if (a == "--cells") o.cells = std::stoi(next());
            else if (a == "--records") o.records = std::stol(next());
            else if (a == "--page") o.page = std::stol(next());
            else if (a == "--district-pages") o.district_pages = std::stoi(next());
            else if (a == "--repeat") o.repeat = std::stoi(next());
            else if (a == "--help" || a == "-h") {
                std::cout << k_usage;
                return 0;
            } else {
                std::cerr << "fieldsync-scope-bench: unknown option " << a << "\n" << k_usage;
                return 2;
            }
        } catch (const std::exception&) {
            std::cerr << "fieldsync-scope-bench: " << a << " needs a number\n" << k_usage;
            return 2;
        }
    }
    if (o.communes < 1 || o.cells < 1 || o.records < 1 || o.page < 1 || o.repeat < 1 || o.district_pages < 1) {
        std::cerr << "fieldsync-scope-bench: every count must be at least 1\n" << k_usage;
        return 2;
    }
    namespace fs = std::filesystem;
    const bool temporary = o.db.empty();
    if (temporary) o.db = (fs::temp_directory_path() / ("fieldsync-scope-bench-" + std::to_string(::getpid()) + ".db")).string();
    const bool fresh = !fs::exists(o.db);
    try {
        fsrv::store_options so;
        so.path = o.db;
        auto opened = fsrv::open_sqlite_store(so);
        if (!opened) throw std::runtime_error(opened.err().message);
        auto& s = **opened;
        if (fresh) build(s, o);
        const auto cell = must(s.add_device("bench cell", cell_id(0), fsrv::device_role::field));
        const auto district = must(s.add_device("bench district", "giong-trom", fsrv::device_role::admin));
        auto devices = s.devices();
        fsrv::device cell_now = cell, district_now = district;
        for (const auto& d : *devices) {
            if (d.id == cell.id) cell_now = d;
            if (d.id == district.id) district_now = d;
        }
        long counter = static_cast<long>(::getpid()) * 1000;
        const auto c = measure(s, cell_now, district_now, o, 1 << 30, counter);
        const auto d = measure(s, district_now, district_now, o, o.district_pages, counter);
        std::printf("store: %s (page %ld, median of %d)\n", o.db.c_str(), o.page, o.repeat);
        std::printf("%-10s %12s %10s %8s %14s %10s\n", "device", "initial ms", "records", "pages", "incremental ms",
                    "records");
        std::printf("%-10s %12.2f %10ld %8d %14.3f %10ld\n", "cell", c.initial_ms, c.initial_records, c.pages,
                    c.incremental_ms, c.incremental_records);
        std::printf("%-10s %12.2f %10ld %8d %14.3f %10ld\n", "district", d.initial_ms, d.initial_records, d.pages,
                    d.incremental_ms, d.incremental_records);
        std::printf("district initial is the first %d pages only; per record: cell %.4f ms, district %.4f ms\n",
                    o.district_pages, c.initial_ms / std::max(1L, c.initial_records),
                    d.initial_ms / std::max(1L, d.initial_records));
        s.close();
    } catch (const std::exception& e) {
        std::cerr << "fieldsync-scope-bench: " << e.what() << "\n";
        return 1;
    }
    if (temporary) {
        std::error_code ec;
        fs::remove(o.db, ec);
        fs::remove(o.db + "-wal", ec);
        fs::remove(o.db + "-shm", ec);
    }
    return 0;
}
