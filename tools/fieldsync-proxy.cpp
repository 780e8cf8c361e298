// fieldsync-proxy: a bad mobile link between a client and a server, by hand.
//
//   fieldsync-proxy --target 127.0.0.1:8080 [--listen 127.0.0.1:0] [--kbit 64] [--latency-ms 600]
//                   [--stall 0.01:2000] [--reset-s 20] [--reset-bytes N] [--truncate 0.1:65536]
//                   [--seed N] [--quiet]
//
// Prints the listening URL and the seed, then one line per fault; Ctrl-C stops it. The same
// seed with the same traffic gives the same faults (tools/proxy/fault_proxy.hpp).

#include "proxy/fault_proxy.hpp"

#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

void usage() {
    std::cerr << "usage: fieldsync-proxy --target HOST:PORT [--listen HOST:PORT] [--kbit KBIT_PER_S]\n"
                 "         [--bytes-per-s N] [--latency-ms MS] [--stall PROB:MAX_MS] [--reset-s S]\n"
                 "         [--reset-bytes N] [--truncate PROB:WITHIN_BYTES] [--seed N] [--quiet]\n";
    std::exit(2);
}

std::pair<std::string, std::uint16_t> host_port(const std::string& s) {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) usage();
    return {s.substr(0, colon), static_cast<std::uint16_t>(std::stoul(s.substr(colon + 1)))};
}

std::pair<double, std::uint64_t> prob_and(const std::string& s) {
    const auto colon = s.find(':');
    if (colon == std::string::npos) usage();
    return {std::stod(s.substr(0, colon)), std::stoull(s.substr(colon + 1))};
}

}  // namespace

int main(int argc, char** argv) {
    fieldsync::tools::fault_options o;
    bool quiet = false;
    bool have_target = false;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) usage();
                return argv[++i];
            };
            if (a == "--target") {
                std::tie(o.target_host, o.target_port) = host_port(next());
                have_target = true;
            } else if (a == "--listen") {
                std::tie(o.listen_host, o.listen_port) = host_port(next());
            } else if (a == "--kbit") {
                o.bytes_per_second = static_cast<std::uint64_t>(std::stod(next()) * 1000 / 8);
            } else if (a == "--bytes-per-s") {
                o.bytes_per_second = std::stoull(next());
            } else if (a == "--latency-ms") {
                o.latency = std::chrono::milliseconds(std::stoll(next()));
            } else if (a == "--stall") {
                const auto [p, ms] = prob_and(next());
                o.stall_probability = p;
                o.stall_max = std::chrono::milliseconds(ms);
            } else if (a == "--reset-s") {
                o.reset_after = std::chrono::milliseconds(static_cast<std::int64_t>(std::stod(next()) * 1000));
            } else if (a == "--reset-bytes") {
                o.reset_after_bytes = std::stoull(next());
            } else if (a == "--truncate") {
                const auto [p, within] = prob_and(next());
                o.truncate_probability = p;
                o.truncate_within = within;
            } else if (a == "--seed") {
                o.seed = std::stoull(next());
            } else if (a == "--quiet") {
                quiet = true;
            } else {
                usage();
            }
        }
    } catch (const std::exception&) {
        usage();
    }
    if (!have_target) usage();
    // Blocked before any thread starts, so every thread inherits the mask and sigwait sees them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    try {
        fieldsync::tools::fault_proxy proxy(o);
        if (!quiet) proxy.on_event([](const std::string& line) { std::cout << line << std::endl; });
        std::cout << "fieldsync-proxy: " << proxy.url() << " -> " << o.target_host << ":" << o.target_port
                  << " seed " << proxy.seed() << " (replay with --seed " << proxy.seed() << ")" << std::endl;
        // The proxy serves on its own thread; this one waits for SIGINT/SIGTERM synchronously,
        // so nothing runs inside a signal handler.
        proxy.start();
        int sig = 0;
        sigwait(&signals, &sig);
        proxy.stop();
        const auto s = proxy.stats();
        std::cout << "fieldsync-proxy: " << s.connections << " connections, " << s.bytes_up << " bytes up, "
                  << s.bytes_down << " bytes down, " << s.resets << " resets, " << s.truncations << " truncations, "
                  << s.stalls << " stalls" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "fieldsync-proxy: " << e.what() << "\n";
        return 1;
    }
}
