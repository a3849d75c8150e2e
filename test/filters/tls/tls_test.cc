// test/filters/tls/tls_test.cc — unit tests of the `tls` filter through an
// EmbeddedChain ([probe publishing TransportInfo] -> tls -> framing ->
// FrameRecorder), with an OpenSSL client over memory BIOs on the other side:
// round trips, records split anyhow, passthrough, handshake failures and
// timeout, config errors (key permissions, wrong files), certificate
// generations, ALPN, writes held until the handshake completes.
#include "filters/tls/tls.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include "core/sdk/stats.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/transport.h"
#include "test/filters/tls/tls_test_support.h"
#include "test/harness/net.h"

namespace gw {
namespace tls {
namespace {

using std::chrono::milliseconds;
using test::EmbeddedChain;
using test::encodeClientFrame;
using test::FrameRecorder;
using test::MemoryTlsClient;
using test::TempDir;
using test::TestCert;
using test::TlsClientOptions;

std::string configFor(const TestCert& c, const std::string& extra = "") {
  return R"({"cert_chain_file": ")" + c.cert_file + R"(", "private_key_file": ")" + c.key_file +
         "\"" + extra + "}";
}

uint64_t counter(const std::string& name, const test::EmbeddedChain::Options&,
                 const stats::Labels& labels) {
  return stats::StatsRegistry::get().counter(name, "", labels).value();
}

// A bytes filter that publishes a decided TransportInfo, as `detect` does.
class FakeDetect : public Filter {
 public:
  explicit FakeDetect(bool tls) { info_.decided = true; info_.tls = tls; }
  FilterStatus onNewConnection() override {
    callbacks().slots().set(&info_);
    return FilterStatus::kContinue;
  }

 private:
  TransportInfo info_;
};

// A bytes filter after tls that writes `greeting` toward the client as soon
// as the connection opens (before any handshake).
class Greeter : public Filter {
 public:
  explicit Greeter(std::string g) : greeting_(std::move(g)) {}
  FilterStatus onNewConnection() override {
    callbacks().writeBytes(greeting_.data(), greeting_.size());
    return FilterStatus::kContinue;
  }

 private:
  std::string greeting_;
};

// tls -> framing -> recorder that echoes each frame back (msg_id + 1).
struct Rig {
  explicit Rig(const std::string& tls_json, std::string listener,
               std::unique_ptr<FilterFactory> before = nullptr, FilterTraits before_traits = {})
      : ec(makeOptions(std::move(listener))), detect(std::move(before)) {
    recorder.on_frame = [](Frame& f, FilterCallbacks& cb) {
      cb.sendFrame(static_cast<uint16_t>(f.header.msg_id + 1), 0, "echo");
    };
    std::string err;
    auto t = ec.registered("tls", tls_json, {}, &err);
    EXPECT_TRUE(t.has_value()) << err;
    auto f = ec.registered("framing", "{}", {}, &err);
    EXPECT_TRUE(f.has_value()) << err;
    std::vector<ChainElement> elements;
    if (detect) elements.push_back({detect.get(), before_traits});
    elements.push_back(*t);
    elements.push_back(*f);
    elements.push_back(recorder.element());
    ec.start(elements);
    tls_index = detect ? 1 : 0;
    tls_factory = static_cast<TlsFactory*>(t->factory);
  }
  // What the chain wrote toward the client by the end of this loop turn
  // (tls encrypts what it was written at the end of the turn).
  std::string output() {
    tls_factory->flushQueued();
    return ec.takeOutput();
  }
  static EmbeddedChain::Options makeOptions(std::string listener) {
    EmbeddedChain::Options o;
    o.listener = std::move(listener);
    return o;
  }
  // Runs the handshake to the end; false if either side failed.
  bool handshake(MemoryTlsClient& c) {
    for (int i = 0; i < 10; ++i) {
      int r = c.handshake();
      std::string out = c.takeOutgoing();
      if (!out.empty()) ec.feed(out);
      c.putIncoming(output());
      if (r == 1 && !out.empty()) continue;  // flush the client's Finished first
      if (r == 1) return tlsFilter().established();
      if (r < 0 || ec.closed()) return false;
    }
    return false;
  }
  TlsFilter& tlsFilter() { return ec.filter<TlsFilter>(tls_index); }

