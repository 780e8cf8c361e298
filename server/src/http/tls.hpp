#pragma once
// The server's TLS configuration (ARCHITECTURE.md, "Hardened access"): one OpenSSL context
// made from the PEM files of server_options, shared by every TLS session. Only a forward
// declaration here, so the OpenSSL headers stay in the files that need them (tls.cpp,
// session.cpp).
//
// Thread safety: the context is built once before the listener starts and only read after.

#include <fieldsync/protocol/error.hpp>

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace fieldsync::server::detail {

/// A TLS 1.2+ server context with forward-secret AEAD ciphers, the certificate chain of
/// `cert_file` (the server's certificate first, then any intermediates) and the private key of
/// `key_file`. Errors: bad_request naming the file and OpenSSL's reason (unreadable, not PEM,
/// the key does not match the certificate).
protocol::expected<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const std::string& cert_file,
                                                                                const std::string& key_file);

/// True for addresses only this machine can reach: 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
/// Plain HTTP is served only on those unless server_options::insecure_listen says otherwise.
bool is_loopback_host(const std::string& host);

}  // namespace fieldsync::server::detail
