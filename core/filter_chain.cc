#include "core/filter_chain.h"

#include <event2/buffer.h>

#include "core/log.h"

namespace gw {

// The FilterCallbacks of one filter: knows its position in the chain.
class FilterChain::Entry : public FilterCallbacks {
 public:
  Entry(FilterChain& chain, size_t index, std::unique_ptr<Filter> f, FilterTraits traits)
      : chain_(chain), index_(index), filter(std::move(f)), traits(traits) {}

  Connection& connection() override { return *chain_.conn_; }
  Dispatcher& dispatcher() override { return chain_.conn_->dispatcher(); }
  Slots& slots() override { return chain_.slots_; }

  void continueReading() override {
    if (chain_.closed()) return;
    if (chain_.started_ <= index_) {
      // Stopped in onNewConnection: finish that iteration, then deliver data.
      chain_.started_ = index_ + 1;
      chain_.runNewConnection(index_ + 1);
      return;
    }
    chain_.runData(index_ + 1, chain_.pending_eos_);
  }

  void passFrame(Frame& frame) override { chain_.runFrame(index_ + 1, frame); }
  void writeFrame(Frame& frame) override { chain_.runWriteFrame(index_, frame); }

  void sendFrame(uint16_t msg_id, uint32_t server_id, std::string_view payload) override {
    wire::ClientHeader h;
    h.length = static_cast<uint16_t>(payload.size() > wire::kMaxClientPayload
                                         ? wire::kMaxClientPayload
                                         : payload.size());
    h.msg_id = msg_id;
    h.server_id = server_id;
    evbuffer_add(chain_.scratch_, payload.data(), h.length);
    Frame frame(h, chain_.scratch_);
    chain_.runWriteFrame(index_, frame);
  }

  void writeBytes(evbuffer* src, size_t len) override { chain_.runWriteBytes(index_, src, len); }
  void writeBytes(const void* data, size_t len) override {
    if (chain_.closed()) return;
    if (direct_write) {
      chain_.conn_->write(data, len);
      chain_.checkOutputBound();
      return;
    }
    // Staged in staging_, not scratch_: scratch_ may hold the payload of the
    // frame sendFrame() is writing, and these bytes (its header) go first.
    evbuffer_add(chain_.staging_, data, len);
    chain_.runWriteBytes(index_, chain_.staging_, len);
  }
  void shutdownWrite() override { chain_.conn_->shutdownWrite(); }
  void readDisable(bool disable) override { chain_.conn_->readDisable(disable); }
  bool readDisabled() const override { return !chain_.conn_->readEnabled(); }
  void close(CloseReason reason, std::string_view detail, Connection::CloseMode mode) override {
    chain_.conn_->close(reason, detail, mode);
  }