  FrameRecorder recorder;  // before ec: outlives the chain
  EmbeddedChain ec;
  std::unique_ptr<FilterFactory> detect;
  size_t tls_index = 0;
  TlsFactory* tls_factory = nullptr;
};

// The TLS records in `wire` (ciphertext toward the client), by content type.
std::vector<uint8_t> recordTypes(const std::string& wire) {
  std::vector<uint8_t> types;
  size_t at = 0;
  while (at + 5 <= wire.size()) {
    types.push_back(static_cast<uint8_t>(wire[at]));
    at += 5 + ((static_cast<uint8_t>(wire[at + 3]) << 8) | static_cast<uint8_t>(wire[at + 4]));
  }
  return types;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override { cert = test::makeTestCert(dir.path(), "server", "gateway-test"); }
  TlsClientOptions trusting() {
    TlsClientOptions o;
    o.ca_file = cert.cert_file;
    return o;
  }
  TempDir dir;
  TestCert cert;
};

TEST_F(TlsTest, RoundTripThroughFraming) {
  Rig rig(configFor(cert), "tls_roundtrip");
  MemoryTlsClient client(trusting());
  ASSERT_TRUE(rig.handshake(client)) << client.error() << rig.ec.closeDetail();
  EXPECT_EQ(std::string(SSL_get_version(client.ssl())), "TLSv1.3");
  EXPECT_EQ(counter("game_gateway_tls_handshakes_total", {},
                    {{"listener", "tls_roundtrip"}, {"version", "TLSv1.3"}}),
            1u);

  // Two frames in one record, then a frame split over three records.
  client.write(encodeClientFrame(10, 0, "one") + encodeClientFrame(20, 0, "two"));
  rig.ec.feed(client.takeOutgoing());
  ASSERT_EQ(rig.recorder.frames.size(), 2u);
  EXPECT_EQ(rig.recorder.frames[0].payload, "one");
  EXPECT_EQ(rig.recorder.frames[1].payload, "two");
  std::string f3 = encodeClientFrame(30, 0, std::string(300, 'x'));
  client.write(f3.substr(0, 3));
  client.write(f3.substr(3, 100));
  std::string recs = client.takeOutgoing();
  client.write(f3.substr(103));
  recs += client.takeOutgoing();
  // And the records themselves split at odd places.
  rig.ec.feed(recs.substr(0, 7));
  rig.ec.feed(recs.substr(7, 50));
  EXPECT_EQ(rig.recorder.frames.size(), 2u);
  rig.ec.feed(recs.substr(57));
  ASSERT_EQ(rig.recorder.frames.size(), 3u);
  EXPECT_EQ(rig.recorder.frames[2].payload, std::string(300, 'x'));

  // The echoes came back encrypted, in order.
  std::string wire = rig.output();
  EXPECT_EQ(wire.find("echo"), std::string::npos) << "plaintext on the wire";
  client.putIncoming(wire);
  std::string plain = client.read();
  EXPECT_EQ(plain, encodeClientFrame(11, 0, "echo") + encodeClientFrame(21, 0, "echo") +
                       encodeClientFrame(31, 0, "echo"));
  EXPECT_FALSE(rig.ec.closed());
}

TEST_F(TlsTest, CloseNotifyEndsTheStream) {
  Rig rig(configFor(cert), "tls_close_notify");
  MemoryTlsClient client(trusting());
  ASSERT_TRUE(rig.handshake(client));
  client.shutdown();
  rig.ec.feed(client.takeOutgoing());
  EXPECT_TRUE(rig.ec.closed());
  EXPECT_EQ(rig.ec.closeReason(), CloseReason::kRemoteClosed) << rig.ec.closeDetail();
}

// Everything written to a connection in one loop turn leaves in one record:
// here two echoed frames, each written by framing as header + payload (four
// writes; four records, 88 bytes of record overhead, before the writes were
// held to the end of the turn).
TEST_F(TlsTest, WritesOfOneTurnShareOneRecord) {
  Rig rig(configFor(cert), "tls_one_record");
  MemoryTlsClient client(trusting());
  ASSERT_TRUE(rig.handshake(client)) << client.error() << rig.ec.closeDetail();
  client.write(encodeClientFrame(10, 0, "one") + encodeClientFrame(20, 0, "two"));
  rig.ec.feed(client.takeOutgoing());
  ASSERT_EQ(rig.recorder.frames.size(), 2u);
  EXPECT_EQ(rig.ec.outputLength(), 0u) << "encrypted before the end of the turn";
  std::string wire = rig.output();
  EXPECT_EQ(recordTypes(wire), std::vector<uint8_t>{0x17});  // one application_data record
  client.putIncoming(wire);
  EXPECT_EQ(client.read(), encodeClientFrame(11, 0, "echo") + encodeClientFrame(21, 0, "echo"));
  // The queue is empty again: the next turn's write is a record of its own.
  client.write(encodeClientFrame(30, 0, "three"));
  rig.ec.feed(client.takeOutgoing());
  client.putIncoming(rig.output());
  EXPECT_EQ(client.read(), encodeClientFrame(31, 0, "echo"));
}

// A filter that writes and then closes with kFlush in the same hook: the
// client gets the bytes, then close_notify (a clean TLS end, not a
// truncation). Before, the gateway closed without close_notify.
TEST_F(TlsTest, FlushingCloseSendsCloseNotifyAfterTheBytes) {
  Rig rig(configFor(cert), "tls_close_notify_sent");
  rig.recorder.on_frame = [](Frame& f, FilterCallbacks& cb) {
    cb.sendFrame(static_cast<uint16_t>(f.header.msg_id + 1), 0, "bye");
    cb.close(CloseReason::kLocalClosed, "done", Connection::CloseMode::kFlush);
  };
  MemoryTlsClient client(trusting());
  ASSERT_TRUE(rig.handshake(client)) << client.error() << rig.ec.closeDetail();
  client.write(encodeClientFrame(40, 0, "last"));
  rig.ec.feed(client.takeOutgoing());
  EXPECT_TRUE(rig.ec.closed());
  std::string wire = rig.output();
  EXPECT_EQ(recordTypes(wire), (std::vector<uint8_t>{0x17, 0x17}));  // the frame, the alert
  client.putIncoming(wire);
  EXPECT_EQ(client.read(), encodeClientFrame(41, 0, "bye"));
  EXPECT_TRUE(SSL_get_shutdown(client.ssl()) & SSL_RECEIVED_SHUTDOWN) << "no close_notify";
  EXPECT_EQ(counter("game_gateway_tls_close_notify_sent_total", {},
                    {{"listener", "tls_close_notify_sent"}}),
            1u);
}

// An abort drops the output: no close_notify either.
TEST_F(TlsTest, AbortSendsNoCloseNotify) {
  Rig rig(configFor(cert), "tls_abort");
  rig.recorder.on_frame = [](Frame&, FilterCallbacks& cb) {
    cb.close(CloseReason::kLocalClosed, "abort", Connection::CloseMode::kAbort);
  };
  MemoryTlsClient client(trusting());
  ASSERT_TRUE(rig.handshake(client));
  client.write(encodeClientFrame(40, 0, "x"));
  rig.ec.feed(client.takeOutgoing());
  EXPECT_TRUE(rig.ec.closed());
  EXPECT_EQ(rig.output(), "");
}

TEST_F(TlsTest, PassthroughWhenTransportInfoSaysNotTls) {
  Rig rig(configFor(cert), "tls_passthrough",
          std::make_unique<test::FunctionFilterFactory>([] { return std::make_unique<FakeDetect>(false); }),
          FilterTraits::bytes());
  std::string frame = encodeClientFrame(5, 0, "raw");
  rig.ec.feed(frame);
  ASSERT_EQ(rig.recorder.frames.size(), 1u);
  EXPECT_EQ(rig.recorder.frames[0].payload, "raw");
  EXPECT_FALSE(rig.tlsFilter().active());
  // Writes pass without staging (no prefix: not onWriteData).
  uint8_t prefix[Filter::kMaxWritePrefix];
  EXPECT_EQ(rig.tlsFilter().onWritePrefix(WriteView{}, prefix), 0u);
  // The echo is not encrypted either.
  EXPECT_EQ(rig.ec.takeOutput(), encodeClientFrame(6, 0, "echo"));
  EXPECT_EQ(counter("game_gateway_tls_passthrough_total", {}, {{"listener", "tls_passthrough"}}), 1u);
}

TEST_F(TlsTest, TerminatesWhenTransportInfoSaysTls) {
  Rig rig(configFor(cert), "tls_detected",
          std::make_unique<test::FunctionFilterFactory>([] { return std::make_unique<FakeDetect>(true); }),
          FilterTraits::bytes());
  MemoryTlsClient client(trusting());
  ASSERT_TRUE(rig.handshake(client)) << client.error() << rig.ec.closeDetail();
  client.write(encodeClientFrame(1, 0, "hi"));
  rig.ec.feed(client.takeOutgoing());
  ASSERT_EQ(rig.recorder.frames.size(), 1u);
  client.putIncoming(rig.output());
  EXPECT_EQ(client.read(), encodeClientFrame(2, 0, "echo"));
  // Terminating: every write is encrypted in onWriteData.
  uint8_t prefix[Filter::kMaxWritePrefix];
  EXPECT_EQ(rig.tlsFilter().onWritePrefix(WriteView{}, prefix), Filter::kNoPrefix);
}

TEST_F(TlsTest, GarbageFailsTheHandshakeWithAReason) {
  Rig rig(configFor(cert), "tls_garbage");
  rig.ec.feed(encodeClientFrame(1, 0, "not a client hello"));
  ASSERT_TRUE(rig.ec.closed());
  EXPECT_EQ(rig.ec.closeReason(), CloseReason::kTlsHandshakeFailed);
  EXPECT_NE(rig.ec.closeDetail().find("not_tls"), std::string::npos) << rig.ec.closeDetail();
  EXPECT_EQ(counter("game_gateway_tls_handshake_failures_total", {},
                    {{"listener", "tls_garbage"}, {"reason", "not_tls"}}),
            1u);
  EXPECT_TRUE(rig.recorder.frames.empty());
}

TEST_F(TlsTest, PlainHttpFailsTheHandshake) {
  Rig rig(configFor(cert), "tls_http");
  rig.ec.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(rig.ec.closed());
  EXPECT_EQ(rig.ec.closeReason(), CloseReason::kTlsHandshakeFailed);
  EXPECT_NE(rig.ec.closeDetail().find("not_tls"), std::string::npos) << rig.ec.closeDetail();
}

TEST_F(TlsTest, HandshakeTimeoutOnHalfAClientHello) {
  Rig rig(configFor(cert, R"(, "handshake_timeout": "100ms")"), "tls_timeout");
  MemoryTlsClient client(trusting());
  client.handshake();
  std::string hello = client.takeOutgoing();
  rig.ec.feed(hello.substr(0, hello.size() / 2));
  EXPECT_FALSE(rig.ec.closed());
  ASSERT_TRUE(rig.ec.runUntilClosed(std::chrono::seconds(3)));
  EXPECT_EQ(rig.ec.closeReason(), CloseReason::kTlsHandshakeTimeout);
  EXPECT_EQ(counter("game_gateway_tls_handshake_failures_total", {},
                    {{"listener", "tls_timeout"}, {"reason", "timeout"}}),
            1u);
}

TEST_F(TlsTest, NoTimeoutOnceEstablished) {
  Rig rig(configFor(cert, R"(, "handshake_timeout": "50ms")"), "tls_no_timeout");
  MemoryTlsClient client(trusting());
  ASSERT_TRUE(rig.handshake(client));
  rig.ec.runFor(milliseconds(150));
  EXPECT_FALSE(rig.ec.closed()) << rig.ec.closeDetail();
}

TEST_F(TlsTest, MinVersion13RefusesA12Client) {
  Rig rig(configFor(cert, R"(, "min_version": "1.3")"), "tls_minver");
  TlsClientOptions o = trusting();
  o.max_version = TLS1_2_VERSION;
  MemoryTlsClient client(o);
  EXPECT_FALSE(rig.handshake(client));
  ASSERT_TRUE(rig.ec.closed());
  EXPECT_EQ(rig.ec.closeReason(), CloseReason::kTlsHandshakeFailed);
  EXPECT_EQ(counter("game_gateway_tls_handshake_failures_total", {},
                    {{"listener", "tls_minver"}, {"reason", "protocol_version"}}),
            1u)
      << rig.ec.closeDetail();
}

TEST_F(TlsTest, Tls12Works) {
  Rig rig(configFor(cert), "tls_12");
  TlsClientOptions o = trusting();
  o.max_version = TLS1_2_VERSION;
  MemoryTlsClient client(o);
  ASSERT_TRUE(rig.handshake(client)) << client.error() << rig.ec.closeDetail();
  EXPECT_EQ(std::string(SSL_get_version(client.ssl())), "TLSv1.2");
  client.write(encodeClientFrame(1, 0, "hi"));
  rig.ec.feed(client.takeOutgoing());
  client.putIncoming(rig.output());
  EXPECT_EQ(client.read(), encodeClientFrame(2, 0, "echo"));
}

TEST_F(TlsTest, ClientThatDoesNotTrustTheCertificateAborts) {
  TestCert other = test::makeTestCert(dir.path(), "other", "someone-else");
  Rig rig(configFor(cert), "tls_untrusted");
  TlsClientOptions o;
  o.ca_file = other.cert_file;
  MemoryTlsClient client(o);
  EXPECT_FALSE(rig.handshake(client));
  EXPECT_NE(client.error().find("certificate verify failed"), std::string::npos) << client.error();
  // The client's alert reaches the gateway.
  rig.ec.feed(client.takeOutgoing());
  ASSERT_TRUE(rig.ec.closed());
  EXPECT_EQ(rig.ec.closeReason(), CloseReason::kTlsHandshakeFailed);
  EXPECT_NE(rig.ec.closeDetail().find("peer_alert"), std::string::npos) << rig.ec.closeDetail();
}

TEST_F(TlsTest, WritesBeforeTheHandshakeAreHeldThenEncrypted) {
  test::FunctionFilterFactory greeter([] { return std::make_unique<Greeter>("welcome"); });
  EmbeddedChain ec;
  std::string err;
  auto t = ec.registered("tls", configFor(cert), {}, &err);
  ASSERT_TRUE(t) << err;
  ec.start({*t, {&greeter, FilterTraits::bytesTerminal()}});
  EXPECT_EQ(ec.outputLength(), 0u) << "plaintext left before the handshake";
  MemoryTlsClient client(trusting());
  std::string got;
  for (int i = 0; i < 10 && got.empty(); ++i) {
    client.handshake();
    ec.feed(client.takeOutgoing());
    client.putIncoming(ec.takeOutput());
    if (client.established()) got = client.read();
  }
  EXPECT_EQ(got, "welcome");
}

TEST_F(TlsTest, AlpnPicksTheConfiguredProtocol) {
  Rig rig(configFor(cert, R"(, "alpn": ["game/1", "http/1.1"])"), "tls_alpn");
  TlsClientOptions o = trusting();
  o.alpn = "http/1.1";
  MemoryTlsClient client(o);
  ASSERT_TRUE(rig.handshake(client)) << client.error();
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(client.ssl(), &p, &len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p), len), "http/1.1");
}

