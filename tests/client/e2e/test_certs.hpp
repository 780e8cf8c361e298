#pragma once
// Test certificates made at test time with libcrypto: a certificate authority and server
// certificates it signs (ECDSA P-256, SHA-256), written as PEM files. Nothing is checked in,
// so no test certificate can expire in the repository or be mistaken for a real one.

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>

namespace fieldsync::test {

struct pem_files {
    std::string cert;  // the certificate (a server's: followed by nothing, it is signed by the CA directly)
    std::string key;   // its private key
};

class test_ca {
public:
    /// A CA named `name` (UTF-8), valid from an hour ago for a year; its files under `dir`.
    test_ca(const std::string& dir, const std::string& name) : dir_(dir) {
        key_.reset(EVP_EC_gen("P-256"));
        REQUIRE(key_);
        cert_.reset(X509_new());
        REQUIRE(cert_);
        fill(cert_.get(), key_.get(), name, 1, -3600, 365L * 86400);
        REQUIRE(X509_set_issuer_name(cert_.get(), X509_get_subject_name(cert_.get())) == 1);
        add_ext(cert_.get(), cert_.get(), NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert_.get(), cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(cert_.get(), cert_.get(), NID_subject_key_identifier, "hash");
        add_ext(cert_.get(), cert_.get(), NID_authority_key_identifier, "keyid:always");
        REQUIRE(X509_sign(cert_.get(), key_.get(), EVP_sha256()) > 0);
        files_ = write(name_file("ca"), cert_.get(), key_.get());
    }

    /// The CA's certificate: the file a client trusts.
    const std::string& cert_file() const { return files_.cert; }

    /// A server certificate for `san` ("DNS:localhost,IP:127.0.0.1"), valid from `not_before`
    /// to `not_after` seconds from now, signed by this CA.
    pem_files issue(const std::string& file_stem, const std::string& san, long not_before = -3600,
                    long not_after = 30L * 86400) {
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
        REQUIRE(key);
        std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
        REQUIRE(cert);
        fill(cert.get(), key.get(), "fieldsync test server", ++serial_, not_before, not_after);
        REQUIRE(X509_set_issuer_name(cert.get(), X509_get_subject_name(cert_.get())) == 1);
        add_ext(cert_.get(), cert.get(), NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert_.get(), cert.get(), NID_key_usage, "critical,digitalSignature");
        add_ext(cert_.get(), cert.get(), NID_ext_key_usage, "serverAuth");
        add_ext(cert_.get(), cert.get(), NID_subject_alt_name, san.c_str());
        add_ext(cert_.get(), cert.get(), NID_authority_key_identifier, "keyid:always");
        REQUIRE(X509_sign(cert.get(), key_.get(), EVP_sha256()) > 0);
        return write(name_file(file_stem), cert.get(), key.get());
    }

private:
    struct pkey_free {
        void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
    };
    struct x509_free {
        void operator()(X509* x) const { X509_free(x); }
    };

    std::string name_file(const std::string& stem) const { return dir_ + "/" + stem; }

    static void fill(X509* x, EVP_PKEY* key, const std::string& cn, long serial, long not_before, long not_after) {
        REQUIRE(X509_set_version(x, 2) == 1);  // v3
        REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1);
        REQUIRE(X509_gmtime_adj(X509_getm_notBefore(x), not_before));
        REQUIRE(X509_gmtime_adj(X509_getm_notAfter(x), not_after));
        REQUIRE(X509_set_pubkey(x, key) == 1);
        X509_NAME* name = X509_get_subject_name(x);
        REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                           reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) == 1);
    }

    static void add_ext(X509* issuer, X509* subject, int nid, const char* value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, subject, nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        REQUIRE(ext);
        const int added = X509_add_ext(subject, ext, -1);
        X509_EXTENSION_free(ext);
        REQUIRE(added == 1);
    }

    static pem_files write(const std::string& stem, X509* cert, EVP_PKEY* key) {
        pem_files out{stem + ".crt", stem + ".key"};
        FILE* c = std::fopen(out.cert.c_str(), "wb");
        REQUIRE(c);
        const int wc = PEM_write_X509(c, cert);
        std::fclose(c);
        FILE* k = std::fopen(out.key.c_str(), "wb");
        REQUIRE(k);
        const int wk = PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(k);
        REQUIRE(wc == 1);
        REQUIRE(wk == 1);
        return out;
    }

    std::string dir_;
    std::unique_ptr<EVP_PKEY, pkey_free> key_;
    std::unique_ptr<X509, x509_free> cert_;
    pem_files files_;
    long serial_ = 1;
};

}  // namespace fieldsync::test
