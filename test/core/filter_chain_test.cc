// Tests of gw::FilterChain (core/filter_chain.h) through EmbeddedChain: the
// order of the read and write paths, kStopIteration and continueReading(),
// the frames layer behind a codec, closing mid-chain, slots, read pausing
// with redelivery, watermarks and the output bound.
#include "core/sdk/filter_chain.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/filter.h"
#include "core/sdk/testing/embedded_chain.h"
#include "test/harness/net.h"

namespace gw {
namespace {

using test::EmbeddedChain;
using test::encodeClientFrame;
using Events = std::vector<std::string>;

std::string drainAll(evbuffer* buf) {
  std::string s(evbuffer_get_length(buf), '\0');
  if (!s.empty()) evbuffer_remove(buf, s.data(), s.size());
  return s;
}

// A test filter that logs every hook as "<name>:<hook>" into a shared log
// and does what its hook functions say (default: log and continue).
class Probe : public Filter {
 public:
  using DataFn = std::function<FilterStatus(Probe&, evbuffer*, bool)>;
  using FrameFn = std::function<FilterStatus(Probe&, Frame&)>;
  using NewFn = std::function<FilterStatus(Probe&)>;

  Probe(std::string name, Events* log) : name_(std::move(name)), log_(log) {}

  FilterStatus onNewConnection() override {
    log(":new");
    return on_new ? on_new(*this) : FilterStatus::kContinue;
  }
  FilterStatus onData(evbuffer* data, bool end_stream) override {
    log(end_stream ? ":data:eos" : ":data");
    return on_data ? on_data(*this, data, end_stream) : FilterStatus::kContinue;
  }
  FilterStatus onFrame(Frame& frame) override {
    log(":frame:" + std::to_string(frame.header.msg_id));
    return on_frame ? on_frame(*this, frame) : FilterStatus::kContinue;
  }
  FilterStatus onWriteFrame(Frame& frame) override {
    log(":write:" + std::to_string(frame.header.msg_id));
    return on_write_frame ? on_write_frame(*this, frame) : FilterStatus::kContinue;
  }
  FilterStatus onDecodedFrame(Frame& frame) override {
    log(":decoded:" + std::to_string(frame.header.msg_id));
    return on_decoded ? on_decoded(*this, frame) : FilterStatus::kContinue;
  }
  FilterStatus onWriteData(evbuffer* data, bool end_stream) override {
    log(":writedata");
    return on_write_data ? on_write_data(*this, data, end_stream) : FilterStatus::kContinue;
  }
  void onClosing(CloseReason reason) override {
    log(":closing:" + std::string(closeReasonName(reason)));
    if (on_closing) on_closing(*this);
  }
  size_t onWritePrefix(const WriteView& write, uint8_t* prefix) override {
    if (!on_write_prefix) return Filter::onWritePrefix(write, prefix);
    std::string whole(write.length(), '\0');
    write.copyFront(reinterpret_cast<uint8_t*>(whole.data()), whole.size());
    log(":prefix:" + whole);
    std::string p = on_write_prefix(*this, whole);
    if (p == "-") return Filter::kNoPrefix;
    std::memcpy(prefix, p.data(), p.size());
    return p.size();
  }
  void onClose(CloseReason reason) override {
    log(":close:" + std::string(closeReasonName(reason)));
  }
  void onAboveWriteBufferHighWatermark() override { log(":above"); }
  void onBelowWriteBufferLowWatermark() override { log(":below"); }

  // The filter's callbacks, for tests that act on the chain from outside.
  FilterCallbacks& cb() { return callbacks(); }
  const std::string& name() const { return name_; }

  NewFn on_new;
  DataFn on_data;
  FrameFn on_frame;
  FrameFn on_write_frame;
  FrameFn on_decoded;
  DataFn on_write_data;
  std::function<void(Probe&)> on_closing;
  // onWritePrefix: gets the whole write, returns the prefix ("-": none,
  // kNoPrefix). Unset: the default (kNoPrefix, not logged).
  std::function<std::string(Probe&, const std::string&)> on_write_prefix;
  // Free-form per-connection state for hook functions.
  std::string received;
  std::vector<std::string> payloads;
  int calls = 0;

 protected:
  void log(const std::string& what) { log_->push_back(name_ + what); }

 private:
  std::string name_;
  Events* log_;
};

// A client-frame codec for tests: decodes whole frames from the input and
// passes them on (stopping while reading is paused or once closed); encodes
// frames written toward the client.
class TestCodec : public Probe {
 public:
  using Probe::Probe;
  ~TestCodec() override { evbuffer_free(scratch_); }

  FilterStatus onData(evbuffer* data, bool end_stream) override {
    log(end_stream ? ":data:eos" : ":data");
    while (!callbacks().readDisabled() && callbacks().connection().open()) {
      size_t len = evbuffer_get_length(data);
      if (len < wire::kClientHeaderSize) break;
      uint8_t head[wire::kClientHeaderSize];
      evbuffer_copyout(data, head, sizeof(head));
      auto h = wire::ClientHeader::decode(head);
      if (len < wire::kClientHeaderSize + h.length) break;
      evbuffer_drain(data, wire::kClientHeaderSize);
      Frame frame(h, data);
      callbacks().passFrame(frame);
    }
    return FilterStatus::kStopIteration;
  }
  FilterStatus onWriteFrame(Frame& frame) override {
    log(":write:" + std::to_string(frame.header.msg_id));
    uint8_t head[wire::kClientHeaderSize];
    frame.header.encode(head);
    size_t len = frame.payloadLength();
    frame.movePayloadTo(scratch_);
    callbacks().writeBytes(head, sizeof(head));
    callbacks().writeBytes(scratch_, len);
    return FilterStatus::kStopIteration;
  }

