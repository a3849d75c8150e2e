// test/integration/ops_test.h — helpers for the admin and operations tests.
//
// Defines a tiny blocking HTTP/1.0 client over a loopback socket
// (httpSend, httpRequest; adminPost with the test admin token, whose file
// testAdminTokenFile writes), readers for what the gateway logs (adminPort), a command
// runner (runCommand, e.g. promtool), polling (waitUntil), a JSON parse
// helper, a reader for one sample of the Prometheus text (metricValue), and
// config builders for a tcp_proxy gateway. Header-only; used by
// admin_test.cc and ops_test.cc.
#pragma once

#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"

namespace gw {
namespace test {

// One HTTP response. status 0: no response (connect or read failed).
struct HttpResponse {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
  // The value of header `name` (case-insensitive), or "".
  std::string header(const std::string& name) const {
    std::string lower_head = head, lower_name = name + ":";
    for (auto& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : lower_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t at = lower_head.find("\r\n" + lower_name);
    if (at == std::string::npos) return "";
    size_t start = at + 2 + lower_name.size();
    size_t end = head.find("\r\n", start);
    std::string v = head.substr(start, end - start);
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    return v;
  }
};

// Sends `method path` (HTTP/1.0) with exactly the header lines `headers`
// ("Name: value", no CRLF; a Content-Length is added for a body or a POST)
// and `body` to 127.0.0.1:`port`, and reads the whole response (the server
// closes after an HTTP/1.0 reply).
inline HttpResponse httpSend(uint16_t port, const std::string& method, const std::string& path,
                             const std::vector<std::string>& headers, const std::string& body = "",
                             Millis timeout = Millis(5000)) {
  HttpResponse r;
  UniqueFd fd = connectTcp(port, timeout);
  if (!fd.valid()) return r;
  std::string req = method + " " + path + " HTTP/1.0\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (method == "POST" || !body.empty())
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!sendAll(fd.get(), req)) return r;
  std::string raw;
  if (!recvUntilEof(fd.get(), timeout, &raw)) return r;
  size_t split = raw.find("\r\n\r\n");
  if (split == std::string::npos) return r;
  r.head = raw.substr(0, split);
  r.body = raw.substr(split + 4);
  // "HTTP/1.1 200 OK"
  size_t sp = r.head.find(' ');
  if (sp != std::string::npos) r.status = std::atoi(r.head.c_str() + sp + 1);
  return r;
}

// Sends `method path` (no body) with `Host: 127.0.0.1`, as curl on the pod
// would.
inline HttpResponse httpRequest(uint16_t port, const std::string& method, const std::string& path,
                                Millis timeout = Millis(5000)) {
  return httpSend(port, method, path, {"Host: 127.0.0.1"}, "", timeout);
}

// The admin bearer token of the test configs (at least 16 characters, as
// the loader requires).
inline constexpr char kTestAdminToken[] = "test-admin-token-0123456789abcdef";

// A file holding kTestAdminToken (and a newline, as `echo` writes it),
// written once per test process. Its path is admin.token_file in the test
// configs.
inline const std::string& testAdminTokenFile() {
  static const std::string path =
      writeTempFile(std::string(kTestAdminToken) + "\n", "admin-token-", ".txt");
  return path;
}

// The `admin` object of test configs: a free loopback port and the test
// token, so the mutating endpoints are enabled.
inline std::string testAdminJson() {
  return R"({"address": "127.0.0.1:0", "token_file": ")" + testAdminTokenFile() + R"("})";
}

// POSTs `path` (no body) with the test token, as an operator's curl would.
inline HttpResponse adminPost(uint16_t port, const std::string& path) {
  return httpSend(port, "POST", path,
                  {"Host: 127.0.0.1", std::string("Authorization: Bearer ") + kTestAdminToken});
}

// The port in the gateway's first log line containing `needle` followed by
// "IP:PORT" (e.g. "admin listening on "), waiting up to `timeout` for it.
// 0 if it never appears.
inline uint16_t loggedPort(GatewayProcess& gw, const std::string& needle,
                           Millis timeout = Millis(5000)) {
  if (!gw.process().waitForOutput(needle, timeout)) return 0;
  std::string out = gw.output();
  size_t at = out.find(needle) + needle.size();
  size_t end = out.find_first_of(" \r\n", at);
  std::string addr = out.substr(at, end - at);
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return 0;
  return static_cast<uint16_t>(std::atoi(addr.c_str() + colon + 1));
}

// The admin port from the gateway's "admin listening on 127.0.0.1:PORT"
// line, waiting up to `timeout` for it. 0 if it never appears.
inline uint16_t adminPort(GatewayProcess& gw, Millis timeout = Millis(5000)) {
  return loggedPort(gw, "admin listening on ", timeout);
}

// Polls `pred` every 20 ms until it is true or `timeout` passes.
inline bool waitUntil(const std::function<bool()>& pred, Millis timeout = Millis(5000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(Millis(20));
  }
  return true;
}

// Runs `argv` (argv[0] an absolute path), waits up to `timeout`, and returns
// its exit code (nullopt on timeout) with its output in *output.
inline std::optional<int> runCommand(const std::vector<std::string>& argv, std::string* output,
                                     Millis timeout = Millis(30000)) {
  Process p;
  std::string why;
  if (!p.start(argv, &why)) {
    *output = why;
    return std::nullopt;
  }
  auto code = p.wait(timeout);
  *output = p.output();
  return code;
}

// Parses `text` as JSON into *doc; returns false (and ADD_FAILURE-friendly
// text in *error) when it does not parse.
inline bool parseJson(const std::string& text, rapidjson::Document* doc,
                      std::string* error = nullptr) {
  doc->Parse(text.c_str(), text.size());
  if (doc->HasParseError()) {
    if (error) *error = "not JSON at offset " + std::to_string(doc->GetErrorOffset()) + ": " + text;
    return false;
  }
  return true;
}

// The value of the sample whose name and labels are exactly `series` (e.g.
// `game_gateway_config_reloads_total{result="ok"}`) in Prometheus text, or
// nullopt when absent.
inline std::optional<double> metricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, series.size(), series) == 0 && line.size() > series.size() &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

// Reads a whole file ("" if it cannot be read).
inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Overwrites a file with `contents`. Returns false on failure.
inline bool writeFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  return static_cast<bool>(out);
}

