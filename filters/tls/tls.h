// filters/tls/tls.h — the `tls` filter: TLS termination as a bytes transformer.
//
// Defines TlsConfig (parsed config and the generation's shared SSL_CTX),
// TlsStats (every metric of the filter, declared in one place), TlsFilter
// (per connection) and TlsFactory (per worker). Registered under the JSON
// name "tls" (docs/filters/tls.md).
//
// Bytes layer in and out, not terminal, observes writes. Sits before
// `websocket` and `framing` (after `detect` on a shared port):
//   read path:  ciphertext ──onData──▶ SSL_read ──▶ plaintext_ ──passData──▶ later filters
//   write path: later filters ──onWriteData(plaintext)──▶ held_ ··end of loop turn··▶ SSL_write
//               ──writeBytes(ciphertext)──▶ filters before, socket
//   own bytes:  handshake records, alerts, tickets ──writeBytes──▶ filters before, socket
// OpenSSL works on memory BIOs (filters/tls/evbuffer_bio.h), never on the
// socket: the chain owns the socket and its buffers, and a transformer must
// sit between other bytes filters (detect before it, websocket after it),
// which libevent's bufferevent_openssl (owning the fd) cannot do.
//
// Hooks (Pingora style: when it runs, what it does, what it returns):
//   onNewConnection  once. No TransportInfo in the Slots (a dedicated TLS
//                    listener): TLS on at once and the handshake timeout
//                    starts. Else waits for detect's verdict. kContinue.
//   onData           TransportInfo says not tls: kContinue, bytes untouched,
//                    nothing copied (passthrough). TLS: runs the handshake
//                    (its records go out through writeBytes; a failure sends
//                    the alert and closes tls_handshake_failed, counted by
//                    reason), then decrypts every complete record into
//                    plaintext_ and calls passData(plaintext_) whenever it
//                    holds bytes or the stream ended (close_notify or FIN).
//                    Always kStopIteration. A TLS error after the handshake
//                    closes tls_error.
//   onWriteData      passthrough: kContinue. Otherwise the plaintext is held
//                    (copied into held_; kStopIteration): until the handshake
//                    completes, or, once open, until the end of the loop
//                    turn, when the factory's flush event encrypts all that
//                    the connection was written in that turn with one
//                    SSL_write (one record up to 16 KiB: framing's header
//                    and payload, several frames) and sends it with
//                    writeBytes. end_stream (a filter after this one closes
//                    with kFlush or half-closes): what is held is encrypted
//                    at once, followed by a close_notify alert, in place in
//                    the buffer; kContinue. Later writes are dropped.
//   onClose          stops the handshake timeout and the pending flush;
//                    later bytes are dropped.
// A handshake not complete within handshake_timeout closes the connection
// (tls_handshake_timeout, counted with reason "timeout").
//
// Limits: TLS 1.2 and 1.3 only; no client certificates; no renegotiation.
// close_notify is sent when a filter closes the connection with kFlush or
// half-closes it; not on an abort (kAbort drops the output anyway).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/timeout_list.h"
#include "filters/tls/evbuffer_bio.h"
#include "filters/tls/tls_context.h"

struct evbuffer;
struct event;

namespace gw {
namespace tls {

// Parsed `tls` config: one per config generation, immutable, shared by every
// worker. Holds the generation's SSL_CTX (thread-safe for SSL_new).
struct TlsConfig : FilterConfig {
  std::string cert_chain_file;
  std::string private_key_file;
  int min_version = TLS1_2_VERSION;
  std::vector<std::string> alpn;
  std::string alpn_wire;  // alpn, length-prefixed (the SSL_CTX's select callback reads it)
  std::chrono::milliseconds handshake_timeout{10 * 1000};
  std::string ciphers;
  std::string ciphersuites;
  SslCtxPtr ssl_ctx;
  std::string certificate;  // describeCertificate(), for GET /config

  // Every field, defaults filled in, plus "certificate" (the loaded leaf's
  // subject and expiry). The key's contents are never shown.
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
};

// Why a handshake failed: the `reason` label of
// game_gateway_tls_handshake_failures_total.
enum class HandshakeFailure : uint8_t {
  kNotTls,           // the bytes are not a TLS ClientHello (garbage, plain HTTP, raw frames)
  kProtocolVersion,  // the client's versions are all below min_version
  kNoSharedCipher,   // no cipher suite, group or signature algorithm in common
  kPeerAlert,        // the client aborted with an alert (e.g. it does not trust the certificate)
  kEof,              // the client closed in the middle of the handshake
  kTimeout,          // not complete within handshake_timeout
  kOther,            // anything else OpenSSL refused
  kCount,
};
std::string_view handshakeFailureName(HandshakeFailure f);

// Every metric of the filter for one listener (the counters are process-wide
// and sharded per thread; each worker's factory points at the same ones).
struct TlsStats {
  explicit TlsStats(const std::string& listener);

  // game_gateway_tls_handshakes_total{listener,version="TLSv1.2"|"TLSv1.3"}
  stats::Counter* handshakes_tls12;
  stats::Counter* handshakes_tls13;
  // game_gateway_tls_handshake_failures_total{listener,reason}, by HandshakeFailure
  std::array<stats::Counter*, static_cast<size_t>(HandshakeFailure::kCount)> failures;
  // game_gateway_tls_errors_total{listener}: connections closed for a TLS
  // error after the handshake
  stats::Counter* errors;
  // game_gateway_tls_close_notify_sent_total{listener}: close_notify alerts
  // sent before a flushing close or a half-close
  stats::Counter* close_notify_sent;
  // game_gateway_tls_passthrough_total{listener}: connections detect said
  // were not TLS (bytes passed through untouched)
  stats::Counter* passthrough;
};

class TlsFactory;

// One per client connection. State, all per connection: mode_, the SSL
// object (made only once TLS is on: a passthrough connection costs no
// OpenSSL memory), plaintext_ (decrypted bytes the later filters read and
// leave partial frames in), held_ (plaintext written and not yet encrypted:
// before the handshake completed, or in this loop turn), io_ (the BIO's
// buffer pointers), the timeout entry (in the factory's handshake list until
// the handshake completes), flush_slot_ (its place in the factory's flush
// queue while held_ waits for the end of the loop turn).
class TlsFilter : public Filter, private TimeoutList::Entry {
 public:
  explicit TlsFilter(TlsFactory& factory);
  ~TlsFilter() override;

