#include "core/sdk/frame.h"

#include <event2/buffer.h>

#include <algorithm>

namespace gw {

size_t Frame::peekPayload(void* dst, size_t n) const {
  if (consumed_) return 0;
  n = std::min(n, static_cast<size_t>(header.length));
  ev_ssize_t got = evbuffer_copyout(source_, dst, n);
  return got < 0 ? 0 : static_cast<size_t>(got);
}

void Frame::movePayloadTo(evbuffer* dst) {
  if (consumed_) return;
  if (header.length > 0) evbuffer_remove_buffer(source_, dst, header.length);
  consumed_ = true;
}

void Frame::discardPayload() {
  if (consumed_) return;
  if (header.length > 0) evbuffer_drain(source_, header.length);
  consumed_ = true;
}

}  // namespace gw
