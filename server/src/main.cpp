// fieldsync-server: serves a central store over HTTP (server.hpp) until SIGINT or SIGTERM.

#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/version.hpp>
#include <fieldsync/protocol/tuning.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include "relay_hub.hpp"
#include "store/serve_lock.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

namespace {

namespace proto = fieldsync::protocol;
namespace fs = fieldsync::server;

constexpr int k_exit_usage = 2;
constexpr int k_exit_failure = 1;

constexpr const char* k_usage =
    "usage: fieldsync-server (--db PATH | --store sqlite:PATH | --store postgres:CONNINFO) [--create]\n"
    "                        --listen HOST:PORT [--tls-cert FILE --tls-key FILE]\n"
    "                        [--insecure-listen] [--schema FILE] [--threads N]\n"
    "                        [--min-client-protocol N] [--campaign-year YEAR]\n"
    "                        [--blobs DIR] [--max-blob-bytes N] [--blob-quota-bytes N]\n"
    "                        [--upstream URL (--upstream-token TOKEN | --upstream-token-file FILE)\n"
    "                         [--upstream-ca FILE] [--upstream-replica PATH] [--upstream-interval MS]]\n"
    "\n"
    "Serves the fieldsync sync protocol (protocol/SPEC.md) over HTTPS, or plain HTTP on a\n"
    "loopback address.\n"
    "  --db PATH          the SQLite store, made by `fieldsync-admin --db PATH init`; a missing\n"
    "                     store is refused (a mistyped path would serve an empty one). One\n"
    "                     server at a time serves a store: it holds PATH.server-lock\n"
    "  --store sqlite:PATH the same as --db PATH\n"
    "  --store postgres:CONNINFO\n"
    "                     the store in a PostgreSQL database (libpq's connection string,\n"
    "                     e.g. 'host=db1 dbname=fieldsync user=fieldsync'); its tables are made\n"
    "                     in an empty database. Several servers may serve one database\n"
    "  --create           create the store with the schema if it is missing\n"
    "  --listen HOST:PORT the IP address and port to listen on, e.g. 127.0.0.1:8080\n"
    "                     ([::1]:8080 for IPv6; port 0 picks a free one)\n"
    "  --tls-cert FILE    PEM certificate chain: the server's certificate, then any\n"
    "                     intermediates; with --tls-key every connection is TLS 1.2+\n"
    "  --tls-key FILE     PEM private key of that certificate\n"
    "  --insecure-listen  allow plain HTTP on a non-loopback address (tokens and records\n"
    "                     then cross the network unencrypted: only behind a TLS proxy)\n"
    "  --schema FILE      a schema document (JSON); default: the built-in schema\n"
    "  --threads N        I/O threads (default 4)\n"
    "  --min-client-protocol N\n"
    "                     clients of an older protocol may push but not pull (default 1;\n"
    "                     the oldest client schema is the schema's min_client_schema)\n"
    "  --campaign-year YEAR  the year reports are of when none is asked (default: the one\n"
    "                     set by `fieldsync-admin campaign-year`, else this year in Vietnam)\n"
    "  --blobs DIR        where attachments' bytes are kept (default: the --db path followed\n"
    "                     by .blobs; required with a PostgreSQL store)\n"
    "  --max-blob-bytes N the largest attachment (default 10485760, 10 MiB; at most 100 MiB)\n"
    "  --blob-quota-bytes N  what one device may upload per UTC day (default 524288000)\n"
    "  --upstream URL     run as a relay hub (ARCHITECTURE.md, \"Relay hub\"): devices' changes\n"
    "                     are forwarded to the server at URL (http://host:port) and answered\n"
    "                     \"queued\" until it answers; its records are mirrored here\n"
    "  --upstream-token TOKEN  the hub's device token at the upstream (bound to this\n"
    "                     commune's unit there)\n"
    "  --upstream-token-file FILE  the same token read from FILE's first line, so it is not\n"
    "                     on the command line for others to see in ps\n"
    "  --upstream-ca FILE an https upstream's certificate is verified against the CAs of this\n"
    "                     PEM file only (default: the system's CA store)\n"
    "  --upstream-replica PATH the upstream link's replica file (default: the --db path\n"
    "                     followed by .upstream)\n"
    "  --upstream-interval MS  how often to pull from the upstream when idle (default 10000)\n"
    "  --help             this text\n"
    "SIGINT or SIGTERM stops accepting, finishes the change-sets in flight, closes the store\n"
    "and exits 0.\n";

int usage_error(const std::string& message) {
    std::cerr << "fieldsync-server: " << message << "\n" << k_usage;
    return k_exit_usage;
}

struct arguments {
    std::string db;
    std::string postgres;  // --store postgres:CONNINFO
    bool create = false;
    std::string host;
    std::uint16_t port = 0;
    std::string schema_file;
    int threads = fs::tuning::default_threads;
    std::int64_t min_client_protocol = 1;
    std::optional<std::int64_t> campaign_year;
    std::string tls_cert;
    std::string tls_key;
    bool insecure_listen = false;
    std::string blobs;
    std::int64_t max_blob_bytes = fs::tuning::max_blob_bytes;
    std::int64_t blob_quota_bytes = fs::tuning::blob_quota_bytes;
    std::string upstream;
    std::string upstream_token;
    std::string upstream_token_file;
    std::string upstream_ca;
    std::string upstream_replica;
    long upstream_interval_ms = fs::tuning::hub_pull_interval.count();
};

// HOST:PORT with an IPv6 host in brackets.
bool parse_listen(const std::string& s, arguments& a) {
    std::string host, port;
    if (!s.empty() && s.front() == '[') {
        const auto close = s.find("]:");
        if (close == std::string::npos) return false;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        const auto colon = s.rfind(':');
        if (colon == std::string::npos) return false;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    const auto p = proto::parse_integer(port, 0, 65535);
    if (host.empty() || !p) return false;
    // The one name worth accepting without a resolver: everything else must be an address.
    if (host == "localhost") host = "127.0.0.1";
    a.host = host;
    a.port = static_cast<std::uint16_t>(*p);
    return true;
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Reads the command line into args; an exit code when the process should end now (--help,
// or a bad argument, already explained on stderr).
std::optional<int> parse_arguments(int argc, char** argv, arguments& args) {
    bool have_listen = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= argc) return std::nullopt;
            return std::string(argv[++i]);
        };
        if (arg == "--help" || arg == "-h") {
            std::cout << k_usage;
            return 0;
        } else if (arg == "--db") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--db needs a path");
            args.db = *v;
        } else if (arg == "--store") {
            auto v = value();
            if (v && v->starts_with("sqlite:") && v->size() > 7) {
                args.db = v->substr(7);
            } else if (v && v->starts_with("postgres:") && v->size() > 9) {
                args.postgres = v->substr(9);
            } else {
                return usage_error("--store needs sqlite:PATH or postgres:CONNINFO");
            }
        } else if (arg == "--create") {
            args.create = true;
        } else if (arg == "--listen") {
            auto v = value();
            if (!v || !parse_listen(*v, args)) return usage_error("--listen needs HOST:PORT, e.g. 127.0.0.1:8080");
            have_listen = true;
        } else if (arg == "--tls-cert") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--tls-cert needs a file");
            args.tls_cert = *v;
        } else if (arg == "--tls-key") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--tls-key needs a file");
            args.tls_key = *v;
        } else if (arg == "--insecure-listen") {
            args.insecure_listen = true;
        } else if (arg == "--schema") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--schema needs a file");
            args.schema_file = *v;
        } else if (arg == "--threads") {
            auto v = value();
            const auto n = v ? proto::parse_integer(*v, 1, 256) : std::nullopt;
            if (!n) return usage_error("--threads needs a number from 1 to 256");
            args.threads = static_cast<int>(*n);
        } else if (arg == "--min-client-protocol") {
            auto v = value();
            const auto n = v ? proto::parse_integer(*v, 1, proto::protocol_version) : std::nullopt;
            if (!n)
                return usage_error("--min-client-protocol needs a protocol from 1 to " +
                                   std::to_string(proto::protocol_version));
            args.min_client_protocol = *n;
        } else if (arg == "--campaign-year") {
            auto v = value();
            const auto n = v ? proto::parse_integer(*v, 1, 9999) : std::nullopt;
            if (!n) return usage_error("--campaign-year needs a year from 1 to 9999");
            args.campaign_year = *n;
        } else if (arg == "--blobs") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--blobs needs a folder");
            args.blobs = *v;
        } else if (arg == "--max-blob-bytes") {
            auto v = value();
            // A download is read into memory whole (or its range): 100 MiB bounds what one costs.
            const auto n = v ? proto::parse_integer(*v, 1, 100LL * 1024 * 1024) : std::nullopt;
            if (!n) return usage_error("--max-blob-bytes needs a size in bytes from 1 to 104857600 (100 MiB)");
            args.max_blob_bytes = *n;
        } else if (arg == "--blob-quota-bytes") {
            auto v = value();
            const auto n = v ? proto::parse_integer(*v, 1, std::int64_t{1} << 50) : std::nullopt;
            if (!n) return usage_error("--blob-quota-bytes needs a size in bytes");
            args.blob_quota_bytes = *n;
        } else if (arg == "--upstream") {
            auto v = value();
            if (!v || !(v->starts_with("http://") || v->starts_with("https://")) || v->size() < 10)
                return usage_error("--upstream needs a URL, e.g. http://10.0.0.1:8080");
            args.upstream = *v;
        } else if (arg == "--upstream-token") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--upstream-token needs the hub's device token");
            args.upstream_token = *v;
        } else if (arg == "--upstream-token-file") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--upstream-token-file needs a file");
            args.upstream_token_file = *v;
        } else if (arg == "--upstream-ca") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--upstream-ca needs a PEM file of CA certificates");
            args.upstream_ca = *v;
        } else if (arg == "--upstream-replica") {
            auto v = value();
            if (!v || v->empty()) return usage_error("--upstream-replica needs a path");
            args.upstream_replica = *v;
        } else if (arg == "--upstream-interval") {
            auto v = value();
            const auto n = v ? proto::parse_integer(*v, 100, 86'400'000) : std::nullopt;
            if (!n) return usage_error("--upstream-interval needs milliseconds from 100 to 86400000");
            args.upstream_interval_ms = *n;
        } else {
            return usage_error("unknown argument '" + arg + "'");
        }
    }
    if (args.db.empty() && args.postgres.empty()) return usage_error("--db or --store is required");
    if (!args.db.empty() && !args.postgres.empty()) return usage_error("one store: --db or --store, not both");
    if (!args.postgres.empty() && !args.upstream.empty() && args.upstream_replica.empty())
        return usage_error("a relay hub on PostgreSQL needs --upstream-replica PATH");
    if (!args.postgres.empty() && args.blobs.empty())
        return usage_error("a store on PostgreSQL needs --blobs DIR for attachments");
    if (!have_listen) return usage_error("--listen is required");
    return std::nullopt;
}

