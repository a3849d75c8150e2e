#include "core/sdk/testing/embedded_chain.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include <stdexcept>

#include "core/sdk/schema_check.h"
#include "core/sdk/connection.h"

namespace gw {
namespace test {

EmbeddedChain::EmbeddedChain(Options options)
    : options_(std::move(options)), dispatcher_("embedded") {}

EmbeddedChain::EmbeddedChain(const std::vector<ChainElement>& elements)
    : EmbeddedChain(elements, Options{}) {}

EmbeddedChain::EmbeddedChain(const std::vector<ChainElement>& elements, Options options)
    : EmbeddedChain(std::move(options)) {
  start(elements);
}

EmbeddedChain::~EmbeddedChain() {
  // Filters (and the connections they own) go before their factories,
  // which go before the worker services and the dispatcher.
  chain_.reset();
  built_.clear();
}

std::optional<ChainElement> EmbeddedChain::registered(std::string_view name,
                                                      std::string_view config_json,
                                                      const std::vector<ClusterConfig>& clusters,
                                                      std::string* error) {
  auto built =
      buildFilter(name, config_json, dispatcher_, services_, clusters, error, options_.listener);
  if (!built) return std::nullopt;
  built_.push_back(std::move(built));
  return built_.back()->element();
}

void EmbeddedChain::start(const std::vector<ChainElement>& elements) {
  if (chain_) throw std::logic_error("EmbeddedChain::start called twice");
  std::string why;
  auto peer = Address::parse(options_.peer, &why);
  if (!peer) throw std::invalid_argument("EmbeddedChain peer: " + why);
  auto conn = std::make_unique<Connection>(dispatcher_, -1, *peer, false);
  chain_ = std::make_unique<FilterChain>(
      std::move(conn), elements, options_.limits,
      [this](FilterChain&, CloseReason reason, std::string_view detail) {
        ++close_count_;
        reason_ = reason;
        detail_ = std::string(detail);
        close_time_ = std::chrono::steady_clock::now();
        if (stop_on_close_) event_base_loopbreak(dispatcher_.base());
      });
  chain_->start();
}

void EmbeddedChain::feed(std::string_view bytes, bool end_stream) {
  if (closed()) return;
  evbuffer_add(connection().input(), bytes.data(), bytes.size());
  // A paused socket is not read: the bytes wait in the input until the
  // connection redelivers them on resume (the EOF after them).
  if (connection().readEnabled()) {
    chain_->deliverInput(end_stream);
  } else if (end_stream) {
    pending_eof_ = true;
  }
}

void EmbeddedChain::feedChains(const std::vector<std::string>& pieces) {
  if (closed()) return;
  for (const std::string& p : pieces) {
    evbuffer* b = evbuffer_new();
    evbuffer_add(b, p.data(), p.size());
    evbuffer_add_buffer(connection().input(), b);
    evbuffer_free(b);
  }
  if (connection().readEnabled()) chain_->deliverInput(false);
}

void EmbeddedChain::feedSteady(std::string_view frame) {
  constexpr size_t kHead = 4;  // less than a client header: never a whole frame
  if (closed() || frame.size() <= kHead) return;
  evbuffer* in = connection().input();
  if (!steady_started_) {
    evbuffer_add(in, frame.data(), kHead);
    steady_started_ = true;
  }
  evbuffer_add(in, frame.data() + kHead, frame.size() - kHead);
  evbuffer_add(in, frame.data(), kHead);
  if (connection().readEnabled()) chain_->deliverInput(false);
}

void EmbeddedChain::feedEof() {
  if (closed()) return;
  if (!connection().readEnabled()) {
    pending_eof_ = true;
    return;
  }
  chain_->deliverInput(true);
}

void EmbeddedChain::deliverPendingEof() {
  if (pending_eof_ && !closed() && connection().readEnabled()) {
    pending_eof_ = false;
    chain_->deliverInput(true);
  }
}

std::string EmbeddedChain::takeOutput() {
  evbuffer* out = connection().output();
  std::string s(evbuffer_get_length(out), '\0');
  if (!s.empty()) evbuffer_remove(out, s.data(), s.size());
  // As if the socket took the bytes: lets the connection report crossing
  // back under the low watermark.
  if (!s.empty() && !closed()) connection().flushSoon();
  return s;
}

size_t EmbeddedChain::outputLength() const {
  return evbuffer_get_length(chain_->connection().output());
}

size_t EmbeddedChain::inputLength() const {
  return evbuffer_get_length(chain_->connection().input());
}

void EmbeddedChain::runFor(std::chrono::milliseconds d) {
  timeval tv;
  tv.tv_sec = d.count() / 1000;
  tv.tv_usec = (d.count() % 1000) * 1000;
  event_base_loopexit(dispatcher_.base(), &tv);
  event_base_dispatch(dispatcher_.base());
  deliverPendingEof();
}

bool EmbeddedChain::runUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    runFor(std::chrono::milliseconds(1));
  }
  return true;
}