// Each parsed config (one reload generation) has its own SSL_CTX: a new
// certificate on disk reaches only connections of the new generation.
TEST_F(TlsTest, EachGenerationKeepsItsOwnCertificate) {
  Rig old_gen(configFor(cert), "tls_gen_old");
  TestCert next = test::makeTestCert(dir.path(), "server", "gateway-next");  // same paths
  Rig new_gen(configFor(cert), "tls_gen_new");
  MemoryTlsClient a, b;
  ASSERT_TRUE(old_gen.handshake(a));
  ASSERT_TRUE(new_gen.handshake(b));
  auto cn = [](SSL* ssl) {
    X509* x = SSL_get1_peer_certificate(ssl);
    char buf[128] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
    X509_free(x);
    return std::string(buf);
  };
  EXPECT_EQ(cn(a.ssl()), "gateway-test");
  EXPECT_EQ(cn(b.ssl()), "gateway-next");
}

// ---- config ----------------------------------------------------------------

std::string buildError(const std::string& json) {
  Dispatcher d("test");
  WorkerServices services;
  std::string err;
  auto built = test::buildFilter("tls", json, d, services, {}, &err);
  return built ? "" : err;
}

TEST_F(TlsTest, KeyReadableByEveryoneIsRefused) {
  ::chmod(cert.key_file.c_str(), 0644);
  std::string err = buildError(configFor(cert));
  EXPECT_NE(err.find("/private_key_file"), std::string::npos) << err;
  EXPECT_NE(err.find("readable or writable by everyone"), std::string::npos) << err;
  EXPECT_NE(err.find(cert.key_file), std::string::npos) << err;
  EXPECT_NE(err.find("0644"), std::string::npos) << err;
  ::chmod(cert.key_file.c_str(), 0602);
  EXPECT_NE(buildError(configFor(cert)).find("/private_key_file"), std::string::npos);
}

