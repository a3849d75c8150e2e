#include "core/sdk/filter_chain.h"

#include <event2/buffer.h>

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/sdk/log.h"

namespace gw {

namespace {

// FilterTraits in 4 bytes (FilterTraits itself is 12): keeps Entry at 32.
class PackedTraits {
 public:
  explicit PackedTraits(const FilterTraits& t)
      : consumes_(static_cast<uint8_t>(t.consumes)),
        produces_(static_cast<uint8_t>(t.produces)),
        terminal(t.terminal),
        observes_writes(t.observes_writes) {}
  Layer consumes() const { return static_cast<Layer>(consumes_); }
  Layer produces() const { return static_cast<Layer>(produces_); }

 private:
  uint8_t consumes_;
  uint8_t produces_;

 public:
  bool terminal;
  bool observes_writes;
};

}  // namespace

// The FilterCallbacks of one filter: knows its position in the chain.
// 32 bytes; a chain's entries are one contiguous allocation.
class FilterChain::Entry : public FilterCallbacks {
 public:
  Entry(FilterChain& chain, size_t index, std::unique_ptr<Filter> f, const FilterTraits& traits)
      : chain_(chain), filter(std::move(f)), index_(static_cast<uint16_t>(index)), traits(traits) {}

  Connection& connection() override { return *chain_.conn_; }
  Dispatcher& dispatcher() override { return chain_.conn_->dispatcher(); }
  Slots& slots() override { return chain_.slots_; }
  ConnectionStage stage() const override { return chain_.stage(); }

  void continueReading() override {
    if (chain_.closed()) return;
    if (chain_.started_ <= index_) {
      // Stopped in onNewConnection: finish that iteration, then deliver data.
      chain_.started_ = static_cast<uint16_t>(index_ + 1);
      chain_.runNewConnection(index_ + 1);
      return;
    }
    chain_.runData(index_ + 1, chain_.pending_eos_);
  }

  void passData(evbuffer* data, bool end_stream) override {
    chain_.passData(index_, data, end_stream);
  }
  size_t passedLeft() const override { return chain_.passedLeft(index_); }
  void passFrame(Frame& frame) override { chain_.runFrame(index_ + 1, frame); }
  void writeFrame(Frame& frame) override {
    chain_.runWriteFrame(chain_.writeFrameStart(index_), frame);
  }

  void sendFrame(uint16_t msg_id, uint32_t server_id, std::string_view payload) override {
    wire::ClientHeader h;
    h.length = static_cast<uint16_t>(payload.size() > wire::kMaxClientPayload
                                         ? wire::kMaxClientPayload
                                         : payload.size());
    h.msg_id = msg_id;
    h.server_id = server_id;
    evbuffer* scratch = chain_.scratch();
    evbuffer_add(scratch, payload.data(), h.length);
    Frame frame(h, scratch);
    chain_.runWriteFrame(chain_.writeFrameStart(index_), frame);
  }

  void writeBytes(evbuffer* src, size_t len) override {
    chain_.runWrite(index_, nullptr, 0, src, len);
  }
  void writeBytes(const void* data, size_t len) override {
    chain_.runWrite(index_, static_cast<const uint8_t*>(data), len, nullptr, 0);
  }
  void writeBytes(const void* head, size_t head_len, evbuffer* src, size_t len) override {
    chain_.runWrite(index_, static_cast<const uint8_t*>(head), head_len, src, len);
  }
  void shutdownWrite() override {
    chain_.endWrites(index_);
    chain_.conn_->shutdownWrite();
  }
  bool observeFrames() override {
    if (traits.produces() != Layer::kBytes || traits.terminal ||
        chain_.codecAfter(index_) == chain_.count_)
      return false;
    observes_frames = true;
    chain_.frame_observers_ = true;
    return true;
  }
  void readDisable(bool disable) override { chain_.conn_->readDisable(disable); }
  bool readDisabled() const override { return !chain_.conn_->readEnabled(); }
  void close(CloseReason reason, std::string_view detail, Connection::CloseMode mode) override {
    chain_.close(index_, reason, detail, mode);
  }