  FilterChain& chain_;
  const size_t index_;
  std::unique_ptr<Filter> filter;
  const FilterTraits traits;
  bool direct_write = true;  // no observing bytes filter below: write straight to the socket
};

FilterChain::FilterChain(std::unique_ptr<Connection> conn,
                         const std::vector<ChainElement>& elements, OutputLimits limits,
                         ClosedCallback on_closed)
    : conn_(std::move(conn)),
      limits_(limits),
      on_closed_(std::move(on_closed)),
      staging_(evbuffer_new()),
      scratch_(evbuffer_new()) {
  entries_.reserve(elements.size());
  bool observer_below = false;
  for (size_t i = 0; i < elements.size(); ++i) {
    auto e = std::make_unique<Entry>(*this, i, elements[i].factory->createFilter(),
                                     elements[i].traits);
    e->direct_write = !observer_below;
    if (e->traits.produces == Layer::kBytes && e->traits.observes_writes && !e->traits.terminal)
      observer_below = true;
    e->filter->setCallbacks(*e);
    entries_.push_back(std::move(e));
  }
  conn_->setCallbacks(this);
  conn_->setWatermarks(limits_.low_watermark, limits_.high_watermark);
}

FilterChain::~FilterChain() {
  // Filters go first: they may reference the connection in their destructors.
  entries_.clear();
  conn_.reset();
  evbuffer_free(staging_);
  evbuffer_free(scratch_);
}

Filter& FilterChain::filter(size_t i) { return *entries_[i]->filter; }

void FilterChain::start() { runNewConnection(0); }

void FilterChain::runNewConnection(size_t from) {
  for (size_t i = from; i < entries_.size(); ++i) {
    if (closed()) return;
    if (entries_[i]->filter->onNewConnection() == FilterStatus::kStopIteration) {
      started_ = i;
      return;
    }
    started_ = i + 1;
  }
  if (!closed() && (evbuffer_get_length(conn_->input()) > 0 || pending_eos_))
    runData(0, pending_eos_);
}

void FilterChain::onRead(Connection&, bool end_stream) {
  if (end_stream) pending_eos_ = true;
  if (started_ < entries_.size()) return;  // a filter is still in onNewConnection
  runData(0, pending_eos_);
}

void FilterChain::runData(size_t from, bool end_stream) {
  for (size_t i = from; i < entries_.size(); ++i) {
    if (closed()) return;
    Entry& e = *entries_[i];
    if (e.traits.consumes != Layer::kBytes) break;
    if (e.filter->onData(conn_->input(), end_stream) == FilterStatus::kStopIteration) return;
  }
}

void FilterChain::runFrame(size_t from, Frame& frame) {
  ++frames_in_;
  for (size_t i = from; i < entries_.size() && !closed(); ++i) {
    Entry& e = *entries_[i];
    if (e.traits.consumes != Layer::kFrames) break;
    if (e.filter->onFrame(frame) == FilterStatus::kStopIteration) break;
  }
  if (!frame.consumed()) frame.discardPayload();
}

void FilterChain::runWriteFrame(size_t below, Frame& frame) {
  for (size_t i = below; i-- > 0 && !closed();) {
    Entry& e = *entries_[i];
    if (e.traits.produces != Layer::kFrames || e.traits.terminal) continue;
    if (e.filter->onWriteFrame(frame) == FilterStatus::kStopIteration) {
      if (e.traits.consumes == Layer::kBytes) ++frames_out_;  // the codec took it
      break;
    }
  }
  if (!frame.consumed()) frame.discardPayload();
}

void FilterChain::runWriteBytes(size_t below, evbuffer* src, size_t len) {
  if (closed()) {
    evbuffer_drain(src, len);
    return;
  }
  Entry& from = *entries_[below];
  if (from.direct_write) {
    evbuffer_remove_buffer(src, conn_->output(), len);
    conn_->flushSoon();
    checkOutputBound();
    return;
  }
  if (src != staging_) evbuffer_remove_buffer(src, staging_, len);
  for (size_t i = below; i-- > 0;) {
    Entry& e = *entries_[i];
    if (e.traits.produces != Layer::kBytes || !e.traits.observes_writes) continue;
    if (e.filter->onWriteData(staging_, false) == FilterStatus::kStopIteration) {
      evbuffer_drain(staging_, evbuffer_get_length(staging_));
      return;
    }
    if (closed()) {
      evbuffer_drain(staging_, evbuffer_get_length(staging_));
      return;
    }
  }
  conn_->write(staging_);
  checkOutputBound();
}

void FilterChain::checkOutputBound() {
  if (limits_.max_bytes == 0 || closed()) return;
  size_t buffered = conn_->bufferedOutput();
  if (buffered > limits_.max_bytes) {
    conn_->close(CloseReason::kOutputOverflow,
                 "client output buffer " + std::to_string(buffered) + " bytes exceeds " +
                     std::to_string(limits_.max_bytes),
                 Connection::CloseMode::kAbort);
  }
}

void FilterChain::onClose(Connection&, CloseReason reason, std::string_view detail) {
  for (auto& e : entries_) e->filter->onClose(reason);
  if (on_closed_) on_closed_(*this, reason, detail);
}

void FilterChain::onAboveHighWatermark(Connection&) {
  for (auto& e : entries_) e->filter->onAboveWriteBufferHighWatermark();
}

void FilterChain::onBelowLowWatermark(Connection&) {
  for (auto& e : entries_) e->filter->onBelowWriteBufferLowWatermark();
}

}  // namespace gw