// The checks across arguments, and the files they name; an exit code when one fails.
std::optional<int> check_arguments(arguments& args) {
    if (!args.upstream_token.empty() && !args.upstream_token_file.empty())
        return usage_error("give --upstream-token or --upstream-token-file, not both");
    if (!args.upstream_token_file.empty()) {
        // The first line, without surrounding blanks (a file written by `echo` ends in \n).
        std::ifstream in(args.upstream_token_file);
        std::string line;
        if (!in || !std::getline(in, line)) return usage_error("cannot read a token from " + args.upstream_token_file);
        const auto first = line.find_first_not_of(" \t\r");
        const auto last = line.find_last_not_of(" \t\r");
        if (first == std::string::npos) return usage_error(args.upstream_token_file + " holds no token on its first line");
        args.upstream_token = line.substr(first, last - first + 1);
    }
    if (args.upstream.empty() != args.upstream_token.empty())
        return usage_error("--upstream and --upstream-token (or --upstream-token-file) go together");
    if (args.upstream.empty() && (!args.upstream_replica.empty() || !args.upstream_ca.empty()))
        return usage_error("--upstream-replica and --upstream-ca need --upstream");
    if (!args.upstream_ca.empty() && !std::ifstream(args.upstream_ca))
        return usage_error("cannot read the CA file " + args.upstream_ca);
    if (args.upstream_replica.empty() && !args.upstream.empty()) args.upstream_replica = args.db + ".upstream";
    if (args.tls_cert.empty() != args.tls_key.empty()) return usage_error("--tls-cert and --tls-key go together");
    if (args.tls_cert.empty() && !args.insecure_listen) {
        // Before the store is opened: a refused start leaves nothing behind.
        boost::system::error_code ec;
        const auto a = boost::asio::ip::make_address(args.host, ec);
        if (!ec && !a.is_loopback()) {
            std::cerr << "fieldsync-server: refusing to serve plain HTTP on " << args.host
                      << ", which is not a loopback address: device tokens and records would cross the network "
                         "unencrypted.\nGive --tls-cert FILE --tls-key FILE, or --insecure-listen if a TLS proxy "
                         "in front of this server encrypts the traffic.\n";
            return k_exit_usage;
        }
    }
    return std::nullopt;
}