  FilterChain& chain_;
  std::unique_ptr<Filter> filter;
  const uint16_t index_;  // chains hold at most kMaxFilters
  const PackedTraits traits;
  bool direct_write = true;  // no observing bytes filter below: write straight to the socket
  bool observes_frames = false;  // observeFrames() was called: onDecodedFrame runs
};

// A buffer a bytes transformer passed (passData()).
struct PassedSource {
  uint16_t transformer;  // its index
  evbuffer* buffer;
  size_t left;  // bytes the later filters left in it when they last returned
};

struct FilterChain::Extra {
  // Bytes passing through observing write filters. Between writes it keeps
  // the last byte of the previous one (already copied to the output) when
  // `staging_pad` is set: libevent frees the chains of a buffer that empties,
  // so the pad keeps the chain, and the next write is staged without an
  // allocation. The pad is drained before the observers run.
  evbuffer* staging = nullptr;
  bool staging_pad = false;
  evbuffer* scratch = nullptr;  // payloads of frames built by sendFrame()
  // The buffers transformers passed, by transformer index; usually one or two.
  std::vector<PassedSource> sources;
  ~Extra() {
    if (staging != nullptr) evbuffer_free(staging);
    if (scratch != nullptr) evbuffer_free(scratch);
  }
};

struct FilterChain::Owned {
  OutputLimits limits;
  ClosedCallback callback;
  static void run(void* context, FilterChain& chain, CloseReason reason, std::string_view detail) {
    auto* self = static_cast<Owned*>(context);
    if (self->callback) self->callback(chain, reason, detail);
  }
};

FilterChain::FilterChain(std::unique_ptr<Connection> conn,
                         const std::vector<ChainElement>& elements, OutputLimits limits,
                         ClosedCallback on_closed)
    : FilterChain(std::move(conn), elements,
                  std::unique_ptr<Owned>(new Owned{limits, std::move(on_closed)})) {}

// `owned` is released to the chain only once the main constructor succeeded
// (if it throws, the parameter frees it).
FilterChain::FilterChain(std::unique_ptr<Connection> conn,
                         const std::vector<ChainElement>& elements, std::unique_ptr<Owned> owned)
    : FilterChain(std::move(conn), elements, &owned->limits, &Owned::run, owned.get()) {
  owned.release();
  owns_context_ = true;
}

FilterChain::FilterChain(std::unique_ptr<Connection> conn,
                         const std::vector<ChainElement>& elements, const OutputLimits* limits,
                         ClosedFn on_closed, void* context)
    : conn_(std::move(conn)), limits_(limits), on_closed_(on_closed), context_(context) {
  if (elements.size() > kMaxFilters)
    throw std::length_error("a filter chain holds at most " + std::to_string(kMaxFilters) +
                            " filters");
  entries_ = static_cast<Entry*>(::operator new(sizeof(Entry) * elements.size()));
  bool observer_below = false;
  try {
    for (size_t i = 0; i < elements.size(); ++i) {
      Entry* e = new (&entries_[i])
          Entry(*this, i, elements[i].factory->createFilter(), elements[i].traits);
      count_ = static_cast<uint16_t>(count_ + 1);
      e->direct_write = !observer_below;
      if (e->traits.consumes() == Layer::kBytes && e->traits.produces() == Layer::kFrames &&
          !e->traits.terminal)
        has_codec_ = true;
      if (e->traits.produces() == Layer::kBytes && e->traits.observes_writes && !e->traits.terminal)
        observer_below = true;
      e->filter->setCallbacks(*e);
    }
  } catch (...) {
    destroyEntries();
    throw;
  }
  conn_->setCallbacks(this);
  conn_->setWatermarks(limits_->low_watermark, limits_->high_watermark);
}

void FilterChain::destroyEntries() {
  static_assert(sizeof(void*) != 8 || sizeof(Entry) <= 32, "FilterChain::Entry grew past 32 bytes");
  // In order, first to last (as the vector of entries used to).
  for (uint32_t i = 0; i < count_; ++i) entries_[i].~Entry();
  ::operator delete(entries_);
  entries_ = nullptr;
  count_ = 0;
}

FilterChain::~FilterChain() {
  // Filters go first: they may reference the connection in their destructors.
  destroyEntries();
  conn_.reset();
  extra_.reset();
  if (owns_context_) delete static_cast<Owned*>(context_);
}

FilterChain::Extra& FilterChain::extra() {
  if (!extra_) extra_ = std::make_unique<Extra>();
  return *extra_;
}

evbuffer* FilterChain::staging() {
  Extra& x = extra();
  if (x.staging == nullptr) x.staging = evbuffer_new();
  return x.staging;
}

evbuffer* FilterChain::scratch() {
  Extra& x = extra();
  if (x.scratch == nullptr) x.scratch = evbuffer_new();
  return x.scratch;
}

evbuffer* FilterChain::inputFor(size_t index) {
  if (extra_) {
    const auto& s = extra_->sources;
    for (size_t k = s.size(); k-- > 0;) {
      if (s[k].transformer >= index) continue;
      // input_passer_ nearer: it passed the input.
      if (input_passer_ < index && s[k].transformer < input_passer_) break;
      return s[k].buffer;
    }
  }
  return conn_->input();
}

void FilterChain::noteLeft(size_t from, evbuffer* src) {
  if (closed()) return;
  // The nearest transformer before `from`: a record in sources, or the one
  // that passed the connection's input (never one with a record before it).
  PassedSource* nearest = nullptr;
  if (extra_) {
    auto& s = extra_->sources;
    for (size_t k = s.size(); k-- > 0;) {
      if (s[k].transformer < from) {
        nearest = &s[k];
        break;
      }
    }
  }
  if (input_passer_ < from && (nearest == nullptr || nearest->transformer < input_passer_)) {
    if (src == conn_->input()) noteInputLeft(evbuffer_get_length(src));
    return;
  }
  if (nearest != nullptr && nearest->buffer == src) nearest->left = evbuffer_get_length(src);
}

size_t FilterChain::passedLeft(size_t transformer) const {
  if (transformer == input_passer_) return input_left_;
  if (!extra_) return 0;
  for (const PassedSource& p : extra_->sources)
    if (p.transformer == transformer) return p.left;
  return 0;
}

size_t FilterChain::sourceRecord(size_t transformer) {
  auto& s = extra().sources;
  size_t k = 0;
  while (k < s.size() && s[k].transformer < transformer) ++k;
  if (k == s.size() || s[k].transformer != transformer)
    s.insert(s.begin() + static_cast<std::ptrdiff_t>(k),
             {static_cast<uint16_t>(transformer), nullptr, 0});
  return k;
}

void FilterChain::noteInputLeft(size_t left) {
  if (left <= UINT32_MAX) {
    input_left_ = static_cast<uint32_t>(left);
    return;
  }
  // Too many for the chain's own field: a record like any other pass.
  const size_t k = sourceRecord(input_passer_);
  extra_->sources[k].buffer = conn_->input();
  extra_->sources[k].left = left;
  input_passer_ = kNoPasser;
}

void FilterChain::passData(size_t transformer, evbuffer* data, bool end_stream) {
  if (data == conn_->input() && (input_passer_ == kNoPasser || input_passer_ == transformer)) {
    // In place in the connection's input: recorded in input_passer_ unless a
    // transformer before this one passed a buffer (a resume of the filters
    // after it must not read the input then) or another one holds the field.
    bool first = true;
    if (extra_ && !extra_->sources.empty()) {
      auto& s = extra_->sources;
      if (s[0].transformer == transformer) s.erase(s.begin());  // its last pass was its own buffer
      first = s.empty() || s[0].transformer > transformer;
    }
    if (first) {
      input_passer_ = static_cast<uint16_t>(transformer);
      runFilters(transformer + 1, end_stream, data);
      if (!closed() && input_passer_ == transformer) noteInputLeft(evbuffer_get_length(data));
      return;
    }
  }
  if (input_passer_ == transformer) input_passer_ = kNoPasser;
  const size_t k = sourceRecord(transformer);
  auto& s = extra_->sources;
  s[k].buffer = data;
  runFilters(transformer + 1, end_stream, data);
  // What they left (noteLeft, without looking the source up again: only
  // transformers after this one can have been added meanwhile, after k).
  if (!closed() && s[k].buffer == data) s[k].left = evbuffer_get_length(data);
}

Filter& FilterChain::filter(size_t i) { return *entries_[i].filter; }

void FilterChain::start() { runNewConnection(0); }

void FilterChain::runNewConnection(size_t from) {
  for (size_t i = from; i < count_; ++i) {
    if (closed()) return;
    if (entries_[i].filter->onNewConnection() == FilterStatus::kStopIteration) {
      started_ = static_cast<uint16_t>(i);
      return;
    }
    started_ = static_cast<uint16_t>(i + 1);
  }
  if (!closed() && (evbuffer_get_length(conn_->input()) > 0 || pending_eos_))
    runData(0, pending_eos_);
}

void FilterChain::onRead(Connection&, bool end_stream) {
  if (end_stream) pending_eos_ = true;
  if (started_ < count_) return;  // a filter is still in onNewConnection
  // The first filter reads the connection's input (inputFor(0), without the
  // call: every read comes here).
  runData(0, pending_eos_, conn_->input());
}

void FilterChain::runData(size_t from, bool end_stream, evbuffer* src) {
  if (src == nullptr) src = inputFor(from);
  runFilters(from, end_stream, src);
  if (from > 0) noteLeft(from, src);
}

void FilterChain::runFilters(size_t from, bool end_stream, evbuffer* src) {
  for (size_t i = from; i < count_; ++i) {
    if (closed()) return;
    Entry& e = entries_[i];
    if (e.traits.consumes() != Layer::kBytes) break;
    if (e.filter->onData(src, end_stream) == FilterStatus::kStopIteration) break;
  }
}

size_t FilterChain::codecAfter(size_t index) const {
  for (size_t i = index + 1; i < count_; ++i) {
    const PackedTraits& t = entries_[i].traits;
    if (t.consumes() != Layer::kBytes) break;
    if (t.produces() == Layer::kFrames && !t.terminal) return i;
  }
  return count_;
}

size_t FilterChain::writeFrameStart(size_t index) const {
  const PackedTraits& t = entries_[index].traits;
  if (t.produces() != Layer::kBytes || t.terminal) return index;
  const size_t codec = codecAfter(index);
  return codec < count_ ? codec + 1 : index;
}

bool FilterChain::runFrameObservers(size_t codec, Frame& frame) {
  for (size_t i = 0; i < codec; ++i) {
    Entry& e = entries_[i];
    if (!e.observes_frames) continue;
    if (e.filter->onDecodedFrame(frame) == FilterStatus::kStopIteration || closed()) return false;
  }
  return true;
}

void FilterChain::runFrame(size_t from, Frame& frame) {
  ++frames_in_;
  if (frame_observers_ && from > 0 && !runFrameObservers(from - 1, frame)) {
    if (!frame.consumed()) frame.discardPayload();
    return;
  }
  for (size_t i = from; i < count_ && !closed(); ++i) {
    Entry& e = entries_[i];
    if (e.traits.consumes() != Layer::kFrames) break;
    if (e.filter->onFrame(frame) == FilterStatus::kStopIteration) break;
  }
  if (!frame.consumed()) frame.discardPayload();
}

void FilterChain::runWriteFrame(size_t below, Frame& frame) {
  for (size_t i = below; i-- > 0 && !closed();) {
    Entry& e = entries_[i];
    if (e.traits.produces() != Layer::kFrames || e.traits.terminal) continue;
    if (e.filter->onWriteFrame(frame) == FilterStatus::kStopIteration) {
      if (e.traits.consumes() == Layer::kBytes) ++frames_out_;  // the codec took it
      break;
    }
  }
  if (!frame.consumed()) frame.discardPayload();
}

void WriteView::copyFront(uint8_t* out, size_t n) const {
  const size_t h = n < head_len ? n : head_len;
  if (h > 0) std::memcpy(out, head, h);
  if (n > h) evbuffer_copyout(tail, out + h, n - h);
}

void FilterChain::runWrite(size_t below, const uint8_t* head, size_t head_len, evbuffer* src,
                           size_t len) {
  if (closed()) {
    if (len > 0) evbuffer_drain(src, len);
    return;
  }
  evbuffer* out = conn_->output();
  if (entries_[below].direct_write) {
    if (head_len > 0) evbuffer_add(out, head, head_len);
    if (len > 0) evbuffer_remove_buffer(src, out, len);
    conn_->flushSoon();
    checkOutputBound();
    return;
  }
  if (head_len > kMaxGatherHead) {
    // Staged in staging, not scratch: scratch may hold the payload of the
    // frame sendFrame() is writing, and these bytes go first.
    evbuffer* staging = this->staging();
    evbuffer_add(staging, head, head_len);
    if (len > 0) stageFrom(src, len);
    runObservers(below, staging);
    return;
  }
  // The observers that only prefix the write (onWritePrefix), nearest the
  // writer first: each one's prefix goes in front of the bytes so far.
  uint8_t bytes[kPrefixRoom + kMaxGatherHead];
  size_t first = kPrefixRoom;
  if (head_len > 0) std::memcpy(bytes + first, head, head_len);
  const size_t last = kPrefixRoom + head_len;
  for (size_t i = below; i-- > 0;) {
    Entry& e = entries_[i];
    if (e.traits.produces() != Layer::kBytes || !e.traits.observes_writes) continue;
    size_t n = Filter::kNoPrefix;
    if (first >= Filter::kMaxWritePrefix) {
      uint8_t prefix[Filter::kMaxWritePrefix];
      const WriteView view{bytes + first, last - first, src, len};
      n = e.filter->onWritePrefix(view, prefix);
      if (closed()) {
        if (len > 0) evbuffer_drain(src, len);
        return;
      }
      if (n <= Filter::kMaxWritePrefix) {
        first -= n;
        std::memcpy(bytes + first, prefix, n);
        continue;
      }
    }
    // This observer transforms the write: stage it, run it and the ones
    // before it through onWriteData.
    evbuffer* staging = this->staging();
    evbuffer_add(staging, bytes + first, last - first);
    if (len > 0) stageFrom(src, len);
    runObservers(i + 1, staging);
    return;
  }
  if (last > first) evbuffer_add(out, bytes + first, last - first);
  if (len > 0) evbuffer_remove_buffer(src, out, len);
  conn_->flushSoon();
  checkOutputBound();
}

void FilterChain::stageFrom(evbuffer* src, size_t len) {
  evbuffer* staging = extra_->staging;
  if (len <= kCopyMax) {
    // Copied (not its chains moved): staging keeps its chain.
    evbuffer_iovec v[4];
    const int nv = evbuffer_peek(src, static_cast<ssize_t>(len), nullptr, v, 4);
    if (nv >= 1 && nv <= 4) {
      size_t left = len;
      for (int k = 0; k < nv && left > 0; ++k) {
        const size_t n = v[k].iov_len < left ? v[k].iov_len : left;
        evbuffer_add(staging, v[k].iov_base, n);
        left -= n;
      }
      evbuffer_drain(src, len);
      return;
    }
  }
  evbuffer_remove_buffer(src, staging, len);
}

void FilterChain::runObservers(size_t below, evbuffer* staging) {
  Extra& x = *extra_;
  if (x.staging_pad) {
    evbuffer_drain(staging, 1);
    x.staging_pad = false;
  }
  for (size_t i = below; i-- > 0;) {
    Entry& e = entries_[i];
    if (e.traits.produces() != Layer::kBytes || !e.traits.observes_writes) continue;
    if (e.filter->onWriteData(staging, false) == FilterStatus::kStopIteration || closed()) {
      evbuffer_drain(staging, evbuffer_get_length(staging));
      return;
    }
  }
  const size_t n = evbuffer_get_length(staging);
  if (n == 0) return;
  evbuffer_iovec v[2];
  const int nv = n <= kCopyMax ? evbuffer_peek(staging, -1, nullptr, v, 2) : 0;
  if (nv >= 1 && nv <= 2) {
    // Small: copied into the output's last chain; staging keeps its last
    // byte (the pad) and with it its chain.
    for (int k = 0; k < nv; ++k) evbuffer_add(conn_->output(), v[k].iov_base, v[k].iov_len);
    evbuffer_drain(staging, n - 1);
    x.staging_pad = true;
    conn_->flushSoon();
  } else {
    conn_->write(staging);
  }
  checkOutputBound();
}

void FilterChain::close(CloseReason reason, std::string_view detail, Connection::CloseMode mode) {
  close(count_, reason, detail, mode);
}

void FilterChain::close(size_t closer, CloseReason reason, std::string_view detail,
                        Connection::CloseMode mode) {
  if (closing_ == Closing::kRunning) return;  // from an onClosing: the close under way goes on
  if (mode == Connection::CloseMode::kFlush && conn_->open() && closing_ == Closing::kNo) {
    closing_ = Closing::kRunning;
    for (size_t i = count_; i-- > 0 && conn_->open();) entries_[i].filter->onClosing(reason);
    closing_ = Closing::kDone;
  }
  if (mode == Connection::CloseMode::kFlush) endWrites(closer);
  conn_->close(reason, detail, mode);
}

void FilterChain::endWrites(size_t closer) {
  if (writes_ended_ || conn_->state() != Connection::State::kOpen) return;
  writes_ended_ = true;
  evbuffer* buf = nullptr;
  for (size_t i = count_; i-- > 0;) {
    if (i == closer) continue;
    Entry& e = entries_[i];
    if (e.traits.produces() != Layer::kBytes || !e.traits.observes_writes || e.traits.terminal)
      continue;
    if (buf == nullptr) {
      buf = staging();
      if (extra_->staging_pad) {
        evbuffer_drain(buf, 1);
        extra_->staging_pad = false;
      }
    }
    // kStopIteration: that filter took the bytes; the filters before it
    // still get the end (with an empty buffer).
    if (e.filter->onWriteData(buf, true) == FilterStatus::kStopIteration)
      evbuffer_drain(buf, evbuffer_get_length(buf));
    if (closed()) return;
  }
  if (buf != nullptr && evbuffer_get_length(buf) > 0) conn_->write(buf);
}

void FilterChain::checkOutputBound() {
  if (limits_->max_bytes == 0 || closed()) return;
  size_t buffered = conn_->bufferedOutput();
  if (buffered > limits_->max_bytes) {
    conn_->close(CloseReason::kOutputOverflow,
                 "client output buffer " + std::to_string(buffered) + " bytes exceeds " +
                     std::to_string(limits_->max_bytes),
                 Connection::CloseMode::kAbort);
  }
}

void FilterChain::onClose(Connection&, CloseReason reason, std::string_view detail) {
  for (uint32_t i = 0; i < count_; ++i) entries_[i].filter->onClose(reason);
  if (on_closed_ != nullptr) on_closed_(context_, *this, reason, detail);
}

void FilterChain::onAboveHighWatermark(Connection&) {
  for (uint32_t i = 0; i < count_; ++i) entries_[i].filter->onAboveWriteBufferHighWatermark();
}

void FilterChain::onBelowLowWatermark(Connection&) {
  for (uint32_t i = 0; i < count_; ++i) entries_[i].filter->onBelowWriteBufferLowWatermark();
}

}  // namespace gw
