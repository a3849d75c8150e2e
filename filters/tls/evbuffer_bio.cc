#include "filters/tls/evbuffer_bio.h"

#include <event2/buffer.h>

namespace gw {
namespace tls {
namespace {

int bioWrite(BIO* b, const char* data, int len) {
  auto* io = static_cast<EvbufferBioIo*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (io == nullptr || io->out == nullptr) {
    BIO_set_retry_write(b);
    return -1;
  }
  if (len <= 0) return 0;
  if (evbuffer_add(io->out, data, static_cast<size_t>(len)) != 0) return -1;
  return len;
}

int bioRead(BIO* b, char* out, int len) {
  auto* io = static_cast<EvbufferBioIo*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  int n = (io == nullptr || io->in == nullptr) ? 0 : evbuffer_remove(io->in, out, static_cast<size_t>(len));
  if (n <= 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  return n;
}

long bioCtrl(BIO* b, int cmd, long /*num*/, void* /*ptr*/) {
  auto* io = static_cast<EvbufferBioIo*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // writes are complete when they return
    case BIO_CTRL_PENDING:
      return (io == nullptr || io->in == nullptr) ? 0 : static_cast<long>(evbuffer_get_length(io->in));
    case BIO_CTRL_WPENDING:
      return 0;
    default:
      return 0;
  }
}

int bioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int bioDestroy(BIO* b) {
  BIO_set_data(b, nullptr);
  return 1;
}

BIO_METHOD* makeMethod() {
  BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gateway evbuffer");
  if (m == nullptr) return nullptr;
  BIO_meth_set_write(m, bioWrite);
  BIO_meth_set_read(m, bioRead);
  BIO_meth_set_ctrl(m, bioCtrl);
  BIO_meth_set_create(m, bioCreate);
  BIO_meth_set_destroy(m, bioDestroy);
  return m;
}

}  // namespace

BIO* newEvbufferBio(EvbufferBioIo* io) {
  static BIO_METHOD* const method = makeMethod();
  if (method == nullptr) return nullptr;
  BIO* b = BIO_new(method);
  if (b != nullptr) BIO_set_data(b, io);
  return b;
}

}  // namespace tls
}  // namespace gw
