#include "filters/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace gw {
namespace tls {
namespace {

// Never prompts for a passphrase (OpenSSL's default would read the
// terminal): an encrypted key fails to load with a clear error instead.
int noPassphrase(char*, int, int, void*) { return 0; }

// Server ALPN choice: the first of the config's protocols the client offers
// (server preference). No overlap: continue without ALPN (lenient, so a
// client offering only protocols we do not list still connects).
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  const auto* wire = static_cast<const std::string*>(arg);
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned int>(wire->size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

std::string octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

}  // namespace

std::string takeOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* r = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += r != nullptr ? r : ("error " + std::to_string(e));
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

SslCtxPtr buildTlsContext(const TlsContextOptions& o, ParseContext& ctx) {
  ERR_clear_error();
  // The key's permissions first: refuse before reading it.
  struct stat st;
  if (::stat(o.private_key_file.c_str(), &st) != 0) {
    ctx.fail("/private_key_file", "cannot read \"" + o.private_key_file + "\": " + std::strerror(errno));
    return nullptr;
  }
  if ((st.st_mode & 0006) != 0) {
    ctx.fail("/private_key_file",
             "private key file \"" + o.private_key_file + "\" is readable or writable by everyone "
             "(mode " + octal(st.st_mode) + "); refusing it: chmod o-rwx it (0600, or 0440/0640 "
             "with a group the gateway is in, such as a Kubernetes secret's fsGroup)");
    return nullptr;
  }

  SslCtxPtr c(SSL_CTX_new(TLS_server_method()));
  if (!c) {
    ctx.fail("", "cannot create a TLS context: " + takeOpenSslErrors());
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(c.get(), o.min_version);
  SSL_CTX_set_max_proto_version(c.get(), TLS1_3_VERSION);
  SSL_CTX_set_options(c.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                   SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(c.get(), 1);
  SSL_CTX_set_session_cache_mode(c.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_default_passwd_cb(c.get(), noPassphrase);

  bool ok = true;
  if (std::FILE* f = std::fopen(o.cert_chain_file.c_str(), "r")) {
    std::fclose(f);
    if (SSL_CTX_use_certificate_chain_file(c.get(), o.cert_chain_file.c_str()) != 1) {
      ctx.fail("/cert_chain_file", "cannot load a PEM certificate chain from \"" +
                                       o.cert_chain_file + "\": " + takeOpenSslErrors());
      ok = false;
    }
  } else {
    ctx.fail("/cert_chain_file",
             "cannot read \"" + o.cert_chain_file + "\": " + std::strerror(errno));
    ok = false;
  }
  if (SSL_CTX_use_PrivateKey_file(c.get(), o.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      ctx.fail("/private_key_file", "the key in \"" + o.private_key_file +
                                        "\" does not match the certificate in \"" +
                                        o.cert_chain_file + "\" (/cert_chain_file)");
      return nullptr;
    }
    ctx.fail("/private_key_file", "cannot load a PEM private key from \"" + o.private_key_file +
                                      "\" (an unencrypted key is needed): " + takeOpenSslErrors());
    ok = false;
  }
  if (ok && SSL_CTX_check_private_key(c.get()) != 1) {
    ERR_clear_error();
    ctx.fail("/private_key_file", "the key in \"" + o.private_key_file +
                                      "\" does not match the certificate in \"" +
                                      o.cert_chain_file + "\" (/cert_chain_file)");
    ok = false;
  }
  if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(c.get(), o.ciphers.c_str()) != 1) {
    ctx.fail("/ciphers", "no usable TLS 1.2 cipher in \"" + o.ciphers + "\": " + takeOpenSslErrors());
    ok = false;
  }
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(c.get(), o.ciphersuites.c_str()) != 1) {
    ctx.fail("/ciphersuites",
             "no usable TLS 1.3 cipher suite in \"" + o.ciphersuites + "\": " + takeOpenSslErrors());
    ok = false;
  }
  if (o.alpn_wire != nullptr && !o.alpn_wire->empty())
    SSL_CTX_set_alpn_select_cb(c.get(), selectAlpn, const_cast<std::string*>(o.alpn_wire));
  ERR_clear_error();
  if (!ok) return nullptr;
  return c;
}

std::string describeCertificate(SSL_CTX* c) {
  X509* x = SSL_CTX_get0_certificate(c);
  if (x == nullptr) return "";
  std::string out;
  char name[256];
  X509_NAME_oneline(X509_get_subject_name(x), name, sizeof name);
  out = std::string("subject ") + name;
  BIO* b = BIO_new(BIO_s_mem());
  if (b != nullptr) {
    if (ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
      char* p = nullptr;
      long n = BIO_get_mem_data(b, &p);
      out += ", expires " + std::string(p, static_cast<size_t>(n));
    }
    BIO_free(b);
  }
  return out;
}

}  // namespace tls
}  // namespace gw
