#include "test/filters/tls/tls_test_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace gw {
namespace test {
namespace {

[[noreturn]] void die(const std::string& what) {
  unsigned long e = ERR_get_error();
  std::fprintf(stderr, "tls_test_support: %s: %s\n", what.c_str(),
               e != 0 ? ERR_reason_error_string(e) : "");
  std::abort();
}

std::string sslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

using Clock = std::chrono::steady_clock;

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool waitFd(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, msLeft(deadline)) > 0;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/tlsXXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TestCert makeTestCert(const std::string& dir, const std::string& name, const std::string& cn,
                      mode_t key_mode) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) die("EVP_EC_gen");
  X509* x = X509_new();
  X509_set_version(x, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++ + static_cast<long>(::getpid()) * 1000);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, n);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair<int, const char*>{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                            {NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) die("extension");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x, key, EVP_sha256()) == 0) die("X509_sign");

  TestCert out;
  out.cert_file = dir + "/" + name + ".crt";
  out.key_file = dir + "/" + name + ".key";
  out.subject_cn = cn;
  std::FILE* f = std::fopen(out.cert_file.c_str(), "w");
  if (f == nullptr || PEM_write_X509(f, x) != 1) die("write " + out.cert_file);
  std::fclose(f);
  int fd = ::open(out.key_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) die("open " + out.key_file);
  f = ::fdopen(fd, "w");
  if (f == nullptr || PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    die("write " + out.key_file);
  std::fclose(f);
  ::chmod(out.key_file.c_str(), key_mode);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

SSL_CTX* newClientContext(const TlsClientOptions& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, o.min_version);
  SSL_CTX_set_max_proto_version(ctx, o.max_version);
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str()) != 1)
    die("ciphersuites " + o.ciphersuites);
  if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1)
      die("load CA " + o.ca_file);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!o.alpn.empty()) {
    std::string wire(1, static_cast<char>(o.alpn.size()));
    wire += o.alpn;
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }
  return ctx;
}

static void setHost(SSL* ssl, const TlsClientOptions& o) {
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (!o.ca_file.empty()) SSL_set1_host(ssl, "localhost");
}

MemoryTlsClient::MemoryTlsClient(const TlsClientOptions& o) {
  ctx_ = newClientContext(o);
  ssl_ = SSL_new(ctx_);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  setHost(ssl_, o);
}

MemoryTlsClient::~MemoryTlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
}

int MemoryTlsClient::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return 1;
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return 0;
  error_ = "SSL error " + std::to_string(e) + ": " + sslErrors();
  return -1;
}

std::string MemoryTlsClient::takeOutgoing() {
  std::string out;
  char buf[4096];
  int n;
  while ((n = BIO_read(wbio_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

void MemoryTlsClient::putIncoming(const std::string& bytes) {
  if (!bytes.empty()) BIO_write(rbio_, bytes.data(), static_cast<int>(bytes.size()));
}

void MemoryTlsClient::write(const std::string& plain) {
  if (SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())) != static_cast<int>(plain.size()))
    die("SSL_write");
}

std::string MemoryTlsClient::read() {
  std::string out;
  char buf[4096];
  int n;
  while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ERR_clear_error();
  return out;
}

void MemoryTlsClient::shutdown() { SSL_shutdown(ssl_); }

bool MemoryTlsClient::established() const { return SSL_is_init_finished(ssl_) == 1; }

SocketTlsClient::SocketTlsClient(const TlsClientOptions& o) {
  ctx_ = newClientContext(o);
  ssl_ = SSL_new(ctx_);
  setHost(ssl_, o);
}

SocketTlsClient::~SocketTlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

bool SocketTlsClient::connect(uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    error_ = "connect failed";
    return false;
  }
  SSL_set_fd(ssl_, fd_);
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(ssl_);
    if (r == 1) return true;
    int e = SSL_get_error(ssl_, r);
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (ev == 0) {
      error_ = "handshake failed (SSL error " + std::to_string(e) + "): " + sslErrors();
      long v = SSL_get_verify_result(ssl_);
      if (v != X509_V_OK) error_ += std::string(" [verify: ") + X509_verify_cert_error_string(v) + "]";
      return false;
    }
    if (!waitFd(fd_, ev, deadline)) {
      error_ = "handshake timed out";
      return false;
    }
  }
}

bool SocketTlsClient::sendAll(const std::string& plain) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  size_t off = 0;
  while (off < plain.size()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, plain.data() + off, static_cast<int>(plain.size() - off));
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (ev == 0 || !waitFd(fd_, ev, deadline)) {
      error_ = "write failed: " + sslErrors();
      return false;
    }
  }
  return true;
}

bool SocketTlsClient::recvExact(size_t n, std::chrono::milliseconds timeout, std::string* out) {
  auto deadline = Clock::now() + timeout;
  out->clear();
  char buf[16384];
  while (out->size() < n) {
    ERR_clear_error();
    int r = SSL_read(ssl_, buf, static_cast<int>(std::min(sizeof buf, n - out->size())));
    if (r > 0) {
      out->append(buf, static_cast<size_t>(r));
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (ev == 0) {
      error_ = "read failed (SSL error " + std::to_string(e) + "): " + sslErrors();
      return false;
    }
    if (!waitFd(fd_, ev, deadline)) {
      error_ = "read timed out";
      return false;
    }
  }
  return true;
}

bool SocketTlsClient::waitClosed(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    ERR_clear_error();
    int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) continue;
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) {
      if (!waitFd(fd_, POLLIN, deadline)) return false;
      continue;
    }
    clean_close_ = e == SSL_ERROR_ZERO_RETURN;
    return true;  // close_notify, EOF, reset or error
  }
}

std::string SocketTlsClient::peerCn() const {
  X509* x = SSL_get1_peer_certificate(ssl_);
  if (x == nullptr) return "";
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
  X509_free(x);
  return cn;
}

std::string SocketTlsClient::version() const { return SSL_get_version(ssl_); }
std::string SocketTlsClient::cipher() const { return SSL_get_cipher_name(ssl_); }

}  // namespace test
}  // namespace gw