  FilterStatus onNewConnection() override;
  FilterStatus onData(evbuffer* data, bool end_stream) override;
  FilterStatus onWriteData(evbuffer* data, bool end_stream) override;
  // Undecided or passthrough: 0 (writes pass as they are, not staged);
  // otherwise kNoPrefix (encrypted in onWriteData).
  size_t onWritePrefix(const WriteView& write, uint8_t* prefix) override;
  void onClose(CloseReason reason) override;

  // For tests: true once TLS is on for this connection / the handshake completed.
  bool active() const { return mode_ == Mode::kHandshake || mode_ == Mode::kOpen; }
  bool established() const { return mode_ == Mode::kOpen; }

 private:
  friend class TlsFactory;
  enum class Mode : uint8_t { kUndecided, kPassthrough, kHandshake, kOpen, kClosed };
  // Ciphertext up to this size is copied into the output (see flushOwn()).
  static constexpr size_t kCopyOut = 4096;
  // held_ keeps up to this much capacity between turns (per connection,
  // also while idle: small, so that idle connections stay cheap; a turn
  // that wrote more frees it after the flush).
  static constexpr size_t kHeldKeep = 512;

  // Turns TLS on: SSL_new, the BIO, the handshake timeout. False (and
  // closed) when OpenSSL could not allocate.
  bool activate();
  // Advances the handshake with the bytes in io_.in; false when it closed.
  bool handshake(bool end_stream);
  // Decrypts every complete record into plaintext_; false when it closed.
  bool decrypt();
  // Encrypts `len` bytes at `plain` into the factory's ciphertext buffer
  // (records of at most 16 KiB). False when it closed.
  bool encrypt(const char* plain, size_t len);
  // Copies `data`'s bytes to the end of held_ (drained).
  void hold(evbuffer* data);
  // Encrypts all of held_ into the factory's ciphertext buffer; false when
  // it closed.
  bool encryptHeld();
  // Open and not shut: encrypts held_ and sends the records (flushOwn).
  // False when it closed. Called by the factory's end-of-turn flush and
  // when the handshake completes.
  bool flushHeld();
  // Sends what OpenSSL wrote to the factory's ciphertext buffer (records,
  // handshake messages, alerts, tickets) toward the client: copied up to
  // kCopyOut bytes, its chains moved above.
  void flushOwn();
  void failHandshake(HandshakeFailure why, const std::string& detail);
  void onHandshakeTimeout();

  TlsFactory& factory_;
  Mode mode_ = Mode::kUndecided;
  bool got_bytes_ = false;  // any ciphertext arrived (an empty connect is no failure)
  bool peer_done_ = false;  // close_notify received
  bool write_shut_ = false;  // close_notify sent: no more writes
  int32_t flush_slot_ = -1;  // index in the factory's flush queue, or -1
  SSL* ssl_ = nullptr;
  evbuffer* plaintext_ = nullptr;
  std::string held_;
  EvbufferBioIo io_;
};

// One per worker per listener: the config (and so the generation's
// SSL_CTX), the listener's metrics, the worker's handshake-timeout list (one
// libevent timer for all its handshaking connections), the flush queue (the
// connections holding plaintext written in this loop turn, encrypted by one
// libevent event activated at the first of them), and two per-worker
// scratch areas used only inside a hook: the ciphertext buffer OpenSSL
// writes into (always emptied before the hook returns) and a 16 KiB record
// buffer SSL_read decrypts into.
class TlsFactory : public FilterFactory {
 public:
  TlsFactory(std::shared_ptr<const TlsConfig> config, WorkerContext& worker);
  ~TlsFactory() override;
  std::unique_ptr<Filter> createFilter() override;

  const TlsConfig& config() const { return *config_; }
  const TlsStats& stats() const { return stats_; }
  TimeoutList& handshakeTimeouts() { return handshake_timeouts_; }
  evbuffer* cipherOut() { return cipher_out_; }
  static constexpr size_t kRecord = 16 * 1024;
  unsigned char* recordBuffer() { return record_.data(); }
  // Queues `f` for the end-of-turn flush (once; activates the event for the
  // first of a turn). unqueueFlush: takes it off (closed or flushed early).
  void queueFlush(TlsFilter& f);
  void unqueueFlush(TlsFilter& f);
  // Encrypts and sends the held plaintext of every queued connection now
  // (the event's callback; tests call it in place of a loop turn).
  void flushQueued();

 private:
  static void onFlush(int fd, short what, void* arg);

  std::shared_ptr<const TlsConfig> config_;
  TlsStats stats_;
  TimeoutList handshake_timeouts_;
  evbuffer* cipher_out_;
  event* flush_ev_;
  std::vector<TlsFilter*> flush_queue_;  // null: closed since it was queued
  bool flush_armed_ = false;             // flush_ev_ is active
  std::array<unsigned char, kRecord> record_;
};

}  // namespace tls
}  // namespace gw
