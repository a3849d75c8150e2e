// filters/tls/tls_context.h — the shared SSL_CTX of one config generation.
//
// Defines TlsContextOptions (what the config says about certificates and
// protocol), SslCtxPtr, buildTlsContext() (loads and checks the files, builds
// the SSL_CTX, reports every problem with the JSON pointer of the field that
// caused it) and describeCertificate() (the loaded leaf's subject and expiry,
// for GET /config).
//
// State: the SSL_CTX is built once per config generation, on the main thread
// while the config is parsed (so a SIGHUP reload re-reads the certificate
// and key), then shared read-only by every worker: SSL_new() on it is
// thread-safe. Connections hold their generation's config, so a reload never
// changes the certificate of a connection that already exists.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "core/sdk/parse_context.h"

namespace gw {
namespace tls {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

struct TlsContextOptions {
  std::string cert_chain_file;   // PEM: the leaf first, then intermediates
  std::string private_key_file;  // PEM, unencrypted; not readable by everyone
  int min_version = TLS1_2_VERSION;  // TLS1_2_VERSION or TLS1_3_VERSION
  std::string ciphers;           // TLS 1.2 cipher list ("" = OpenSSL's default)
  std::string ciphersuites;      // TLS 1.3 suites ("" = OpenSSL's default)
  // ALPN protocols in wire format (length-prefixed), "" for none. Must live
  // as long as the SSL_CTX (the select callback reads it).
  const std::string* alpn_wire = nullptr;
};

// Checks the private key file's permissions (mode & 0006: refused; group
// bits are fine), then builds a TLS 1.2+ server SSL_CTX: certificate chain,
// key (checked against the certificate), ciphers, ALPN, no renegotiation,
// no compression, buffers released while idle, no server-side session cache
// (stateless tickets only: no lock shared by workers). Records errors in
// `ctx` at "/cert_chain_file", "/private_key_file", "/ciphers" or
// "/ciphersuites", and returns nullptr then.
SslCtxPtr buildTlsContext(const TlsContextOptions& options, ParseContext& ctx);

// The leaf certificate of `ctx`: "subject CN=..., expires 2026-01-01 00:00:00 GMT".
std::string describeCertificate(SSL_CTX* ctx);

// The OpenSSL error queue of this thread as "reason; reason" (emptied).
std::string takeOpenSslErrors();

}  // namespace tls
}  // namespace gw
