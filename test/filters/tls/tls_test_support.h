// test/filters/tls/tls_test_support.h — certificates and TLS clients for tests.
//
// Defines makeTestCert() (a fresh self-signed EC P-256 certificate and key,
// written to files at test time: no key is ever committed), TempDir,
// MemoryTlsClient (an OpenSSL client over memory BIOs, for driving an
// EmbeddedChain byte by byte) and SocketTlsClient (a blocking OpenSSL client
// over a real loopback socket, for the integration tests and tools).
// Every client trusts exactly the CA file it is given (a self-signed
// certificate is its own CA) and checks the host name "localhost".
#pragma once

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace gw {
namespace test {

// A directory under $TEST_TMPDIR (or /tmp), removed with its files on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct TestCert {
  std::string cert_file;  // PEM certificate (also the CA file clients trust)
  std::string key_file;   // PEM private key, mode `key_mode`
  std::string subject_cn;
};

// Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (key mode `key_mode`): a
// self-signed certificate for CN=`cn`, subjectAltName DNS:localhost,
// IP:127.0.0.1, valid for a day. Aborts the test process on failure.
TestCert makeTestCert(const std::string& dir, const std::string& name, const std::string& cn,
                      mode_t key_mode = 0600);

struct TlsClientOptions {
  std::string ca_file;            // trust exactly this; "" = verify nothing
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string ciphersuites;       // TLS 1.3 suites ("" = default)
  std::string alpn;               // one protocol to offer, or ""
};

// A TLS client over two memory BIOs: the test moves bytes between it and
// the server by hand.
class MemoryTlsClient {
 public:
  explicit MemoryTlsClient(const TlsClientOptions& options = {});
  ~MemoryTlsClient();
  MemoryTlsClient(const MemoryTlsClient&) = delete;
  MemoryTlsClient& operator=(const MemoryTlsClient&) = delete;

  // Advances the handshake. Returns 1 when done, 0 when it needs bytes from
  // the server, -1 on failure (error() says why).
  int handshake();
  // Bytes the client wants to send (drained).
  std::string takeOutgoing();
  // Bytes from the server.
  void putIncoming(const std::string& bytes);
  // Encrypts `plain` (the records are then in takeOutgoing()).
  void write(const std::string& plain);
  // Decrypts whatever complete records arrived.
  std::string read();
  // Sends close_notify (into takeOutgoing()).
  void shutdown();
  bool established() const;
  SSL* ssl() { return ssl_; }
  const std::string& error() const { return error_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // server -> client
  BIO* wbio_ = nullptr;  // client -> server
  std::string error_;
};

// A blocking TLS client on a loopback socket.
class SocketTlsClient {
 public:
  explicit SocketTlsClient(const TlsClientOptions& options = {});
  ~SocketTlsClient();
  SocketTlsClient(const SocketTlsClient&) = delete;
  SocketTlsClient& operator=(const SocketTlsClient&) = delete;

  // Connects to 127.0.0.1:`port` and completes the handshake within
  // `timeout`. False with error() set otherwise.
  bool connect(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool sendAll(const std::string& plain);
  // Reads exactly `n` plaintext bytes within `timeout`.
  bool recvExact(size_t n, std::chrono::milliseconds timeout, std::string* out);
  // True when the server closed (EOF / close_notify / reset) within `timeout`.
  bool waitClosed(std::chrono::milliseconds timeout);
  // After waitClosed(): true when the server ended with close_notify (a clean
  // TLS close), false for a bare FIN, a reset or an error.
  bool closedCleanly() const { return clean_close_; }
  // The server certificate's subject CN ("" if none).
  std::string peerCn() const;
  std::string version() const;  // "TLSv1.3"
  std::string cipher() const;
  const std::string& error() const { return error_; }
  int fd() const { return fd_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool clean_close_ = false;
  std::string error_;
};

// An SSL_CTX for a client (caller frees it).
SSL_CTX* newClientContext(const TlsClientOptions& options);

}  // namespace test
}  // namespace gw
