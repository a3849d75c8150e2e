// filters/tls/evbuffer_bio.h — an OpenSSL BIO that reads and writes evbuffers.
//
// Defines EvbufferBioIo (the two buffers one SSL object talks to) and
// newEvbufferBio() (a BIO over an EvbufferBioIo). This is the "memory BIO"
// of the tls filter: OpenSSL never touches the socket; the filter points
// `in` at the ciphertext it was handed (the connection's input, or the
// buffer of the filter before it) and `out` at a buffer whose contents it
// then sends with writeBytes() or puts in place of the plaintext in
// onWriteData. Unlike BIO_s_mem, no intermediate copy: OpenSSL's reads take
// bytes straight out of `in`, its writes append straight to `out`.
//
// A read with `in` null or empty, or a write with `out` null, fails with the
// retry flag set (SSL_ERROR_WANT_READ / WANT_WRITE), as a non-blocking
// socket would. The BIO_METHOD is created once per process (thread-safe
// static initialization) and never freed; a BIO is per connection and used
// on one thread.
#pragma once

#include <openssl/bio.h>

struct evbuffer;

namespace gw {
namespace tls {

struct EvbufferBioIo {
  evbuffer* in = nullptr;   // ciphertext from the client (drained by reads)
  evbuffer* out = nullptr;  // ciphertext toward the client (appended by writes)
};

// A new BIO over `io` (which must outlive it), or nullptr when OpenSSL is
// out of memory. Give it to SSL_set_bio(ssl, bio, bio): the SSL owns it.
BIO* newEvbufferBio(EvbufferBioIo* io);

}  // namespace tls
}  // namespace gw
