#pragma once
// A minimal blocking HTTP/1.1 client over a POSIX socket, for a server that may die at any
// moment: one request per connection ("Connection: close"), every wait bounded, and any
// failure (refused, reset, cut mid-answer, timeout) reported as status 0, never thrown.
// Thread-safe: no shared state.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace fieldsync::crash {

struct reply {
    int status = 0;     // 0: no complete answer
    std::string body;
};

inline reply http(std::uint16_t port, const std::string& method, const std::string& target,
                  const std::string& token, const std::string& body, int timeout_ms = 20'000,
                  const std::string& extra_headers = "") {
    reply r;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return r;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return r;
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (method == "POST") req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (method == "PUT") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += extra_headers;  // whole lines, each ending in CRLF
    req += "\r\n" + body;
    for (std::size_t off = 0; off < req.size();) {
        const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            ::close(fd);
            return r;
        }
        off += static_cast<std::size_t>(n);
    }
    std::string in;
    char buf[16384];
    while (true) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            ::close(fd);
            return r;  // reset or timeout: no answer
        }
        in.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    // Status line, headers, and a body that must be whole (Content-Length).
    const auto head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos || in.compare(0, 9, "HTTP/1.1 ") != 0) return r;
    const int status = std::atoi(in.c_str() + 9);
    std::string lower = in.substr(0, head_end);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto cl = lower.find("\r\ncontent-length:");
    std::string b = in.substr(head_end + 4);
    if (cl != std::string::npos) {
        const auto len = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
        if (b.size() < len) return r;  // cut mid-answer
        b.resize(len);
    }
    r.status = status;
    r.body = std::move(b);
    return r;
}

}  // namespace fieldsync::crash
