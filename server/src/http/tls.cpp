#include "http/tls.hpp"

#include <fieldsync/server/tuning.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include <openssl/ssl.h>

namespace fieldsync::server::detail {

namespace ssl = boost::asio::ssl;
namespace proto = fieldsync::protocol;
using proto::errc;

proto::expected<std::shared_ptr<ssl::context>> make_tls_context(const std::string& cert_file,
                                                                const std::string& key_file) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    // TLS 1.0 and 1.1 are deprecated (RFC 8996); every phone OS of the last decade speaks 1.2.
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(native, tuning::tls12_ciphers) != 1)
        return proto::error{errc::internal, "TLS: OpenSSL refused the protocol or cipher settings"};
    // No renegotiation (a cheap way to make the server do handshakes), no session tickets
    // whose key would live as long as the process; compression is off in OpenSSL 3 already.
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);

    boost::system::error_code ec;
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec)
        return proto::error{errc::bad_request, "TLS: cannot load the certificate chain '" + cert_file + "': " + ec.message()};
    ctx->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) return proto::error{errc::bad_request, "TLS: cannot load the private key '" + key_file + "': " + ec.message()};
    if (SSL_CTX_check_private_key(native) != 1)
        return proto::error{errc::bad_request,
                            "TLS: the private key '" + key_file + "' does not match the certificate '" + cert_file + "'"};
    return ctx;
}

bool is_loopback_host(const std::string& host) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(host, ec);
    if (ec) return false;
    if (a.is_loopback()) return true;
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback();
    return false;
}

}  // namespace fieldsync::server::detail
