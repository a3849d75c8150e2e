#include "filters/tls/tls.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>

#include <algorithm>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"
#include "core/sdk/transport.h"
#include "filters/tls/tls_schema.h"

namespace gw {
namespace tls {
namespace {

// The failure reason for the OpenSSL error at the head of this thread's
// queue (not removed).
HandshakeFailure classify(unsigned long err) {
  if (ERR_GET_LIB(err) != ERR_LIB_SSL) return HandshakeFailure::kOther;
  int r = ERR_GET_REASON(err);
  if (r >= SSL_AD_REASON_OFFSET) return HandshakeFailure::kPeerAlert;  // an alert from the client
  switch (r) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_BAD_PACKET_LENGTH:
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
      return HandshakeFailure::kNotTls;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_UNKNOWN_PROTOCOL:
      return HandshakeFailure::kProtocolVersion;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_CIPHERS_AVAILABLE:
      return HandshakeFailure::kNoSharedCipher;
    default:
      return HandshakeFailure::kOther;
  }
}

// Empties this thread's OpenSSL error queue before an I/O call (SSL_get_error
// reads it). Every failure path here takes the errors it caused, so the queue
// is almost always empty already: peeking costs less than ERR_clear_error()'s
// sweep of every slot, which showed in the profile once per record.
inline void clearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

std::string_view handshakeFailureName(HandshakeFailure f) {
  switch (f) {
    case HandshakeFailure::kNotTls: return "not_tls";
    case HandshakeFailure::kProtocolVersion: return "protocol_version";
    case HandshakeFailure::kNoSharedCipher: return "no_shared_cipher";
    case HandshakeFailure::kPeerAlert: return "peer_alert";
    case HandshakeFailure::kEof: return "eof";
    case HandshakeFailure::kTimeout: return "timeout";
    case HandshakeFailure::kOther: return "other";
    case HandshakeFailure::kCount: break;
  }
  return "other";
}

TlsStats::TlsStats(const std::string& listener) {
  auto& r = stats::StatsRegistry::get();
  const std::string hs_help = "Completed TLS handshakes, by protocol version.";
  handshakes_tls12 = &r.counter("game_gateway_tls_handshakes_total", hs_help,
                                {{"listener", listener}, {"version", "TLSv1.2"}});
  handshakes_tls13 = &r.counter("game_gateway_tls_handshakes_total", hs_help,
                                {{"listener", listener}, {"version", "TLSv1.3"}});
  for (size_t i = 0; i < failures.size(); ++i) {
    failures[i] = &r.counter(
        "game_gateway_tls_handshake_failures_total",
        "TLS handshakes that failed (the connection was closed), by reason.",
        {{"listener", listener},
         {"reason", std::string(handshakeFailureName(static_cast<HandshakeFailure>(i)))}});
  }
  errors = &r.counter("game_gateway_tls_errors_total",
                      "Client connections closed for a TLS error after the handshake.",
                      {{"listener", listener}});
  close_notify_sent = &r.counter("game_gateway_tls_close_notify_sent_total",
                                 "close_notify alerts the gateway sent before closing (or "
                                 "half-closing) an established TLS connection.",
                                 {{"listener", listener}});
  passthrough = &r.counter("game_gateway_tls_passthrough_total",
                           "Client connections the tls filter passed through untouched "
                           "(detect found no TLS ClientHello).",
                           {{"listener", listener}});
}

TlsFilter::TlsFilter(TlsFactory& factory) : factory_(factory) {}

TlsFilter::~TlsFilter() {
  factory_.unqueueFlush(*this);
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees the BIO too
  if (plaintext_ != nullptr) evbuffer_free(plaintext_);
}

FilterStatus TlsFilter::onNewConnection() {
  // No detect filter before us: a dedicated TLS listener.
  if (callbacks().slots().get<TransportInfo>() == nullptr) activate();
  return FilterStatus::kContinue;
}

bool TlsFilter::activate() {
  ssl_ = SSL_new(factory_.config().ssl_ctx.get());
  BIO* bio = ssl_ != nullptr ? newEvbufferBio(&io_) : nullptr;
  plaintext_ = evbuffer_new();
  if (bio == nullptr || plaintext_ == nullptr) {
    mode_ = Mode::kClosed;
    callbacks().close(CloseReason::kFilterError, "tls: out of memory for a TLS session: " +
                                                     takeOpenSslErrors());
    return false;
  }
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_accept_state(ssl_);
  mode_ = Mode::kHandshake;
  factory_.handshakeTimeouts().touch(*this, coarseNowNs());
  return true;
}

FilterStatus TlsFilter::onData(evbuffer* data, bool end_stream) {
  switch (mode_) {
    case Mode::kPassthrough:
      return FilterStatus::kContinue;
    case Mode::kClosed:
      evbuffer_drain(data, evbuffer_get_length(data));
      return FilterStatus::kStopIteration;
    case Mode::kUndecided: {
      const TransportInfo* info = callbacks().slots().get<TransportInfo>();
      // detect passes bytes on only once it decided; hold them otherwise.
      if (info != nullptr && !info->decided) return FilterStatus::kStopIteration;
      if (info != nullptr && !info->tls) {
        mode_ = Mode::kPassthrough;
        factory_.stats().passthrough->inc();
        return FilterStatus::kContinue;
      }
      if (!activate()) return FilterStatus::kStopIteration;
      break;
    }
    case Mode::kHandshake:
    case Mode::kOpen:
      break;
  }
  if (evbuffer_get_length(data) > 0) got_bytes_ = true;
  io_.in = data;
  io_.out = factory_.cipherOut();
  clearErrors();
  if (mode_ == Mode::kHandshake && !handshake(end_stream)) return FilterStatus::kStopIteration;
  if (mode_ == Mode::kHandshake) {
    io_.in = nullptr;
    return FilterStatus::kStopIteration;
  }
  if (!decrypt()) return FilterStatus::kStopIteration;
  io_.in = nullptr;
  bool eos = end_stream || peer_done_;
  if (evbuffer_get_length(plaintext_) > 0 || eos) callbacks().passData(plaintext_, eos);
  return FilterStatus::kStopIteration;
}

bool TlsFilter::handshake(bool end_stream) {
  int r = SSL_do_handshake(ssl_);
  if (r != 1) {
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) {
      flushOwn();
      if (end_stream) {
        if (!got_bytes_) {
          unlink();
          mode_ = Mode::kClosed;
          callbacks().close(CloseReason::kRemoteClosed, "closed before any TLS bytes");
          return false;
        }
        failHandshake(HandshakeFailure::kEof, "the client closed during the TLS handshake");
        return false;
      }
      return true;
    }
    unsigned long e = ERR_peek_error();
    HandshakeFailure why = e != 0 ? classify(e)
                                  : (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL
                                         ? HandshakeFailure::kEof
                                         : HandshakeFailure::kOther);
    std::string detail = e != 0 ? takeOpenSslErrors() : "SSL error " + std::to_string(err);
    flushOwn();  // the alert OpenSSL wrote, if any
    failHandshake(why, detail);
    return false;
  }
  unlink();
  mode_ = Mode::kOpen;
  if (SSL_version(ssl_) == TLS1_3_VERSION)
    factory_.stats().handshakes_tls13->inc();
  else
    factory_.stats().handshakes_tls12->inc();
  flushOwn();
  // Plaintext the later filters wrote while the handshake ran.
  return flushHeld();
}

bool TlsFilter::decrypt() {
  unsigned char* rec = factory_.recordBuffer();
  for (;;) {
    int n = SSL_read(ssl_, rec, static_cast<int>(TlsFactory::kRecord));
    if (n > 0) {
      evbuffer_add(plaintext_, rec, static_cast<size_t>(n));
      // Nothing buffered in OpenSSL (read-ahead) nor left in the input: no
      // record can be complete, so skip the SSL_read that would only say
      // WANT_READ.
      if (!SSL_has_pending(ssl_) && evbuffer_get_length(io_.in) == 0) break;
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      peer_done_ = true;
      break;
    }
    std::string detail = ERR_peek_error() != 0 ? takeOpenSslErrors() : "SSL error " + std::to_string(err);
    flushOwn();
    factory_.stats().errors->inc();
    mode_ = Mode::kClosed;
    callbacks().close(CloseReason::kTlsError, "TLS error: " + detail);
    return false;
  }
  flushOwn();  // e.g. a KeyUpdate answer
  return true;
}

size_t TlsFilter::onWritePrefix(const WriteView&, uint8_t*) {
  return mode_ == Mode::kUndecided || mode_ == Mode::kPassthrough ? 0 : Filter::kNoPrefix;
}

FilterStatus TlsFilter::onWriteData(evbuffer* data, bool end_stream) {
  switch (mode_) {
    case Mode::kUndecided:
    case Mode::kPassthrough:
      return FilterStatus::kContinue;
    case Mode::kHandshake:
      if (end_stream) break;  // closing mid-handshake: what was held is dropped
      hold(data);
      return FilterStatus::kStopIteration;
    case Mode::kOpen:
      if (write_shut_) break;
      hold(data);
      if (!end_stream) {
        // Encrypted at the end of the loop turn, with whatever else is
        // written to this connection meanwhile: one record (framing writes a
        // frame's header and payload separately).
        factory_.queueFlush(*this);
        return FilterStatus::kStopIteration;
      }
      // The end: what is held, then close_notify, in place of `data`.
      factory_.unqueueFlush(*this);
      write_shut_ = true;
      if (!encryptHeld()) return FilterStatus::kStopIteration;
      SSL_shutdown(ssl_);  // writes close_notify to cipherOut (a memory BIO never blocks)
      factory_.stats().close_notify_sent->inc();
      evbuffer_add_buffer(data, factory_.cipherOut());
      return FilterStatus::kContinue;
    case Mode::kClosed:
      break;
  }
  evbuffer_drain(data, evbuffer_get_length(data));
  return FilterStatus::kStopIteration;
}

void TlsFilter::hold(evbuffer* data) {
  const size_t n = evbuffer_get_length(data);
  if (n == 0) return;
  // Copied, not the chains moved: the chain's staging chain is then freed
  // right away and reused by the next write (one cached allocation), where
  // moved chains would stay alive, one per connection, until the flush.
  const size_t at = held_.size();
  held_.resize(at + n);
  evbuffer_remove(data, &held_[at], n);
}

bool TlsFilter::encryptHeld() {
  if (held_.empty()) return true;
  const bool ok = encrypt(held_.data(), held_.size());
  held_.clear();
  // Keeps its capacity for the next turn unless a bulk write grew it.
  if (held_.capacity() > kHeldKeep) std::string().swap(held_);
  return ok;
}

bool TlsFilter::flushHeld() {
  if (mode_ != Mode::kOpen || write_shut_) return true;
  if (!encryptHeld()) return false;
  flushOwn();
  return true;
}

bool TlsFilter::encrypt(const char* plain, size_t len) {
  io_.out = factory_.cipherOut();
  clearErrors();
  // One call: without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write cuts records
  // of at most 16 KiB itself and, on a memory BIO that never blocks, returns
  // only once all of it is written.
  int n = SSL_write(ssl_, plain, static_cast<int>(len));
  if (n <= 0 || static_cast<size_t>(n) != len) {
    std::string detail = takeOpenSslErrors();
    evbuffer_drain(factory_.cipherOut(), evbuffer_get_length(factory_.cipherOut()));
    factory_.stats().errors->inc();
    mode_ = Mode::kClosed;
    callbacks().close(CloseReason::kTlsError, "TLS write failed: " + detail);
    return false;
  }
  return true;
}

void TlsFilter::flushOwn() {
  evbuffer* out = factory_.cipherOut();
  const size_t n = evbuffer_get_length(out);
  if (n == 0) return;
  if (n > kCopyOut) {
    callbacks().writeBytes(out, n);  // bulk: its chains move
    return;
  }
  // Small (a turn's records, handshake messages): copied into the output,
  // so the buffer's chain is freed here and reused for the next connection
  // of the turn instead of one chain per connection living until its write.
  callbacks().writeBytes(evbuffer_pullup(out, static_cast<ev_ssize_t>(n)), n);
  evbuffer_drain(out, n);
}

void TlsFilter::failHandshake(HandshakeFailure why, const std::string& detail) {
  unlink();
  mode_ = Mode::kClosed;
  factory_.stats().failures[static_cast<size_t>(why)]->inc();
  ERR_clear_error();
  callbacks().close(CloseReason::kTlsHandshakeFailed,
                    "TLS handshake failed (" + std::string(handshakeFailureName(why)) + "): " + detail);
}

void TlsFilter::onHandshakeTimeout() {
  if (mode_ != Mode::kHandshake) return;
  mode_ = Mode::kClosed;
  factory_.stats().failures[static_cast<size_t>(HandshakeFailure::kTimeout)]->inc();
  callbacks().close(CloseReason::kTlsHandshakeTimeout,
                    "no complete TLS handshake within " +
                        formatDuration(factory_.config().handshake_timeout));
}

void TlsFilter::onClose(CloseReason) {
  unlink();
  factory_.unqueueFlush(*this);
  mode_ = Mode::kClosed;
  io_.in = nullptr;
  io_.out = nullptr;
}

TlsFactory::TlsFactory(std::shared_ptr<const TlsConfig> config, WorkerContext& worker)
    : config_(std::move(config)),
      stats_(worker.listener),
      handshake_timeouts_(worker.dispatcher, config_->handshake_timeout,
                          [](TimeoutList::Entry& e, int64_t) {
                            static_cast<TlsFilter&>(e).onHandshakeTimeout();
                          }),
      cipher_out_(evbuffer_new()),
      flush_ev_(event_new(worker.dispatcher.base(), -1, 0, &TlsFactory::onFlush, this)) {}

TlsFactory::~TlsFactory() {
  event_free(flush_ev_);
  evbuffer_free(cipher_out_);
}

void TlsFactory::queueFlush(TlsFilter& f) {
  if (f.flush_slot_ >= 0) return;
  f.flush_slot_ = static_cast<int32_t>(flush_queue_.size());
  flush_queue_.push_back(&f);
  if (!flush_armed_) {
    flush_armed_ = true;
    // Runs after the callbacks already queued in this loop turn, and before
    // the socket writes it schedules (the connections' flushes are queued
    // when the ciphertext reaches them).
    event_active(flush_ev_, EV_TIMEOUT, 0);
  }
}

void TlsFactory::unqueueFlush(TlsFilter& f) {
  if (f.flush_slot_ < 0) return;
  flush_queue_[static_cast<size_t>(f.flush_slot_)] = nullptr;
  f.flush_slot_ = -1;
}

void TlsFactory::flushQueued() {
  // By index: a flush may close its connection (output bound) or queue
  // another; slots of closed filters are null.
  for (size_t i = 0; i < flush_queue_.size(); ++i) {
    TlsFilter* f = flush_queue_[i];
    if (f == nullptr) continue;
    flush_queue_[i] = nullptr;
    f->flush_slot_ = -1;
    f->flushHeld();
  }
  flush_queue_.clear();
  flush_armed_ = false;
}

void TlsFactory::onFlush(int, short, void* arg) { static_cast<TlsFactory*>(arg)->flushQueued(); }

std::unique_ptr<Filter> TlsFactory::createFilter() { return std::make_unique<TlsFilter>(*this); }

void TlsConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  out.AddMember("cert_chain_file", jsonString(cert_chain_file, alloc), alloc);
  out.AddMember("private_key_file", jsonString(private_key_file, alloc), alloc);
  out.AddMember("min_version", jsonString(min_version == TLS1_3_VERSION ? "1.3" : "1.2", alloc),
                alloc);
  if (!alpn.empty()) {
    rapidjson::Value a(rapidjson::kArrayType);
    for (const auto& p : alpn) a.PushBack(jsonString(p, alloc), alloc);
    out.AddMember("alpn", a, alloc);
  }
  out.AddMember("handshake_timeout", jsonDuration(handshake_timeout, alloc), alloc);
  if (!ciphers.empty()) out.AddMember("ciphers", jsonString(ciphers, alloc), alloc);
  if (!ciphersuites.empty()) out.AddMember("ciphersuites", jsonString(ciphersuites, alloc), alloc);
  out.AddMember("certificate", jsonString(certificate, alloc), alloc);
}