// A gateway config: one tcp_proxy listener "raw" on a free port (port 0)
// proxying to cluster "echo" at 127.0.0.1:`backend_port`, the admin API on a
// free port with the test token (testAdminJson), 2 workers. `extra` is inserted as top-level members (each
// followed by a comma), e.g. R"("drain_timeout": "1s",)".
inline std::string proxyConfig(uint16_t backend_port, const std::string& extra = "",
                               const std::string& listener_address = "127.0.0.1:0") {
  return R"({"workers": 2, "admin": )" + testAdminJson() + ", " + extra +
         R"( "listeners": [{"name": "raw", "address": ")" + listener_address +
         R"(", "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
  "clusters": [{"name": "echo", "hosts": ["127.0.0.1:)" +
         std::to_string(backend_port) + R"("], "connect_timeout": "2s"}]})";
}

// Reads server frames from a backend connection `up_fd` until the first
// data frame (at most 5 frames, 3 s each) and returns its session id; 0 on
// timeout, EOF or no data frame.
inline uint64_t firstDataSession(int up_fd) {
  for (int i = 0; i < 5; ++i) {
    ServerFrame f;
    if (!recvServerFrame(up_fd, std::chrono::milliseconds(3000), &f)) return 0;
    if (f.header.opcode == static_cast<uint8_t>(wire::Opcode::kData))
      return static_cast<uint64_t>(f.header.session_id);
  }
  return 0;
}

}  // namespace test
}  // namespace gw