 private:
  evbuffer* scratch_ = evbuffer_new();
};

FilterTraits bytesFilter(bool observes_writes = false) {
  FilterTraits t;
  t.observes_writes = observes_writes;
  return t;
}
FilterTraits bytesTerminal() {
  FilterTraits t;
  t.terminal = true;
  return t;
}
FilterTraits codecTraits() {
  FilterTraits t;
  t.produces = Layer::kFrames;
  return t;
}
FilterTraits framesFilter() {
  FilterTraits t;
  t.consumes = Layer::kFrames;
  t.produces = Layer::kFrames;
  return t;
}
FilterTraits framesTerminal() {
  FilterTraits t;
  t.consumes = Layer::kFrames;
  t.terminal = true;
  return t;
}

// Hook functions used by several tests.
FilterStatus drainInto(Probe& p, evbuffer* data, bool) {
  p.received += drainAll(data);
  return FilterStatus::kStopIteration;
}
FilterStatus takePayload(Probe& p, Frame& f) {
  evbuffer* tmp = evbuffer_new();
  f.movePayloadTo(tmp);
  p.payloads.push_back(drainAll(tmp));
  evbuffer_free(tmp);
  return FilterStatus::kStopIteration;
}

class FilterChainTest : public ::testing::Test {
 protected:
  // Adds a Probe (or a TestCodec when `codec`) named `name` to the chain to
  // be built; `setup` configures each new filter object.
  void add(const std::string& name, FilterTraits traits,
           std::function<void(Probe&)> setup = nullptr, bool codec = false) {
    factories_.push_back(std::make_unique<test::FunctionFilterFactory>(
        [this, name, setup, codec]() -> std::unique_ptr<Filter> {
          std::unique_ptr<Probe> p =
              codec ? std::make_unique<TestCodec>(name, &log) : std::make_unique<Probe>(name, &log);
          if (setup) setup(*p);
          return p;
        }));
    elements_.push_back({factories_.back().get(), traits});
  }
  void addCodec() { add("codec", codecTraits(), nullptr, true); }

  void start(OutputLimits limits = {}) {
    EmbeddedChain::Options options;
    options.limits = limits;
    ec = std::make_unique<EmbeddedChain>(elements_, options);
  }
  Probe& probe(size_t i) { return ec->filter<Probe>(i); }

  Events log;

