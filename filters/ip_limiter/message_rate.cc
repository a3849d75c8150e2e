#include "filters/ip_limiter/message_rate.h"

#include <event2/buffer.h>

#include "core/sdk/wire.h"

namespace gw {
namespace ip_limiter {

MessageRateTracker::~MessageRateTracker() {
  detach();
  if (scratch_ != nullptr) evbuffer_free(scratch_);
}

void MessageRateTracker::attach(evbuffer* input) {
  detach();
  input_ = input;
  cb_ = evbuffer_add_cb(input, &MessageRateTracker::onChanged, this);
}

void MessageRateTracker::detach() {
  if (input_ != nullptr && cb_ != nullptr) evbuffer_remove_cb_entry(input_, cb_);
  cb_ = nullptr;
  input_ = nullptr;
}

void MessageRateTracker::onChanged(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  auto* self = static_cast<MessageRateTracker*>(arg);
  if (!self->editing_) self->appended_ += info->n_added;
}

void MessageRateTracker::copyHeader(uint64_t front, uint8_t* out, size_t n) {
  size_t from_saved = 0;
  if (next_hdr_ < front) {
    from_saved = static_cast<size_t>(front - next_hdr_);
    if (from_saved > n) from_saved = n;
    for (size_t i = 0; i < from_saved; ++i) out[i] = saved_[i];
  }
  size_t rest = n - from_saved;
  if (rest == 0) return;
  uint64_t at = next_hdr_ + from_saved - front;
  if (at == 0) {
    evbuffer_copyout(input_, out + from_saved, rest);
    return;
  }
  evbuffer_ptr p;
  evbuffer_ptr_set(input_, &p, static_cast<size_t>(at), EVBUFFER_PTR_SET);
  evbuffer_copyout_from(input_, &p, out + from_saved, rest);
}

void MessageRateTracker::removeRange(size_t offset, size_t n) {
  editing_ = true;
  if (offset == 0) {
    evbuffer_drain(input_, n);
  } else {
    if (scratch_ == nullptr) scratch_ = evbuffer_new();
    evbuffer_remove_buffer(input_, scratch_, offset);
    evbuffer_drain(input_, n);
    evbuffer_prepend_buffer(input_, scratch_);
  }
  editing_ = false;
}

MessageRateTracker::Result MessageRateTracker::scan(int64_t now_ns, DropSink* sink) {
  Result r;
  if (input_ == nullptr) return r;
  uint64_t len = evbuffer_get_length(input_);
  uint64_t added = appended_ < len ? appended_ : len;
  appended_ = 0;
  end_ += added;
  const uint64_t front = end_ - len;
  for (;;) {
    if (dropping_) {
      uint64_t a = drop_from_ > front ? drop_from_ : front;
      uint64_t b = drop_until_ < end_ ? drop_until_ : end_;
      if (b > a) {
        uint64_t n = b - a;
        removeRange(static_cast<size_t>(a - front), static_cast<size_t>(n));
        end_ -= n;
        drop_until_ -= n;
        next_hdr_ -= n;
      }
      drop_from_ = a;
      if (drop_until_ > end_) break;  // the rest of the frame has not arrived yet
      dropping_ = false;
    }
    if (next_hdr_ < front && front - next_hdr_ > saved_len_) {
      // Header bytes we never saw were consumed (a filter before us took
      // them): resynchronize at the buffer's start.
      next_hdr_ = front;
      saved_len_ = 0;
    }
    if (next_hdr_ + 4 > end_) {
      if (next_hdr_ < end_) {
        uint8_t tmp[4];
        size_t have = static_cast<size_t>(end_ - next_hdr_);
        copyHeader(front, tmp, have);
        for (size_t i = 0; i < have; ++i) saved_[i] = tmp[i];
        saved_len_ = static_cast<uint8_t>(have);
      }
      break;
    }
    uint8_t hdr[4];
    copyHeader(front, hdr, 4);
    uint16_t length = wire::getU16(hdr);
    uint16_t msg_id = wire::getU16(hdr + 2);
    uint64_t start = next_hdr_;
    next_hdr_ += wire::kClientHeaderSize + length;
    saved_len_ = 0;
    ++r.frames;
    if (bucket_.take(spec_, now_ns)) continue;
    if (action_ == Action::kClose) {
      r.exceeded = true;
      break;
    }
    ++r.dropped;
    if (sink != nullptr) sink->onFrameDropped(msg_id);
    dropping_ = true;
    drop_from_ = start;
    drop_until_ = next_hdr_;
  }
  return r;
}

}  // namespace ip_limiter
}  // namespace gw