// The --schema document, or the built-in schema (nullopt) when none is given.
std::optional<int> load_schema(const arguments& args, std::optional<proto::schema>& custom_schema) {
    if (args.schema_file.empty()) return std::nullopt;
    const auto text = read_file(args.schema_file);
    if (!text) return usage_error("cannot read the schema file '" + args.schema_file + "'");
    auto doc = proto::parse_json(*text, proto::tuning::max_json_depth);
    if (!doc) return usage_error("schema file '" + args.schema_file + "': " + doc.err().message);
    auto parsed = proto::schema::from_json(*doc);
    if (!parsed) return usage_error("schema file '" + args.schema_file + "': " + parsed.err().message);
    custom_schema = std::move(*parsed);
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    arguments args;
    if (const auto exit = parse_arguments(argc, argv, args)) return *exit;
    if (const auto exit = check_arguments(args)) return *exit;
    std::optional<proto::schema> custom_schema;
    if (const auto exit = load_schema(args, custom_schema)) return *exit;

    // Signals are waited for on a context of their own, on this thread, so that stopping the
    // server (which joins its I/O threads) never runs on one of those threads.
    boost::asio::io_context signal_ctx;
    boost::asio::signal_set signals(signal_ctx, SIGINT, SIGTERM);

    if (args.postgres.empty() && !args.create && !std::filesystem::exists(args.db)) {
        std::cerr << "fieldsync-server: no store at '" << args.db << "'; make one with: fieldsync-admin --db "
                  << args.db << " init (or start with --create)\n";
        return k_exit_usage;
    }
    // Held until exit (the kernel releases it however the process ends): a second server, or
    // `fieldsync-admin restore`, on this store is refused while this one serves it.
    // On PostgreSQL, many servers serve one database: no file lock.
    auto serving = args.postgres.empty() ? fs::lock_store(args.db) : decltype(fs::lock_store(args.db))(fs::serve_lock{});
    if (!serving) {
        std::cerr << "fieldsync-server: cannot serve: " << serving.err().message << " (another server?)\n";
        return k_exit_failure;
    }

    fs::store_options so;
    so.path = args.postgres.empty() ? args.db : args.postgres;
    so.schema = custom_schema ? &*custom_schema : nullptr;
    so.relay = !args.upstream.empty();
    auto st = args.postgres.empty() ? fs::open_sqlite_store(so) : fs::open_postgres_store(so);
    if (!st) {
        std::cerr << "fieldsync-server: cannot open the store '"
                  << (args.postgres.empty() ? args.db : "postgres:(the connection string)") << "': " << st.err().message
                  << "\n";
        return k_exit_failure;
    }
    (*st)->override_campaign_year(args.campaign_year);

    fs::server_options opts;
    opts.host = args.host;
    opts.port = args.port;
    opts.threads = args.threads;
    opts.min_client_protocol = args.min_client_protocol;
    opts.tls_cert_file = args.tls_cert;
    opts.tls_key_file = args.tls_key;
    opts.insecure_listen = args.insecure_listen;
    {
        const auto dir = args.blobs.empty() ? fs::default_blob_dir(args.db) : args.blobs;
        auto blobs = fs::open_blob_dir(dir);
        if (!blobs) {
            (*st)->close();
            std::cerr << "fieldsync-server: " << blobs.err().message << "\n";
            return k_exit_failure;
        }
        opts.blobs = std::move(*blobs);
        opts.max_blob_bytes = args.max_blob_bytes;
        opts.blob_quota_bytes = args.blob_quota_bytes;
    }
    std::unique_ptr<fs::relay_hub> hub;
    if (!args.upstream.empty()) {
        fs::hub_options ho;
        ho.upstream_url = args.upstream;
        ho.upstream_token = args.upstream_token;
        ho.replica_path = args.upstream_replica;
        ho.upstream_ca_file = args.upstream_ca;
        ho.pull_interval = std::chrono::milliseconds(args.upstream_interval_ms);
        auto h = fs::relay_hub::open(ho, **st);
        if (!h) {
            (*st)->close();
            std::cerr << "fieldsync-server: " << h.err().message << "\n";
            return k_exit_failure;
        }
        hub = std::move(*h);
    }
    fs::server srv(opts, **st);
    const auto port = srv.start();
    if (!port) {
        (*st)->close();
        // An unparsable address is a bad argument; an address that cannot be bound is not.
        if (port.err().code == proto::errc::bad_request) return usage_error(port.err().message);
        std::cerr << "fieldsync-server: " << port.err().message << "\n";
        return k_exit_failure;
    }
    const bool v6 = args.host.find(':') != std::string::npos;
    std::cout << "fieldsync-server listening on " << (v6 ? "[" : "") << args.host << (v6 ? "]" : "") << ":" << *port
              << (args.tls_cert.empty() ? "" : " (TLS)") << std::endl;
    if (hub) {
        hub->start();
        std::cerr << "fieldsync-server: relay hub, upstream " << args.upstream << " (link replica "
                  << args.upstream_replica << ")\n";
    }

    int received = 0;
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (!ec) received = sig;
    });
    signal_ctx.run();

    std::cerr << "fieldsync-server: " << (received == SIGTERM ? "SIGTERM" : "SIGINT")
              << ", finishing requests in flight\n";
    // The hub first: its rounds write to the store, which must stay open until they end.
    if (hub) hub->stop();
    srv.stop();
    (*st)->close();
    std::cerr << "fieldsync-server: stopped\n";
    return 0;
}