 protected:
  std::vector<std::unique_ptr<FilterFactory>> factories_;
  std::vector<ChainElement> elements_;
  std::unique_ptr<EmbeddedChain> ec;  // destroyed before the factories
};

TEST_F(FilterChainTest, NewConnectionAndReadRunFirstToLast) {
  add("A", bytesFilter());
  add("B", bytesFilter());
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  EXPECT_EQ(log, (Events{"A:new", "B:new", "T:new"}));
  log.clear();
  ec->feed("abc");
  EXPECT_EQ(log, (Events{"A:data", "B:data", "T:data"}));
  EXPECT_EQ(probe(2).received, "abc");
  EXPECT_EQ(ec->inputLength(), 0u);
}

TEST_F(FilterChainTest, EndOfStreamReachesTheFilters) {
  add("A", bytesFilter());
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  log.clear();
  ec->feed("last");
  ec->feedEof();
  EXPECT_EQ(log, (Events{"A:data", "T:data", "A:data:eos", "T:data:eos"}));
  EXPECT_EQ(probe(1).received, "last");
  EXPECT_FALSE(ec->closed());
}

TEST_F(FilterChainTest, StopIterationInOnDataHidesTheArrivalFromLaterFilters) {
  add("A", bytesFilter());
  add("B", bytesFilter(), [](Probe& p) {
    p.on_data = [](Probe&, evbuffer*, bool) { return FilterStatus::kStopIteration; };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  log.clear();
  ec->feed("x");
  ec->feed("y");
  EXPECT_EQ(log, (Events{"A:data", "B:data", "A:data", "B:data"}));
  EXPECT_EQ(probe(2).received, "");
  EXPECT_EQ(ec->inputLength(), 2u);  // nobody consumed the bytes
}

TEST_F(FilterChainTest, ContinueReadingResumesFromTheNextFilter) {
  add("A", bytesFilter());
  add("B", bytesFilter(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer*, bool) {
      return ++self.calls == 1 ? FilterStatus::kStopIteration : FilterStatus::kContinue;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  log.clear();
  ec->feed("held");
  EXPECT_EQ(log, (Events{"A:data", "B:data"}));
  probe(1).cb().continueReading();
  // A and B are not run again: iteration resumes after B.
  EXPECT_EQ(log, (Events{"A:data", "B:data", "T:data"}));
  EXPECT_EQ(probe(2).received, "held");
}

TEST_F(FilterChainTest, StopInOnNewConnectionHoldsDataUntilContinueReading) {
  add("A", bytesFilter());
  add("B", bytesFilter(),
      [](Probe& p) { p.on_new = [](Probe&) { return FilterStatus::kStopIteration; }; });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  EXPECT_EQ(log, (Events{"A:new", "B:new"}));  // T waits
  ec->feed("early ");
  ec->feed("bytes");
  ec->feedEof();
  EXPECT_EQ(log, (Events{"A:new", "B:new"}));  // no data reaches anyone yet
  EXPECT_EQ(ec->inputLength(), 11u);
  probe(1).cb().continueReading();
  // T's onNewConnection runs, then the held bytes (with the half-close)
  // are delivered from the first filter.
  EXPECT_EQ(log, (Events{"A:new", "B:new", "T:new", "A:data:eos", "B:data:eos", "T:data:eos"}));
  EXPECT_EQ(probe(2).received, "early bytes");
}

TEST_F(FilterChainTest, CodecPassesFramesToFrameFiltersInOrder) {
  addCodec();
  add("F1", framesFilter());
  add("F2", framesFilter());
  add("T", framesTerminal(), [](Probe& p) { p.on_frame = takePayload; });
  start();
  log.clear();
  ec->feed(encodeClientFrame(1, 0, "one") + encodeClientFrame(2, 0, "two"));
  EXPECT_EQ(log, (Events{"codec:data", "F1:frame:1", "F2:frame:1", "T:frame:1", "F1:frame:2",
                         "F2:frame:2", "T:frame:2"}));
  EXPECT_EQ(probe(3).payloads, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(ec->inputLength(), 0u);
}

// stage(): awaiting the first frame until the codec passes one, then
// established for good; the bytes filter before the codec sees it too.
TEST_F(FilterChainTest, StageTurnsEstablishedWithTheFirstFramePassed) {
  add("B", bytesFilter());
  addCodec();
  add("T", framesTerminal(), [](Probe& p) { p.on_frame = takePayload; });
  start();
  EXPECT_EQ(probe(0).cb().stage(), ConnectionStage::kAwaitingFirstFrame);
  std::string frame = encodeClientFrame(1, 0, "one");
  ec->feed(frame.substr(0, 5));  // a partial frame is not a completed one
  EXPECT_EQ(probe(0).cb().stage(), ConnectionStage::kAwaitingFirstFrame);
  ec->feed(frame.substr(5));
  EXPECT_EQ(probe(0).cb().stage(), ConnectionStage::kEstablished);
  EXPECT_EQ(ec->chain().stage(), ConnectionStage::kEstablished);
}

// A chain without a codec never knows whether a frame completed.
TEST_F(FilterChainTest, StageOfAChainWithoutCodecIsNoCodec) {
  add("A", bytesFilter());
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  ec->feed(encodeClientFrame(1, 0, "one"));
  EXPECT_EQ(probe(0).cb().stage(), ConnectionStage::kNoCodec);
}

TEST_F(FilterChainTest, FrameSplitAcrossReadsIsPassedOnceComplete) {
  addCodec();
  add("T", framesTerminal(), [](Probe& p) { p.on_frame = takePayload; });
  start();
  log.clear();
  std::string bytes = encodeClientFrame(5, 0, "split payload");
  ec->feed(bytes.substr(0, 3));
  ec->feed(bytes.substr(3, 9));
  EXPECT_TRUE(probe(1).payloads.empty());
  ec->feed(bytes.substr(12));
  EXPECT_EQ(probe(1).payloads, (std::vector<std::string>{"split payload"}));
  EXPECT_EQ(log, (Events{"codec:data", "codec:data", "codec:data", "T:frame:5"}));
}

TEST_F(FilterChainTest, StopIterationOnAFrameHidesItFromLaterFilters) {
  addCodec();
  add("F1", framesFilter(), [](Probe& p) {
    p.on_frame = [](Probe&, Frame& f) {
      return f.header.msg_id == 7 ? FilterStatus::kStopIteration : FilterStatus::kContinue;
    };
  });
  add("F2", framesFilter());
  add("T", framesTerminal(), [](Probe& p) { p.on_frame = takePayload; });
  start();
  log.clear();
  ec->feed(encodeClientFrame(7, 0, "secret") + encodeClientFrame(8, 0, "ok"));
  EXPECT_EQ(log, (Events{"codec:data", "F1:frame:7", "F1:frame:8", "F2:frame:8", "T:frame:8"}));
  // F1 took frame 7 without consuming it: its payload was dropped, so
  // frame 8 decoded cleanly behind it.
  EXPECT_EQ(probe(3).payloads, (std::vector<std::string>{"ok"}));
  EXPECT_EQ(ec->inputLength(), 0u);
}

TEST_F(FilterChainTest, UnconsumedPayloadIsDropped) {
  addCodec();
  add("T", framesTerminal(), [](Probe& p) {
    p.on_frame = [](Probe& self, Frame& f) {
      std::string peek(f.payloadLength(), '\0');
      peek.resize(f.peekPayload(peek.data(), peek.size()));
      self.payloads.push_back(peek);
      return FilterStatus::kContinue;  // neither moved nor discarded
    };
  });
  start();
  ec->feed(encodeClientFrame(1, 0, "aaaa") + encodeClientFrame(2, 0, "") +
           encodeClientFrame(3, 0, "cc"));
  EXPECT_EQ(probe(1).payloads, (std::vector<std::string>{"aaaa", "", "cc"}));
  EXPECT_EQ(ec->inputLength(), 0u);
}

TEST_F(FilterChainTest, WriteFrameFromTheTerminalRunsLastToFirst) {
  addCodec();
  add("F1", framesFilter(), [](Probe& p) {
    p.on_write_frame = [](Probe&, Frame& f) {
      f.header.msg_id = 100;  // filters may rewrite the header on the way out
      return FilterStatus::kContinue;
    };
  });
  add("F2", framesFilter());
  add("T", framesTerminal(), [](Probe& p) {
    p.on_frame = [](Probe& self, Frame& f) {
      f.discardPayload();
      self.cb().sendFrame(99, 0, "pong");
      return FilterStatus::kStopIteration;
    };
  });
  start();
  log.clear();
  ec->feed(encodeClientFrame(1, 0, "ping"));
  EXPECT_EQ(log, (Events{"codec:data", "F1:frame:1", "F2:frame:1", "T:frame:1", "F2:write:99",
                         "F1:write:99", "codec:write:100"}));
  EXPECT_EQ(ec->takeOutput(), encodeClientFrame(100, 0, "pong"));
}

TEST_F(FilterChainTest, FrameWrittenMidChainOnlyPassesTheFiltersBeforeIt) {
  addCodec();
  add("F1", framesFilter(), [](Probe& p) {
    p.on_frame = [](Probe& self, Frame& f) {
      f.discardPayload();
      self.cb().sendFrame(500, 0, "denied");  // answer the client itself
      return FilterStatus::kStopIteration;
    };
  });
  add("F2", framesFilter());
  add("T", framesTerminal());
  start();
  log.clear();
  ec->feed(encodeClientFrame(1, 0, "request"));
  EXPECT_EQ(log, (Events{"codec:data", "F1:frame:1", "codec:write:500"}));
  EXPECT_EQ(ec->takeOutput(), encodeClientFrame(500, 0, "denied"));
}

TEST_F(FilterChainTest, ABytesFilterBeforeTheCodecObservesAndRefusesDecodedFrames) {
  // O sits before the codec (as ip_limiter does) and observes every decoded
  // frame; it refuses msg_id 7 with a frame of its own, which the codec
  // encodes and O's own write observer then sees (as a transformer below
  // the codec would wrap it).
  add("O", bytesFilter(true), [](Probe& p) {
    p.on_new = [](Probe& self) {
      self.calls = self.cb().observeFrames() ? 1 : 0;
      return FilterStatus::kContinue;
    };
    p.on_decoded = [](Probe& self, Frame& f) {
      if (f.header.msg_id != 7) return FilterStatus::kContinue;
      self.cb().sendFrame(500, 0, "refused");
      return FilterStatus::kStopIteration;
    };
    p.on_write_data = [](Probe&, evbuffer* data, bool) {
      evbuffer_add(data, "[o]", 3);
      return FilterStatus::kContinue;
    };
  });
  addCodec();
  add("F1", framesFilter(), [](Probe& p) {
    p.on_new = [](Probe& self) {
      self.calls = self.cb().observeFrames() ? 1 : 0;  // after the codec: refused
      return FilterStatus::kContinue;
    };
  });
  add("T", framesTerminal(), [](Probe& p) { p.on_frame = takePayload; });
  start();
  EXPECT_EQ(probe(0).calls, 1);
  EXPECT_EQ(probe(2).calls, 0);
  log.clear();
  ec->feed(encodeClientFrame(7, 0, "flood") + encodeClientFrame(8, 0, "ok"));
  // The test codec writes a frame's header and payload as two writes.
  EXPECT_EQ(log, (Events{"O:data", "codec:data", "O:decoded:7", "codec:write:500", "O:writedata",
                         "O:writedata", "O:decoded:8", "F1:frame:8", "T:frame:8"}));
  EXPECT_EQ(probe(3).payloads, (std::vector<std::string>{"ok"}));
  std::string refusal = encodeClientFrame(500, 0, "refused");
  EXPECT_EQ(ec->takeOutput(), refusal.substr(0, 8) + "[o]" + refusal.substr(8) + "[o]");
  EXPECT_EQ(ec->inputLength(), 0u);  // the refused frame's payload was dropped
  EXPECT_EQ(ec->chain().framesIn(), 2u);
}

TEST_F(FilterChainTest, ObserveFramesWithoutACodecIsRefused) {
  add("O", bytesFilter(), [](Probe& p) {
    p.on_new = [](Probe& self) {
      self.calls = self.cb().observeFrames() ? 1 : 2;
      return FilterStatus::kContinue;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  EXPECT_EQ(probe(0).calls, 2);
  ec->feed(encodeClientFrame(1, 0, "x"));
  EXPECT_EQ(probe(1).received, encodeClientFrame(1, 0, "x"));
}

TEST_F(FilterChainTest, StopIterationOnTheWritePathTakesTheFrame) {
  addCodec();
  add("F1", framesFilter());
  add("F2", framesFilter(), [](Probe& p) {
    p.on_write_frame = [](Probe&, Frame&) { return FilterStatus::kStopIteration; };
  });
  add("T", framesTerminal(), [](Probe& p) {
    p.on_frame = [](Probe& self, Frame& f) {
      f.discardPayload();
      self.cb().sendFrame(2, 0, "swallowed");
      return FilterStatus::kStopIteration;
    };
  });
  start();
  log.clear();
  ec->feed(encodeClientFrame(1, 0, ""));
  EXPECT_EQ(log, (Events{"codec:data", "F1:frame:1", "F2:frame:1", "T:frame:1", "F2:write:2"}));
  EXPECT_EQ(ec->takeOutput(), "");
}

TEST_F(FilterChainTest, ObservingBytesFiltersSeeWritesLastToFirst) {
  auto tag = [](const char* text) {
    return [text](Probe&, evbuffer* data, bool) {
      evbuffer_add(data, text, std::strlen(text));
      return FilterStatus::kContinue;
    };
  };
  add("O1", bytesFilter(true), [&](Probe& p) { p.on_write_data = tag("[o1]"); });
  add("N", bytesFilter(false));  // does not observe writes: skipped
  add("O2", bytesFilter(true), [&](Probe& p) { p.on_write_data = tag("[o2]"); });
  add("T", bytesTerminal(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer* data, bool) {
      std::string in = drainAll(data);
      self.cb().writeBytes(in.data(), in.size());
      return FilterStatus::kStopIteration;
    };
  });
  start();
  log.clear();
  ec->feed("hi");
  EXPECT_EQ(log,
            (Events{"O1:data", "N:data", "O2:data", "T:data", "O2:writedata", "O1:writedata"}));
  EXPECT_EQ(ec->takeOutput(), "hi[o2][o1]");
}

// A flushing close or a half-close from a filter gives the observing bytes
// filters before it one last write (end_stream, empty buffer) whose bytes go
// out ahead of the close; every observer gets it even when a later one
// stopped; it happens once per connection; an abort skips it.
TEST_F(FilterChainTest, FlushingCloseGivesObserversTheEndOfTheWriteStream) {
  auto end = [](const char* text, FilterStatus status) {
    return [text, status](Probe& p, evbuffer* data, bool eos) {
      if (eos) {
        ++p.calls;
        EXPECT_EQ(evbuffer_get_length(data), 0u);
        evbuffer_add(data, text, std::strlen(text));
      }
      return status;
    };
  };
  add("O1", bytesFilter(true),
      [&](Probe& p) { p.on_write_data = end("<o1 end>", FilterStatus::kContinue); });
  add("O2", bytesFilter(true),
      [&](Probe& p) { p.on_write_data = end("<o2 end>", FilterStatus::kStopIteration); });
  add("T", bytesTerminal(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer* data, bool) {
      std::string in = drainAll(data);
      self.cb().shutdownWrite();
      self.cb().close(CloseReason::kLocalClosed, in, Connection::CloseMode::kFlush);
      return FilterStatus::kStopIteration;
    };
  });
  start();
  ec->feed("bye");
  EXPECT_TRUE(ec->closed());
  EXPECT_EQ(probe(0).calls, 1);  // once: the half-close, not again at the close
  EXPECT_EQ(probe(1).calls, 1);
  EXPECT_EQ(ec->takeOutput(), "<o1 end>");  // O2 took its own bytes (kStopIteration)
}

TEST_F(FilterChainTest, AbortGivesObserversNoEndOfTheWriteStream) {
  add("O1", bytesFilter(true), [&](Probe& p) {
    p.on_write_data = [](Probe& self, evbuffer*, bool eos) {
      if (eos) ++self.calls;
      return FilterStatus::kContinue;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer*, bool) {
      self.cb().close(CloseReason::kLocalClosed, "abort", Connection::CloseMode::kAbort);
      return FilterStatus::kStopIteration;
    };
  });
  start();
  ec->feed("x");
  EXPECT_TRUE(ec->closed());
  EXPECT_EQ(probe(0).calls, 0);
}

TEST_F(FilterChainTest, FramesEncodedAboveAnObservingBytesFilterKeepTheirLayout) {
  add("O", bytesFilter(true), [](Probe& p) {
    p.on_write_data = [](Probe& self, evbuffer* data, bool) {
      self.received += drainAll(data);  // pass a copy on, keep one
      self.cb().connection().write(self.received.data(), self.received.size());
      self.received.clear();
      return FilterStatus::kStopIteration;
    };
  });
  addCodec();
  add("T", framesTerminal(), [](Probe& p) {
    p.on_frame = [](Probe& self, Frame& f) {
      f.discardPayload();
      self.cb().sendFrame(7, 0, "payload bytes");
      return FilterStatus::kStopIteration;
    };
  });
  start();
  ec->feed(encodeClientFrame(1, 0, "x"));
  // Header first, then the payload: the codec's two writes stay in order
  // through the observing filter's staging buffer.
  EXPECT_EQ(ec->takeOutput(), encodeClientFrame(7, 0, "payload bytes"));
}

TEST_F(FilterChainTest, CloseMidChainStopsIterationAndClosesEveryFilterOnce) {
  add("A", bytesFilter());
  add("B", bytesFilter(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer*, bool) {
      self.cb().close(CloseReason::kFilterError, "bad input");
      return FilterStatus::kContinue;  // iteration must stop anyway
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  log.clear();
  ec->feed("x");
  EXPECT_EQ(log, (Events{"A:data", "B:data", "T:closing:filter_error", "B:closing:filter_error",
                         "A:closing:filter_error", "A:close:filter_error", "B:close:filter_error",
                         "T:close:filter_error"}));
  EXPECT_TRUE(ec->closed());
  EXPECT_EQ(ec->closeReason(), CloseReason::kFilterError);
  EXPECT_EQ(ec->closeDetail(), "bad input");
  // Closing again and more input change nothing.
  probe(0).cb().close(CloseReason::kIdleTimeout, "again");
  ec->feed("more");
  ec->feedEof();
  EXPECT_EQ(ec->closeCount(), 1);
  EXPECT_EQ(ec->closeReason(), CloseReason::kFilterError);
  EXPECT_EQ(log.size(), 8u);
}

// A flushing close runs every filter's onClosing, last to first, before the
// socket closes: what they write there passes the observing filters before
// them and reaches the client; a close() from onClosing only starts the close
// (the first reason wins); it runs once; an abort skips it.
TEST_F(FilterChainTest, OnClosingRunsLastToFirstAndItsWritesGoOut) {
  add("O", bytesFilter(true), [](Probe& p) {
    p.on_write_data = [](Probe&, evbuffer* data, bool) {
      evbuffer_add(data, "]", 1);
      return FilterStatus::kContinue;
    };
    p.on_closing = [](Probe& self) { self.cb().writeBytes("O-bye", 5); };
  });
  add("W", bytesFilter(), [](Probe& p) {
    p.on_closing = [](Probe& self) {
      self.cb().writeBytes("W-bye", 5);
      self.cb().close(CloseReason::kFilterError, "from onClosing");
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  log.clear();
  probe(2).cb().writeBytes("data", 4);
  probe(2).cb().close(CloseReason::kKicked, "kick", Connection::CloseMode::kFlush);
  EXPECT_EQ(log, (Events{"O:writedata", "T:closing:kicked", "W:closing:kicked", "O:writedata",
                         "O:closing:kicked", "O:writedata", "O:close:kicked", "W:close:kicked",
                         "T:close:kicked"}));
  // The last "]": O's onWriteData at the end of the write stream (eos, after
  // every onClosing), which this probe tags like any write.
  EXPECT_EQ(ec->takeOutput(), "data]W-bye]O-bye]");
  EXPECT_EQ(ec->closeReason(), CloseReason::kKicked);
  EXPECT_EQ(ec->closeCount(), 1);
}

// Observers that only prefix writes (onWritePrefix) see each write whole —
// a gather write's head and payload as one — with the prefixes of the
// observers after them in front; the first that declines (kNoPrefix) gets the
// write staged through onWriteData, as do the observers before it, and the
// ones after it are not asked again.
TEST_F(FilterChainTest, PrefixObserversAndGatherWrites) {
  auto tag = [](const char* text) {
    return [text](Probe&, evbuffer* data, bool) {
      evbuffer_add(data, text, std::strlen(text));
      return FilterStatus::kContinue;
    };
  };
  bool lower_declines = false;
  add("X", bytesFilter(true), [&](Probe& p) {
    p.on_write_data = tag("[x]");
    p.on_write_prefix = [&](Probe&, const std::string&) -> std::string {
      return lower_declines ? "-" : "<x>";
    };
  });
  add("P", bytesFilter(true), [&](Probe& p) {
    p.on_write_data = tag("[p]");
    p.on_write_prefix = [](Probe&, const std::string& w) -> std::string {
      return w.size() > 20 ? "-" : "<" + std::to_string(w.size()) + ">";
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  FilterCallbacks& t = probe(2).cb();
  evbuffer* src = evbuffer_new();
  evbuffer_add(src, "payloadTAIL", 11);
  log.clear();
  t.writeBytes("head:", 5, src, 7);  // one write: "head:payload"
  EXPECT_EQ(log, (Events{"P:prefix:head:payload", "X:prefix:<12>head:payload"}));
  EXPECT_EQ(ec->takeOutput(), "<x><12>head:payload");
  EXPECT_EQ(drainAll(src), "TAIL");
  // P declines a long write: staged through P's and X's onWriteData.
  log.clear();
  t.writeBytes("a write longer than twenty bytes", 32);
  EXPECT_EQ(log, (Events{"P:prefix:a write longer than twenty bytes", "P:writedata", "X:writedata"}));
  EXPECT_EQ(ec->takeOutput(), "a write longer than twenty bytes[p][x]");
  // X declines after P prefixed: only X's onWriteData runs, on P's output.
  lower_declines = true;
  log.clear();
  evbuffer_add(src, "pay", 3);
  t.writeBytes(src, 3);
  EXPECT_EQ(log, (Events{"P:prefix:pay", "X:prefix:<3>pay", "X:writedata"}));
  EXPECT_EQ(ec->takeOutput(), "<3>pay[x]");
  evbuffer_free(src);
}

// Without observing filters a gather write goes straight to the output.
TEST_F(FilterChainTest, GatherWriteWithoutObservers) {
  add("A", bytesFilter());
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  evbuffer* src = evbuffer_new();
  evbuffer_add(src, "bodyrest", 8);
  probe(1).cb().writeBytes("hd", 2, src, 4);
  probe(1).cb().writeBytes("x", 1, nullptr, 0);
  EXPECT_EQ(ec->takeOutput(), "hdbodyx");
  EXPECT_EQ(drainAll(src), "rest");
  evbuffer_free(src);
}

TEST_F(FilterChainTest, OnClosingIsSkippedOnAbort) {
  add("A", bytesFilter(), [](Probe& p) {
    p.on_closing = [](Probe& self) { self.cb().writeBytes("bye", 3); };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  log.clear();
  probe(1).cb().close(CloseReason::kKicked, "kick", Connection::CloseMode::kAbort);
  EXPECT_EQ(log, (Events{"A:close:kicked", "T:close:kicked"}));
  EXPECT_EQ(ec->takeOutput(), "");
}

TEST_F(FilterChainTest, CloseFromAFrameFilterStopsTheFrameAndTheCodec) {
  addCodec();
  add("F1", framesFilter(), [](Probe& p) {
    p.on_frame = [](Probe& self, Frame&) {
      self.cb().close(CloseReason::kMalformedFrame, "bad frame");
      return FilterStatus::kContinue;
    };
  });
  add("T", framesTerminal());
  start();
  log.clear();
  ec->feed(encodeClientFrame(1, 0, "a") + encodeClientFrame(2, 0, "b"));
  EXPECT_EQ(log, (Events{"codec:data", "F1:frame:1", "T:closing:malformed_frame",
                         "F1:closing:malformed_frame", "codec:closing:malformed_frame",
                         "codec:close:malformed_frame", "F1:close:malformed_frame",
                         "T:close:malformed_frame"}));
  EXPECT_EQ(ec->closeReason(), CloseReason::kMalformedFrame);
  EXPECT_EQ(ec->closeCount(), 1);
}

// A value one filter publishes for later ones.
struct TestSession {
  uint64_t id = 0;
};
struct NeverPublished {};

class Publisher : public Filter {
 public:
  FilterStatus onNewConnection() override {
    session_.id = 42;
    EXPECT_TRUE(callbacks().slots().set(&session_));
    return FilterStatus::kContinue;
  }
  TestSession session_;
};

class SlotReader : public Filter {
 public:
  FilterStatus onData(evbuffer* data, bool) override {
    seen = callbacks().slots().get<TestSession>();
    missing = callbacks().slots().get<NeverPublished>();
    evbuffer_drain(data, evbuffer_get_length(data));
    return FilterStatus::kStopIteration;
  }
  TestSession* seen = nullptr;
  NeverPublished* missing = reinterpret_cast<NeverPublished*>(1);
};

TEST(FilterChainSlotsTest, AFilterReadsWhatAnEarlierOnePublished) {
  test::FunctionFilterFactory pub([] { return std::make_unique<Publisher>(); });
  test::FunctionFilterFactory reader([] { return std::make_unique<SlotReader>(); });
  EmbeddedChain ec({{&pub, bytesFilter()}, {&reader, bytesTerminal()}});
  ec.feed("go");
  auto& r = ec.filter<SlotReader>(1);
  ASSERT_NE(r.seen, nullptr);
  EXPECT_EQ(r.seen, &ec.filter<Publisher>(0).session_);
  EXPECT_EQ(r.seen->id, 42u);
  EXPECT_EQ(r.missing, nullptr);
  EXPECT_EQ(ec.chain().slots().get<TestSession>(), r.seen);
}

TEST_F(FilterChainTest, ReadDisableHoldsBytesAndRedeliversThemOnResume) {
  add("A", bytesFilter(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer*, bool) {
      if (++self.calls > 1) return FilterStatus::kContinue;
      self.cb().readDisable(true);  // e.g. waiting for a lookup
      return FilterStatus::kStopIteration;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  log.clear();
  ec->feed("abc");
  EXPECT_TRUE(probe(0).cb().readDisabled());
  EXPECT_FALSE(ec->connection().readEnabled());
  ec->feed("def");  // not read while paused
  ec->runFor(std::chrono::milliseconds(10));
  EXPECT_EQ(log, (Events{"A:data"}));
  EXPECT_EQ(ec->inputLength(), 6u);

  // Counted: two disables need two enables.
  probe(0).cb().readDisable(true);
  probe(0).cb().readDisable(false);
  ec->runFor(std::chrono::milliseconds(10));
  EXPECT_TRUE(probe(0).cb().readDisabled());
  EXPECT_EQ(log, (Events{"A:data"}));

  probe(0).cb().readDisable(false);
  EXPECT_FALSE(probe(0).cb().readDisabled());
  EXPECT_EQ(log, (Events{"A:data"}));  // redelivery happens on a later loop turn
  ASSERT_TRUE(ec->runUntil([&] { return probe(1).received.size() == 6; }));
  EXPECT_EQ(log, (Events{"A:data", "A:data", "T:data"}));
  EXPECT_EQ(probe(1).received, "abcdef");
}

TEST_F(FilterChainTest, WatermarksAreReportedToEveryFilter) {
  add("A", bytesFilter());
  add("T", bytesTerminal(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer* data, bool) {
      std::string in = drainAll(data);
      self.cb().writeBytes(in.data(), in.size());
      return FilterStatus::kStopIteration;
    };
  });
  OutputLimits limits;
  limits.high_watermark = 1024;
  limits.low_watermark = 256;
  limits.max_bytes = 1 << 20;
  start(limits);
  log.clear();
  ec->feed(std::string(1000, 'a'));
  EXPECT_EQ(log, (Events{"A:data", "T:data"}));
  ec->feed(std::string(100, 'b'));  // 1100 buffered > 1024
  EXPECT_EQ(log, (Events{"A:data", "T:data", "A:data", "T:data", "A:above", "T:above"}));
  log.clear();
  EXPECT_EQ(ec->takeOutput().size(), 1100u);  // the client read it all
  EXPECT_EQ(log, (Events{"A:below", "T:below"}));
  log.clear();
  ec->feed("c");  // under the low watermark already: no new report
  EXPECT_EQ(log, (Events{"A:data", "T:data"}));
  EXPECT_FALSE(ec->closed());
}

TEST_F(FilterChainTest, OutputPastMaxBytesClosesWithOutputOverflow) {
  add("A", bytesFilter());
  add("T", bytesTerminal(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer* data, bool) {
      std::string in = drainAll(data);
      std::string reply(in.size() * 1000, 'r');  // 1000x amplification
      self.cb().writeBytes(reply.data(), reply.size());
      return FilterStatus::kStopIteration;
    };
  });
  OutputLimits limits;
  limits.high_watermark = 1024;
  limits.low_watermark = 256;
  limits.max_bytes = 4096;
  start(limits);
  ec->feed("abc");  // 3000 bytes: over the high watermark, under the bound
  EXPECT_FALSE(ec->closed());
  EXPECT_EQ(ec->outputLength(), 3000u);
  log.clear();
  ec->feed("de");  // 5000 bytes > 4096
  ASSERT_TRUE(ec->closed());
  EXPECT_EQ(ec->closeReason(), CloseReason::kOutputOverflow);
  EXPECT_EQ(ec->closeDetail(), "client output buffer 5000 bytes exceeds 4096");
  EXPECT_EQ(log,
            (Events{"A:data", "T:data", "A:close:output_overflow", "T:close:output_overflow"}));
  EXPECT_EQ(ec->closeCount(), 1);
}

TEST_F(FilterChainTest, TimersRunDuringRunFor) {
  add("T", bytesTerminal(), [](Probe& p) {
    p.on_new = [](Probe& self) {
      auto timer = std::make_shared<Timer>(
          self.cb().dispatcher(), [&self] { self.cb().close(CloseReason::kIdleTimeout, "idle"); });
      timer->enable(std::chrono::milliseconds(20));
      self.on_data = [timer](Probe&, evbuffer*, bool) { return FilterStatus::kStopIteration; };
      return FilterStatus::kContinue;
    };
  });
  start();
  EXPECT_FALSE(ec->closed());
  ASSERT_TRUE(ec->runUntil([&] { return ec->closed(); }, std::chrono::seconds(2)));
  EXPECT_EQ(ec->closeReason(), CloseReason::kIdleTimeout);
}

// A bytes transformer for tests (passData): upper-cases what it reads into
// its own buffer and hands that on; lower-cases what is written through it,
// in place.
class Upper : public Probe {
 public:
  using Probe::Probe;
  ~Upper() override { evbuffer_free(out_); }
  FilterStatus onData(evbuffer* data, bool end_stream) override {
    log(end_stream ? ":data:eos" : ":data");
    std::string s = drainAll(data);
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    evbuffer_add(out_, s.data(), s.size());
    if (evbuffer_get_length(out_) > 0 || end_stream) callbacks().passData(out_, end_stream);
    return FilterStatus::kStopIteration;
  }
  FilterStatus onWriteData(evbuffer* data, bool) override {
    log(":writedata");
    std::string s = drainAll(data);
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    evbuffer_add(data, s.data(), s.size());
    return FilterStatus::kContinue;
  }
  size_t buffered() const { return evbuffer_get_length(out_); }

 private:
  evbuffer* out_ = evbuffer_new();
};

TEST_F(FilterChainTest, TransformerPassesItsOwnBufferToLaterFilters) {
  std::vector<Upper*> uppers;
  factories_.push_back(std::make_unique<test::FunctionFilterFactory>([&]() -> std::unique_ptr<Filter> {
    auto u = std::make_unique<Upper>("U", &log);
    uppers.push_back(u.get());
    return u;
  }));
  elements_.push_back({factories_.back().get(), bytesFilter(true)});
  addCodec();
  add("T", framesTerminal(), [](Probe& p) {
    // Echo each frame's payload back toward the client.
    p.on_frame = [](Probe& self, Frame& f) {
      takePayload(self, f);
      self.cb().sendFrame(7, 0, self.payloads.back());
      return FilterStatus::kStopIteration;
    };
  });
  start();
  ASSERT_EQ(uppers.size(), 1u);
  // A frame split across two reads: the codec leaves the partial frame in
  // the transformer's buffer, not in the connection's input.
  std::string frame = encodeClientFrame(5, 0, "hello");
  for (auto& c : frame) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ec->feed(frame.substr(0, 10));
  EXPECT_EQ(ec->inputLength(), 0u);
  EXPECT_EQ(uppers[0]->buffered(), 10u);
  EXPECT_TRUE(probe(2).payloads.empty());
  ec->feed(frame.substr(10));
  ASSERT_EQ(probe(2).payloads.size(), 1u);
  EXPECT_EQ(probe(2).payloads[0], "HELLO");
  EXPECT_EQ(uppers[0]->buffered(), 0u);
  // The echo went down through the transformer's onWriteData.
  std::string out = ec->takeOutput();
  EXPECT_NE(out.find("hello"), std::string::npos) << out;
  EXPECT_EQ(out.find("HELLO"), std::string::npos) << out;
}

TEST_F(FilterChainTest, ContinueReadingAfterATransformerReadsItsBuffer) {
  factories_.push_back(std::make_unique<test::FunctionFilterFactory>(
      [&]() -> std::unique_ptr<Filter> { return std::make_unique<Upper>("U", &log); }));
  elements_.push_back({factories_.back().get(), bytesFilter()});
  add("B", bytesFilter(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer*, bool) {
      return ++self.calls == 1 ? FilterStatus::kStopIteration : FilterStatus::kContinue;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  ec->feed("held");
  EXPECT_EQ(probe(2).received, "");
  probe(1).cb().continueReading();
  EXPECT_EQ(probe(2).received, "HELD");
  EXPECT_EQ(ec->inputLength(), 0u);
}

// A transformer that decodes in place (as websocket does): upper-cases the
// bytes of its input that arrived since its last pass (passedLeft() says how
// many at the front are done) and passes the input buffer itself.
class InPlaceUpper : public Probe {
 public:
  using Probe::Probe;
  FilterStatus onData(evbuffer* data, bool end_stream) override {
    log(end_stream ? ":data:eos" : ":data");
    const size_t len = evbuffer_get_length(data);
    size_t done = callbacks().passedLeft();
    lefts.push_back(done);
    if (done > len) done = len;
    auto* p = evbuffer_pullup(data, -1);
    for (size_t i = done; i < len; ++i) p[i] = static_cast<unsigned char>(std::toupper(p[i]));
    if (len > 0 || end_stream) callbacks().passData(data, end_stream);
    return FilterStatus::kStopIteration;
  }
  std::vector<size_t> lefts;  // passedLeft() at each onData
};

// Takes `take` bytes per call (all when 0), or stops (kStopIteration without
// taking) while `hold` is set.
FilterStatus takeSome(Probe& p, evbuffer* data, bool) {
  if (p.calls < 0) return FilterStatus::kStopIteration;  // holding
  size_t n = evbuffer_get_length(data);
  if (p.payloads.size() == 1 && !p.payloads[0].empty()) {
    n = std::min(n, std::stoul(p.payloads[0]));
  }
  std::string s(n, '\0');
  if (n > 0) evbuffer_remove(data, s.data(), n);
  p.received += s;
  return FilterStatus::kStopIteration;
}

TEST_F(FilterChainTest, PassedLeftCountsWhatLaterFiltersLeftInThePassedBuffer) {
  std::vector<InPlaceUpper*> ts;
  factories_.push_back(std::make_unique<test::FunctionFilterFactory>([&]() -> std::unique_ptr<Filter> {
    auto u = std::make_unique<InPlaceUpper>("U", &log);
    ts.push_back(u.get());
    return u;
  }));
  elements_.push_back({factories_.back().get(), bytesFilter()});
  add("B", bytesFilter(), [](Probe& p) {
    p.on_data = [](Probe& self, evbuffer*, bool) {
      // Stops on its second call; continueReading() later lets T run.
      return ++self.calls == 2 ? FilterStatus::kStopIteration : FilterStatus::kContinue;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) {
    p.payloads = {"3"};  // takes 3 bytes per call
    p.on_data = takeSome;
  });
  start();
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_EQ(ts[0]->cb().passedLeft(), 0u);  // nothing passed yet
  ec->feed("abcde");
  EXPECT_EQ(probe(2).received, "ABC");
  EXPECT_EQ(ts[0]->cb().passedLeft(), 2u);  // "DE" left, already upper-cased
  EXPECT_EQ(ec->inputLength(), 2u);
  // B stops: T does not run; passedLeft follows what T left (still 2 + the
  // new bytes, all upper-cased now).
  ec->feed("fg");
  EXPECT_EQ(probe(2).received, "ABC");
  EXPECT_EQ(ts[0]->lefts.back(), 2u);
  EXPECT_EQ(ts[0]->cb().passedLeft(), 4u);
  // T runs behind the transformer's back (B's continueReading): passedLeft
  // is what it left then, so the next read is not mistaken for decoded bytes.
  probe(1).cb().continueReading();
  EXPECT_EQ(probe(2).received, "ABCDEF");
  EXPECT_EQ(ts[0]->cb().passedLeft(), 1u);
  ec->feed("hi");
  EXPECT_EQ(ts[0]->lefts.back(), 1u);
  EXPECT_EQ(probe(2).received, "ABCDEFGHI");
  EXPECT_EQ(ec->inputLength(), 0u);
}

// A transformer that decodes in place (passing the connection's input, the
// chain's unrecorded fast path) or, while `own` is set, like websocket's
// copy mode: moves the decoded bytes left in the input and the new ones into
// its own buffer and passes that.
class SwitchingUpper : public Probe {
 public:
  using Probe::Probe;
  ~SwitchingUpper() override { evbuffer_free(out_); }
  FilterStatus onData(evbuffer* data, bool end_stream) override {
    const size_t len = evbuffer_get_length(data);
    size_t done = in_place_ ? std::min(callbacks().passedLeft(), len) : 0;
    auto* p = evbuffer_pullup(data, -1);
    for (size_t i = done; i < len; ++i) p[i] = static_cast<unsigned char>(std::toupper(p[i]));
    if (own || evbuffer_get_length(out_) > 0) {
      in_place_ = false;
      evbuffer_add_buffer(out_, data);
      callbacks().passData(out_, end_stream);
    } else {
      in_place_ = true;
      if (len > 0 || end_stream) callbacks().passData(data, end_stream);
    }
    return FilterStatus::kStopIteration;
  }
  size_t buffered() const { return evbuffer_get_length(out_); }
  bool own = false;

 private:
  bool in_place_ = false;
  evbuffer* out_ = evbuffer_new();
};

TEST_F(FilterChainTest, InPlaceTransformerSwitchingToItsOwnBufferAndBack) {
  std::vector<SwitchingUpper*> ts;
  factories_.push_back(std::make_unique<test::FunctionFilterFactory>([&]() -> std::unique_ptr<Filter> {
    auto u = std::make_unique<SwitchingUpper>("U", &log);
    ts.push_back(u.get());
    return u;
  }));
  elements_.push_back({factories_.back().get(), bytesFilter()});
  add("B", bytesFilter(), [](Probe& p) {
    // Stops while calls is negative (held); continueReading() resumes T.
    p.on_data = [](Probe& self, evbuffer*, bool) {
      return self.calls < 0 ? FilterStatus::kStopIteration : FilterStatus::kContinue;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) {
    p.payloads = {"3"};  // takes 3 bytes per call
    p.on_data = takeSome;
  });
  start();
  ASSERT_EQ(ts.size(), 1u);
  SwitchingUpper& u = *ts[0];
  ec->feed("abcde");  // in place
  EXPECT_EQ(probe(2).received, "ABC");
  EXPECT_EQ(u.cb().passedLeft(), 2u);
  u.own = true;  // the decoded "DE" and the new "fg" move to its buffer
  ec->feed("fg");
  EXPECT_EQ(probe(2).received, "ABCDEF");
  EXPECT_EQ(ec->inputLength(), 0u);
  EXPECT_EQ(u.buffered(), 1u);
  EXPECT_EQ(u.cb().passedLeft(), 1u);  // what T left in its buffer
  u.own = false;
  ec->feed("hi");  // its buffer still holds "G": "GHI" from there, emptied
  EXPECT_EQ(probe(2).received, "ABCDEFGHI");
  EXPECT_EQ(u.buffered(), 0u);
  EXPECT_EQ(u.cb().passedLeft(), 0u);
  // In place again, with B holding: the later filters' input is the
  // connection's input once more, also when they resume on their own.
  probe(1).calls = -1;
  ec->feed("jklm");
  EXPECT_EQ(probe(2).received, "ABCDEFGHI");
  EXPECT_EQ(u.cb().passedLeft(), 4u);
  probe(1).calls = 0;
  probe(1).cb().continueReading();
  EXPECT_EQ(probe(2).received, "ABCDEFGHIJKL");
  EXPECT_EQ(u.cb().passedLeft(), 1u);  // "M", recorded on the resume
  EXPECT_EQ(ec->inputLength(), 1u);
  ec->feed("n");
  EXPECT_EQ(probe(2).received, "ABCDEFGHIJKLMN");
  EXPECT_EQ(u.cb().passedLeft(), 0u);
}

// An observing bytes filter makes the chain stage each write: small staged
// writes are copied into the output (the staging buffer keeps a byte of the
// last one to keep its chain), larger ones move; held writes, writes whose
// observer empties them and writes after a close all keep the order and
// content of what reaches the client.
TEST_F(FilterChainTest, StagedWritesThroughAnObserverKeepOrderAndContent) {
  add("O", bytesFilter(true), [](Probe& p) {
    p.on_write_data = [](Probe& self, evbuffer* data, bool) {
      // Tags each write, in place: "<" + bytes + ">", unless told to drop
      // ("drop") or hold ("hold": taken, released on the next write).
      std::string s = drainAll(data);
      if (s == "drop") return FilterStatus::kContinue;  // empty on kContinue
      if (s == "hold") {
        self.received += "<held>";
        return FilterStatus::kStopIteration;
      }
      std::string out = self.received + "<" + s + ">";
      self.received.clear();
      evbuffer_add(data, out.data(), out.size());
      return FilterStatus::kContinue;
    };
  });
  add("T", bytesTerminal(), [](Probe& p) { p.on_data = drainInto; });
  start();
  FilterCallbacks& t = probe(1).cb();
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    std::string piece(static_cast<size_t>(1 + (i * 53) % 700), static_cast<char>('a' + i % 26));
    if (i % 7 == 3) piece = std::string(FilterChain::kCopyMax + 10 + static_cast<size_t>(i), 'L');
    if (i % 2 == 0) {
      t.writeBytes(piece.data(), piece.size());
    } else {
      evbuffer* src = evbuffer_new();
      evbuffer_add(src, piece.data(), piece.size());
      evbuffer_add(src, "tail", 4);  // only `piece` is written
      t.writeBytes(src, piece.size());
      EXPECT_EQ(drainAll(src), "tail");
      evbuffer_free(src);
    }
    expected += "<" + piece + ">";
    if (i % 11 == 5) t.writeBytes("drop", 4);
    if (i % 13 == 6) {
      t.writeBytes("hold", 4);
      expected += "<held>";  // goes out with the next write
    }
    if (i % 17 == 0 && i % 13 != 6) {  // (not while a write is held)
      ASSERT_TRUE(ec->takeOutput() == expected) << "after write " << i;
      expected.clear();
    }
  }
  EXPECT_EQ(ec->takeOutput(), expected);
  t.close(CloseReason::kFilterError, "test", Connection::CloseMode::kAbort);
  t.writeBytes("late", 4);  // after the close: dropped, no crash
  EXPECT_EQ(ec->takeOutput().find("late"), std::string::npos);
}

}  // namespace
}  // namespace gw
