#pragma once
// How a replica talks HTTP. The sync engine builds requests and reads responses; a transport
// only moves bytes. The default transport (make_http_transport) is a keep-alive HTTP/1.1
// client on Beast; apps with their own stack (proxies, certificate pinning, background
// transfer on phones) implement `transport` themselves, or use the C ABI's callback.
//
// Contract for implementations:
// - send() performs one exchange and returns the response whatever its status (a 503 is a
//   response, not an error). It returns an error only when no complete response arrived:
//   errc::network (could not connect, connection lost) or errc::timeout; errc::tls when the
//   server's certificate is not trusted or the TLS handshake is refused.
// - send() must not throw. It is called from the thread that runs replica::sync(), and from
//   those running replica::upload() and download(), which may run at the same time as a
//   sync: a transport given to a replica (transport_override) must be thread-safe. The
//   default transport gives each of them a connection of its own. Blob bodies are binary
//   (request and response), of up to tuning::blob_chunk_bytes.

#include <fieldsync/client/errc.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fieldsync::client {

struct http_request {
    std::string method;                                        // "POST"
    std::string url;                                           // absolute: https://host:port/v1/sync
    std::vector<std::pair<std::string, std::string>> headers;  // Authorization, Content-Type, ...
    std::string body;
};

struct http_response {
    int status = 0;
    std::string body;           // decoded: a transport that negotiated gzip hands it inflated
    std::string content_type;   // the Content-Type field; empty when the transport does not say
                                // (the sync engine then tells JSON from CBOR by the first byte)
};

/// Options of the default transport.
struct http_transport_options {
    /// Compress request bodies (Content-Encoding: gzip, above tuning::gzip_min_bytes) and ask
    /// for gzip answers (Accept-Encoding: gzip), inflated under tuning::max_response_bytes.
    /// Off only to measure or to talk to a server that does not read gzip.
    bool gzip = true;
    /// For https:// URLs: a PEM file of the certificate authorities to trust (the only ones
    /// then), e.g. a district's own CA. Empty: the system's store (/etc/ssl/certs). The
    /// server's certificate must chain to one of them and name the URL's host (DNS name or IP
    /// address); otherwise sync fails with errc::tls. An unreadable file: invalid_argument.
    std::string ca_file;
};

class transport {
public:
    virtual ~transport() = default;
    virtual result<http_response> send(const http_request& request, std::chrono::milliseconds timeout) = 0;
};

/// True if this build has the default HTTP transport (false in the embedded build).
bool has_http_transport() noexcept;

/// The default transport: HTTP/1.1 over TCP with keep-alive (one connection reused across the
/// requests of a sync, reopened after an error). "http://" URLs, and "https://" over TLS 1.2+
/// with the server's certificate and host name verified (SNI sent for DNS names). A failed
/// verification or TLS handshake is errc::tls (permanent: a retry meets the same certificate).
/// In the embedded build it returns nullptr.
/// The returned object is not thread-safe: give each replica its own.
std::unique_ptr<transport> make_http_transport();
std::unique_ptr<transport> make_http_transport(const http_transport_options& options);

}  // namespace fieldsync::client