bool EmbeddedChain::runUntilClosed(std::chrono::milliseconds timeout) {
  if (closed()) return true;
  // A timer rather than event_base_loopexit: a loopexit left pending by an
  // early break would end the next run early.
  stop_on_close_ = true;
  Timer deadline(dispatcher_, [this] { event_base_loopbreak(dispatcher_.base()); });
  deadline.enable(timeout);
  event_base_dispatch(dispatcher_.base());
  stop_on_close_ = false;
  deliverPendingEof();
  return closed();
}

namespace {

// FrameRecorder's filter.
class RecordingTerminal : public Filter {
 public:
  explicit RecordingTerminal(FrameRecorder& recorder) : recorder_(recorder) {}
  FilterStatus onNewConnection() override {
    recorder_.callbacks = &callbacks();
    return FilterStatus::kContinue;
  }
  FilterStatus onFrame(Frame& frame) override {
    RecordedFrame r{frame.header, std::string(frame.payloadLength(), '\0')};
    r.payload.resize(frame.peekPayload(r.payload.data(), r.payload.size()));
    recorder_.frames.push_back(std::move(r));
    if (recorder_.on_frame) recorder_.on_frame(frame, callbacks());
    return FilterStatus::kStopIteration;
  }

 private:
  FrameRecorder& recorder_;
};

}  // namespace

std::unique_ptr<Filter> FrameRecorder::createFilter() {
  return std::make_unique<RecordingTerminal>(*this);
}

std::unique_ptr<BuiltFilter> buildFilter(std::string_view name, std::string_view config_json,
                                         Dispatcher& dispatcher, WorkerServices& services,
                                         const std::vector<ClusterConfig>& clusters,
                                         std::string* error, std::string_view listener) {
  auto fail = [&](const std::string& why) -> std::unique_ptr<BuiltFilter> {
    if (error) *error = why;
    return nullptr;
  };
  const FilterConfigFactory* type = FilterRegistry::get().find(name);
  if (type == nullptr)
    return fail("no filter registered as '" + std::string(name) + "' (link its library)");
  rapidjson::Document doc;
  doc.Parse(config_json.data(), config_json.size());
  if (doc.HasParseError()) return fail("config JSON does not parse");
  if (auto e = config::checkSchema(type->schema(), doc, "")) return fail(*e);
  auto built = std::make_unique<BuiltFilter>();
  built->name = std::string(name);
  built->traits = type->traits();
  built->clusters = clusters;
  ParseContext ctx(built->clusters, std::string(listener));
  built->config = type->parse(doc, ctx);
  if (!ctx.errors().empty()) return fail(ctx.errors()[0].pointer + ": " + ctx.errors()[0].message);
  if (built->config == nullptr) return fail("parse returned no config");
  WorkerContext worker{dispatcher, 0, 1, built->clusters, std::string(listener), services};
  built->factory = type->createFactory(built->config, worker);
  if (built->factory == nullptr) return fail("createFactory returned null");
  return built;
}

}  // namespace test
}  // namespace gw