TEST_F(TlsTest, GroupReadableKeyIsAccepted) {
  // Kubernetes secrets with defaultMode 0440 and an fsGroup.
  for (mode_t m : {0400, 0440, 0640, 0600}) {
    ::chmod(cert.key_file.c_str(), m);
    EXPECT_EQ(buildError(configFor(cert)), "") << std::oct << m;
  }
}

TEST_F(TlsTest, WrongCertificateFilesAreRefused) {
  std::string missing = dir.file("nope.crt");
  std::string err = buildError(R"({"cert_chain_file": ")" + missing + R"(", "private_key_file": ")" +
                               cert.key_file + "\"}");
  EXPECT_NE(err.find("/cert_chain_file"), std::string::npos) << err;
  EXPECT_NE(err.find(missing), std::string::npos) << err;

  // A key where the certificate should be.
  err = buildError(R"({"cert_chain_file": ")" + cert.key_file + R"(", "private_key_file": ")" +
                   cert.key_file + "\"}");
  EXPECT_NE(err.find("/cert_chain_file"), std::string::npos) << err;
  EXPECT_NE(err.find("cannot load a PEM certificate chain"), std::string::npos) << err;

  // A key that is not the certificate's.
  TestCert other = test::makeTestCert(dir.path(), "other", "other");
  err = buildError(R"({"cert_chain_file": ")" + cert.cert_file + R"(", "private_key_file": ")" +
                   other.key_file + "\"}");
  EXPECT_NE(err.find("does not match the certificate"), std::string::npos) << err;
}

TEST_F(TlsTest, SchemaAndCipherErrors) {
  EXPECT_NE(buildError(configFor(cert, R"(, "min_version": "1.1")")).find("min_version"),
            std::string::npos);
  EXPECT_NE(buildError(configFor(cert, R"(, "bogus": 1)")), "");
  std::string err = buildError(configFor(cert, R"(, "ciphersuites": "NOPE")"));
  EXPECT_NE(err.find("/ciphersuites"), std::string::npos) << err;
  EXPECT_EQ(buildError(configFor(cert, R"(, "ciphersuites": "TLS_AES_128_GCM_SHA256")")), "");
}

}  // namespace
}  // namespace tls
}  // namespace gw
