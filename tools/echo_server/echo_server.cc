// tools/echo_server — a TCP echo backend for tests and demos.
//
//   echo_server [--address 127.0.0.1:9000] [--quiet]
//
// Echoes every byte back on the same connection; honours half-close (a FIN
// from the client is answered with a FIN once everything was echoed).
// Prints "echo_server listening on ADDR" when ready.
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/address.h"

namespace {

bool g_quiet = false;

void onRead(bufferevent* bev, void*) {
  evbuffer* in = bufferevent_get_input(bev);
  evbuffer* out = bufferevent_get_output(bev);
  evbuffer_add_buffer(out, in);
}

void onWriteDone(bufferevent* bev, void*) {
  // Half-closed by the client and all echoed: close our side too.
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
      !(bufferevent_get_enabled(bev) & EV_READ)) {
    bufferevent_free(bev);
  }
}

void onEvent(bufferevent* bev, short what, void*) {
  if (what & BEV_EVENT_EOF) {
    bufferevent_disable(bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
      shutdown(bufferevent_getfd(bev), SHUT_WR);
      bufferevent_free(bev);
    } else {
      bufferevent_setcb(bev, onRead, onWriteDone, onEvent, nullptr);
    }
    return;
  }
  if (what & BEV_EVENT_ERROR) bufferevent_free(bev);
}

void onAccept(evconnlistener* l, evutil_socket_t fd, sockaddr*, int, void*) {
  event_base* base = evconnlistener_get_base(l);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(bev, onRead, nullptr, onEvent, nullptr);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void onSignal(evutil_socket_t, short, void* arg) {
  event_base_loopbreak(static_cast<event_base*>(arg));
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:9000";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--address" && i + 1 < argc) {
      address = argv[++i];
    } else if (a == "--quiet") {
      g_quiet = true;
    } else {
      std::fprintf(stderr, "usage: echo_server [--address IP:PORT] [--quiet]\n");
      return 2;
    }
  }
  std::string why;
  auto addr = gw::Address::parse(address, &why);
  if (!addr) {
    std::fprintf(stderr, "echo_server: --address: %s\n", why.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  event_base* base = event_base_new();
  evconnlistener* l = evconnlistener_new_bind(
      base, onAccept, nullptr, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
      addr->sockaddr_ptr(), static_cast<int>(addr->len()));
  if (l == nullptr) {
    std::fprintf(stderr, "echo_server: cannot listen on %s: %s\n", address.c_str(),
                 std::strerror(errno));
    return 1;
  }
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  getsockname(evconnlistener_get_fd(l), reinterpret_cast<sockaddr*>(&ss), &len);
  gw::Address bound(reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("echo_server listening on %s\n", bound.toString().c_str());
  std::fflush(stdout);
  event* sigterm = evsignal_new(base, SIGTERM, onSignal, base);
  event* sigint = evsignal_new(base, SIGINT, onSignal, base);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  event_base_dispatch(base);
  event_free(sigterm);
  event_free(sigint);
  evconnlistener_free(l);
  event_base_free(base);
  return 0;
}