class TlsConfigFactory : public TypedFilterConfigFactory<TlsConfig, TlsFactory> {
 public:
  TlsConfigFactory()
      : TypedFilterConfigFactory(
            "tls",
            FilterTraits{Layer::kBytes, Layer::kBytes, /*terminal=*/false, /*observes_writes=*/true},
            kTlsSchema) {}

  // Reads every field, then builds the generation's SSL_CTX (reading the
  // certificate and key files now: a SIGHUP reload re-reads them).
  std::shared_ptr<const TlsConfig> parseConfig(const rapidjson::Value& json,
                                               ParseContext& ctx) const override {
    auto cfg = std::make_shared<TlsConfig>();
    cfg->cert_chain_file = json["cert_chain_file"].GetString();
    cfg->private_key_file = json["private_key_file"].GetString();
    if (json.HasMember("min_version") && std::string_view(json["min_version"].GetString()) == "1.3")
      cfg->min_version = TLS1_3_VERSION;
    if (json.HasMember("alpn")) {
      for (const auto& p : json["alpn"].GetArray()) {
        cfg->alpn.emplace_back(p.GetString(), p.GetStringLength());
        cfg->alpn_wire.push_back(static_cast<char>(p.GetStringLength()));
        cfg->alpn_wire.append(p.GetString(), p.GetStringLength());
      }
    }
    cfg->handshake_timeout = ctx.duration(json, "handshake_timeout", cfg->handshake_timeout,
                                          std::chrono::milliseconds(1));
    if (json.HasMember("ciphers")) cfg->ciphers = json["ciphers"].GetString();
    if (json.HasMember("ciphersuites")) cfg->ciphersuites = json["ciphersuites"].GetString();

    TlsContextOptions o;
    o.cert_chain_file = cfg->cert_chain_file;
    o.private_key_file = cfg->private_key_file;
    o.min_version = cfg->min_version;
    o.ciphers = cfg->ciphers;
    o.ciphersuites = cfg->ciphersuites;
    o.alpn_wire = &cfg->alpn_wire;
    cfg->ssl_ctx = buildTlsContext(o, ctx);
    if (cfg->ssl_ctx) cfg->certificate = describeCertificate(cfg->ssl_ctx.get());
    return cfg;
  }
};

GW_REGISTER_FILTER(TlsConfigFactory);

}  // namespace tls
}  // namespace gw
