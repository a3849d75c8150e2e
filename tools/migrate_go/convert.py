# tools/migrate_go/convert.py — maps a Go gateway's settings (go_config.GoConfig)
# onto this gateway's JSON config.
#
# Defines convert(cfg, native) -> (config dict, notes). Every mapping is listed
# in docs/migrating-from-go.md ("Every Go gateway feature and setting"); a note
# is one line "KEY: why" for a setting that is not carried over or changes
# meaning. Pure: the only outside look-up is resolving a Redis host name
# (socket.getaddrinfo), because this gateway's Redis client takes an IP.

import ipaddress
import socket

from go_config import HOUR, MINUTE, MS, SECOND

# Server types of the Go gateway's packet header that its default services
# serve (the router's comments and deploy/redis-init-job.yaml): 10 account,
# 15 version, 200 game. backend.<name>_service -> (cluster name, server type).
SERVICES = [("account_service", "account", 10),
            ("version_service", "version", 15),
            ("game_service", "game", 200)]

# Schema bounds of this gateway (config/gateway.schema.json, filters/*/schema.json).
MAX_FRAME_BYTES = 65535
MAX_PER_SERVICE = 1024
MAX_CLUSTER_CONNECTIONS = 65536
MAX_RETRIES = 10
RETRY_DELAY_MIN, RETRY_DELAY_MAX = 1 * MS, 5 * SECOND
WS_MAX_MESSAGE = 1 << 30

GRPC_LATER = "gRPC transport to backends arrives with issue 17 (gRPC); this gateway speaks TCP"
CONSUL_LATER = "Consul discovery arrives with issue 17 (gRPC); backends here come from " \
               "cluster hosts (DNS names) and the Go-format rules in Redis"

REDIS_POOL = "routes_from_redis keeps two Redis connections per worker (commands and " \
             "notifications), no pool to size"
REDIS_TIMEOUTS = "the Redis client's own timeouts apply (connect 1s, command 1s, reconnect " \
                 "100ms doubling to 5s)"


class Notes:
    """The lines the converter prints to stderr, in the order found."""

    def __init__(self):
        self.lines = []

    def add(self, key, why):
        self.lines.append("%s: %s" % (key, why))


