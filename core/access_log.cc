#include "core/access_log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace gw {
namespace {

// "2024-05-01T12:00:00.123Z" (UTC, milliseconds).
std::string isoTime(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[96];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(ms % 1000));
  return buf;
}

// A per-thread xorshift64* generator: uniform in [0, 1).
double uniform01() {
  static std::atomic<uint64_t> seeds{0x9e3779b97f4a7c15ull};
  thread_local uint64_t state = seeds.fetch_add(0x9e3779b97f4a7c15ull) | 1;
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return static_cast<double>((state * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}

// Why the directory of the file `path` cannot hold it ("" if it can).
// spdlog would create missing directories (as whoever runs the gateway); a
// typo in the path is reported instead.
std::string directoryProblem(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";  // the working directory
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return "directory " + dir + ": " + std::strerror(errno) + " (it is not created)";
  }
  if (!S_ISDIR(st.st_mode)) return dir + " is not a directory";
  return "";
}

}  // namespace

std::shared_ptr<AccessLog> AccessLog::open(const AccessLogConfig& config, std::string* error) {
  std::shared_ptr<AccessLog> log(new AccessLog(config));
  if (!config.enabled) return log;
  spdlog::sink_ptr sink;
  try {
    if (config.path == "stderr") {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else if (config.path == "stdout") {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else {
      std::string problem = directoryProblem(config.path);
      if (!problem.empty()) {
        if (error) *error = "access_log: cannot open " + config.path + ": " + problem;
        return nullptr;
      }
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.path, /*truncate=*/false);
    }
  } catch (const std::exception& e) {
    if (error) *error = "access_log: cannot open " + config.path + ": " + e.what();
    return nullptr;
  }
  // A private queue and writer thread, not spdlog's global pool: each
  // config generation's log is independent and drains fully on destruction.
  log->pool_ = std::make_shared<spdlog::details::thread_pool>(kQueueLines, 1);
  log->logger_ = std::make_shared<spdlog::async_logger>(
      "access", sink, log->pool_, spdlog::async_overflow_policy::overrun_oldest);
  log->logger_->set_pattern("%v");
  log->logger_->set_level(spdlog::level::info);
  log->logger_->flush_on(spdlog::level::info);
  return log;
}

AccessLog::~AccessLog() {
  if (logger_) logger_->flush();
  logger_.reset();
  pool_.reset();  // joins the writer after it wrote what was queued
}

bool AccessLog::sample() const {
  if (!config_.enabled || !logger_) return false;
  if (config_.sample_rate >= 1.0) return true;
  if (config_.sample_rate <= 0.0) return false;
  return uniform01() < config_.sample_rate;
}

void AccessLog::write(const AccessLogEntry& e) {
  if (!logger_) return;
  logger_->info(format(e));
}

std::string AccessLog::format(const AccessLogEntry& e) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&w](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  w.Key("time");
  str(isoTime(e.time));
  w.Key("listener");
  str(e.listener);
  w.Key("worker");
  w.Uint64(e.worker);
  w.Key("client");
  str(e.client ? e.client->toString() : std::string());
  // A string: 64-bit ids lose precision as JSON numbers in many tools.
  w.Key("session_id");
  str(std::to_string(e.session_id));
  w.Key("trace_id");
  str(e.trace ? e.trace->traceIdHex() : std::string());
  w.Key("duration_ms");
  double ms = static_cast<double>(e.duration.count()) / 1e6;
  w.Double(static_cast<double>(static_cast<int64_t>(ms * 1000 + 0.5)) / 1000);
  w.Key("bytes_in");
  w.Uint64(e.bytes_in);
  w.Key("bytes_out");
  w.Uint64(e.bytes_out);
  w.Key("frames_in");
  w.Uint64(e.frames_in);
  w.Key("frames_out");
  w.Uint64(e.frames_out);
  w.Key("reason");
  str(closeReasonName(e.reason));
  w.Key("detail");
  str(e.detail);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace gw
