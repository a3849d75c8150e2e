// core/sdk/frame.h — a client frame in flight through the frames layer.
//
// Defines Frame: a decoded 8-byte client header plus a reference to its
// payload, which stays where it arrived (the first header.length bytes of an
// evbuffer: a client's input buffer on the read path, a backend's input
// buffer on the write path). Whoever forwards the frame moves the payload
// with movePayloadTo() — whole evbuffer chains move without copying — so
// passing a frame through the chain costs no heap allocation.
#pragma once

#include <cstddef>

#include "core/sdk/wire.h"

struct evbuffer;

namespace gw {

class Frame {
 public:
  // A frame whose payload is the first `header.length` bytes of `source`.
  Frame(const wire::ClientHeader& header, evbuffer* source) : header(header), source_(source) {}

  // The client header. Filters may rewrite msg_id/server_id; `length` must
  // keep matching the payload.
  wire::ClientHeader header;

  size_t payloadLength() const { return header.length; }
  // True once the payload was moved or discarded.
  bool consumed() const { return consumed_; }

  // Copies up to `n` payload bytes (from the start) into `dst` without
  // consuming them. Returns the number copied. Must not be consumed.
  size_t peekPayload(void* dst, size_t n) const;
  // Appends the payload to `dst` and marks the frame consumed.
  void movePayloadTo(evbuffer* dst);
  // Drops the payload (drains it from the source); marks consumed.
  void discardPayload();
  // Marks the payload consumed without touching the source, for a caller
  // that already took the first payloadLength() bytes out of source() itself
  // (the codec hands them to FilterCallbacks::writeBytes).
  void markConsumed() { consumed_ = true; }
  // The buffer whose first payloadLength() bytes are the payload.
  evbuffer* source() const { return source_; }

 private:
  evbuffer* source_;
  bool consumed_ = false;
};

}  // namespace gw