def duration(ns, key=None, notes=None):
    """Formats nanoseconds as this gateway's duration ("250ms", "30s", "5m", "1h").

    A value that is not a whole number of milliseconds is rounded up to one,
    with a note naming `key` when `notes` is given.
    """
    for unit, name in ((HOUR, "h"), (MINUTE, "m"), (SECOND, "s"), (MS, "ms")):
        if ns % unit == 0 and ns >= unit:
            return "%d%s" % (ns // unit, name)
    if ns == 0:
        return "0s"
    rounded = -(-ns // MS)
    if notes is not None:
        notes.add(key, "%dns is not a whole number of milliseconds; written as %dms"
                  % (ns, rounded))
    return "%dms" % rounded


def clamp(value, low, high, key, target, notes):
    """Returns value bounded to [low, high], with a note when it had to move."""
    bounded = min(max(value, low), high)
    if bounded != value:
        notes.add(key, "%s allows %s..%s here; %s written as %s" % (target, low, high, value, bounded))
    return bounded


def split_host_port(addr):
    """Splits "host:port" / "[v6]:port" / ":port"; returns (host, port) or None."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def join_host_port(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def listen_address(cfg, notes):
    """server.listen_addr (Go's net.Listen syntax) -> this gateway's "ip:port"."""
    addr = cfg.get("server.listen_addr")
    parts = split_host_port(addr)
    if parts is None:
        notes.add("server.listen_addr", '"%s" is not host:port; written as 0.0.0.0:8080' % addr)
        return "0.0.0.0:8080"
    host, port = parts
    if host == "":
        return "0.0.0.0:%d" % port
    if host == "localhost":
        return "127.0.0.1:%d" % port
    if not is_ip(host):
        notes.add("server.listen_addr", 'a listener binds an IP here, not the name "%s": '
                  "written as 0.0.0.0:%d (all interfaces)" % (host, port))
        return "0.0.0.0:%d" % port
    return join_host_port(host, port)


def redis_address(cfg, notes):
    """redis.addr -> an "ip:port" (the Redis client here does not resolve names)."""
    addr = cfg.get("redis.addr")
    parts = split_host_port(addr)
    if parts is None:
        notes.add("redis.addr", '"%s" is not host:port; written as is: replace it with '
                  'an "ip:port" before --check-config' % addr)
        return addr
    host, port = parts
    if host in ("", "localhost"):
        return "127.0.0.1:%d" % port
    if is_ip(host):
        return join_host_port(host, port)
    try:
        ip = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    except (OSError, IndexError):
        notes.add("redis.addr", 'the Redis client here takes an IP and "%s" did not resolve '
                  'here: written as is; replace it with the Redis Service\'s IP (a ClusterIP '
                  "stays put) or --check-config refuses it" % host)
        return addr
    notes.add("redis.addr", 'the Redis client here takes an IP: "%s" resolved now to %s; '
              "make sure that address is stable (a Service's ClusterIP)" % (host, ip))
    return join_host_port(ip, port)


REDIS_PASSWORD_ENV = "GAME_GATEWAY_REDIS_PASSWORD"


def redis_auth(cfg, notes):
    """redis.password / redis.db -> routes_from_redis's password_env / db keys.

    The password itself is never written: the JSON names an environment
    variable, and a note tells the operator to set it.
    """
    out = {}
    if cfg.get("redis.password"):
        out["password_env"] = REDIS_PASSWORD_ENV
        notes.add("redis.password", "written as \"password_env\": \"%s\" (the password itself "
                  "is never written to the JSON): set %s to the Redis password in the "
                  "gateway's environment (e.g. from the Kubernetes Secret) before starting it, "
                  "or use \"password_file\" (docs/migrating-from-go.md, \"Redis with a "
                  "password\")" % (REDIS_PASSWORD_ENV, REDIS_PASSWORD_ENV))
    db = cfg.get("redis.db")
    if db:
        out["db"] = db
        if not 0 <= db <= 15:
            notes.add("redis.db", "%d is outside 0..15 (SELECT's range on a default Redis): "
                      "written as is; the gateway refuses it: move the rules to db 0..15" % db)
    return out


def note_not_carried(cfg, notes, native):
    """One note for every set Go setting without a counterpart here."""
    why = {
        "server.use_grpc": GRPC_LATER,
        "server.gateway_name": "names the gateway to gRPC backends (issue 17); the access "
                               "log and metrics here carry no gateway name",
        "server.gateway_app_id": "sent in the gRPC-era cluster handshake (issue 17); not "
                                 "used by the TCP protocol",
        "redis.pool_size": REDIS_POOL,
        "redis.min_idle_conns": REDIS_POOL,
        "redis.dial_timeout": REDIS_TIMEOUTS,
        "redis.read_timeout": REDIS_TIMEOUTS,
        "redis.write_timeout": REDIS_TIMEOUTS,
        "routing.realm_refresh_interval": "the realm mapping is re-read on "
                                          "routing.refresh_interval and on its :notify channel "
                                          "(the Go gateway also reads it on refresh_interval)",
        "connection_pool.max_goroutines": "no goroutine pool: each worker's event loop "
                                          "serves its connections",
        "connection_pool.goroutine_expiry": "no goroutine pool",
        "connection_pool.connection_queue_size": "no accept queue: ip_limiter's "
                                                 "max_connections admits or refuses at accept",
        "grpc.heartbeat_interval": GRPC_LATER,
        "grpc.connection_timeout": GRPC_LATER,
        "grpc.reconnect_interval": GRPC_LATER,
        "grpc.max_reconnect_attempts": GRPC_LATER,
    }
    for key in sorted(cfg.present):
        if key in why and not (key == "server.use_grpc" and not cfg.get(key)):
            notes.add(key, "not carried over: " + why[key])
        elif key.startswith("consul."):
            off = "" if cfg.get("consul.enabled") else " (consul.enabled is false: unused in Go too)"
            notes.add(key, "not carried over: " + CONSUL_LATER + off)
    if cfg.get("tracing.enable_trace_propagation"):
        if native:
            notes.add("tracing.enable_trace_propagation", "not carried over with --native: the "
                      "33-byte traced header is a compat setting (drop --native to keep it)")
        else:
            notes.add("tracing.enable_trace_propagation", "written as compat.trace_propagation: "
                      "the Go gateway sent the 33-byte header only with its OpenTelemetry "
                      "exporter configured; if it was not, set trace_propagation to false")
    for key in sorted(cfg.defaulted):
        notes.add(key, "0 or empty means the Go default in the Go gateway (setDefaults); "
                  "converted as its default %s" % _shown(cfg.get(key), key))
    for key in cfg.unknown:
        notes.add(key, "not a Go gateway setting (the Go gateway ignores it too); ignored")


def _shown(value, key):
    """A Go value as the notes show it (durations as "5s")."""
    if isinstance(value, int) and key.endswith(("timeout", "interval", "delay", "expiry")):
        return duration(value) if value % MS == 0 else "%dns" % value
    return str(value)


def clusters(cfg, native, notes):
    """backend.*_service -> one cluster each, with the connection_pool settings."""
    per_service = clamp(cfg.get("connection_pool.max_connections_per_service"), 1,
                        MAX_PER_SERVICE, "connection_pool.max_connections_per_service",
                        "a cluster's max_connections_per_service", notes)
    per_cluster = clamp(cfg.get("connection_pool.max_connections"), 1, MAX_CLUSTER_CONNECTIONS,
                        "connection_pool.max_connections", "a cluster's max_connections", notes)
    # Go's max_retries counts attempts (its retry loop runs it times): retries = attempts - 1.
    retries = clamp(cfg.get("connection_pool.max_retries") - 1, 0, MAX_RETRIES,
                    "connection_pool.max_retries", "max_retries (attempts - 1)", notes)
    delay = min(max(cfg.get("connection_pool.retry_delay"), RETRY_DELAY_MIN), RETRY_DELAY_MAX)
    if delay != cfg.get("connection_pool.retry_delay"):
        notes.add("connection_pool.retry_delay", "retry_delay allows 1ms..5s here; %s written as %s"
                  % (_shown(cfg.get("connection_pool.retry_delay"), "retry_delay"),
                     duration(delay)))
    out = []
    routes = []
    for key, name, server_type in SERVICES:
        addr = cfg.get("backend." + key)
        if addr == "":
            continue
        if split_host_port(addr) is None or split_host_port(addr)[0] == "":
            notes.add("backend." + key, '"%s" is not host:port; cluster "%s" left out' % (addr, name))
            continue
        cluster = {
            "name": name,
            "hosts": [addr],
            "connect_timeout": duration(cfg.get("connection_pool.dial_timeout"),
                                        "connection_pool.dial_timeout", notes),
            "idle_timeout": duration(cfg.get("connection_pool.idle_timeout"),
                                     "connection_pool.idle_timeout", notes),
            "max_connections_per_service": per_service,
            "max_connections": per_cluster,
            "max_retries": retries,
            "retry_delay": duration(delay, "connection_pool.retry_delay", notes),
            "tcp_user_timeout": duration(cfg.get("connection_pool.write_timeout"),
                                         "connection_pool.write_timeout", notes),
        }
        if not native:
            compat = {}
            if cfg.get("tracing.enable_trace_propagation"):
                compat["trace_propagation"] = True
            cluster["compat"] = compat
        out.append(cluster)
        routes.append({"match": "%d:0" % server_type, "cluster": name})
    return out, routes


def filters(cfg, routes, template, notes):
    """The listener's chain: ip_limiter, detect, websocket, framing, session,
    breaker, upstream (the Go gateway's one port for TCP and WebSocket)."""
    rate = cfg.get("security.connection_rate_limit")
    per_ip = clamp(cfg.get("security.max_connections_per_ip"), 1, 1000000,
                   "security.max_connections_per_ip", "ip_limiter.max_connections_per_ip", notes)
    size = cfg.get("security.max_message_size")
    read_timeout = duration(cfg.get("connection_pool.read_timeout"),
                            "connection_pool.read_timeout", notes)
    return [
        {"name": "ip_limiter", "config": {
            "max_connections_per_ip": per_ip,
            "connection_rate_limit": clamp(rate, 0, 1000000, "security.connection_rate_limit",
                                           "ip_limiter.connection_rate_limit", notes),
            # Go's one-second sliding window admits `rate` connections at once.
            "connection_burst": clamp(rate, 1, 1000000, "security.connection_rate_limit",
                                      "ip_limiter.connection_burst", notes),
            "max_connections": cfg.get("connection_pool.max_connections")}},
        {"name": "detect", "config": {}},
        {"name": "websocket", "config": {"max_message_bytes": min(size, WS_MAX_MESSAGE)}},
        {"name": "framing", "config": {
            "max_frame_bytes": min(size, MAX_FRAME_BYTES),
            "read_timeout": read_timeout,
            "idle_timeout": read_timeout,
            "first_frame_timeout": "30s"}},
        {"name": "session", "config": {
            "store": "memory", "cleanup_interval": "5m", "idle_timeout": "30m"}},
        {"name": "breaker", "config": {"failure_threshold": 5, "max_open_duration": "30s"}},
        {"name": "upstream", "config": {
            "routes": routes,
            "routes_from_redis": dict({
                "address": redis_address(cfg, notes),
                "routes_format": "go",
                "key_prefix": cfg.get("redis.key_prefix"),
                "refresh_interval": duration(cfg.get("routing.refresh_interval"),
                                             "routing.refresh_interval", notes),
                "cluster_template": template}, **redis_auth(cfg, notes))}},
    ]


class NoBackends(Exception):
    """No backend.*_service address: no static route for the upstream filter."""


def convert(cfg, native=False):
    """Returns (this gateway's config as a dict, list of note lines).

    native: leave out the clusters' "compat" object (this gateway's protocol).
    Raises NoBackends when backend has no usable address.
    """
    notes = Notes()
    note_not_carried(cfg, notes, native)
    cluster_list, routes = clusters(cfg, native, notes)
    if not cluster_list:
        raise NoBackends("backend: no account_service, version_service or game_service "
                         "address; this gateway needs at least one static route (it applies "
                         "until the Go rules are read from Redis)")
    template = next((c["name"] for c in cluster_list if c["name"] == "game"),
                    cluster_list[0]["name"])
    out = {
        "log_level": "info",
        "drain_timeout": duration(cfg.get("graceful_shutdown_timeout"),
                                  "graceful_shutdown_timeout", notes),
        "admin": {"address": "127.0.0.1:9901"},
        "health_listener": "0.0.0.0:%d" % cfg.get("server.health_check_port"),
        "access_log": {"enabled": True, "path": "stdout"},
        "listeners": [{
            "name": "game",
            "address": listen_address(cfg, notes),
            "tcp_user_timeout": duration(cfg.get("connection_pool.write_timeout"),
                                         "connection_pool.write_timeout", notes),
            "filters": filters(cfg, routes, template, notes),
        }],
        "clusters": cluster_list,
    }
    if cfg.get("server.metrics_port") != cfg.get("server.health_check_port"):
        out["metrics_listener"] = "0.0.0.0:%d" % cfg.get("server.metrics_port")
    else:
        notes.add("server.metrics_port", "same port as health_check_port: /metrics is not "
                  "served on it here (health_listener answers health only); scrape the admin "
                  "port's /metrics or give metrics_port its own port")
    return out, notes.lines
