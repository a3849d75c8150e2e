# tools/migrate_go/go_config.py — reads a Go gateway (SkynetNext/game-gateway)
# config.yaml the way that gateway reads it.
#
# Defines GoConfig (the typed settings after Go's defaults), ConfigError (a
# config the Go gateway would refuse too) and load(text). The rules follow the
# Go gateway's internal/config/config.go (the union of its stored versions):
# yaml.v3 decoding into typed fields (unknown keys ignored, a duration must be a
# string such as "5s", an int into a duration is refused), setDefaults (a zero
# or empty value takes the default) and validateConfig. Pure functions: no I/O.

import math
import re

import yaml

# Field kinds of the Go struct fields.
STR, INT, BOOL, DUR = "string", "int", "bool", "duration"

# Every key of every stored version of the Go config, section -> key -> kind.
# A top-level key mapped to a kind (not a dict) is a scalar at the top level.
SCHEMA = {
    "server": {"listen_addr": STR, "health_check_port": INT, "metrics_port": INT,
               "gateway_name": STR, "gateway_app_id": INT, "use_grpc": BOOL},
    "redis": {"addr": STR, "password": STR, "db": INT, "key_prefix": STR,
              "pool_size": INT, "min_idle_conns": INT, "dial_timeout": DUR,
              "read_timeout": DUR, "write_timeout": DUR},
    "consul": {"enabled": BOOL, "address": STR, "service_name": STR, "namespace": STR,
               "refresh_interval": DUR},
    "backend": {"account_service": STR, "version_service": STR, "game_service": STR},
    "routing": {"refresh_interval": DUR, "realm_refresh_interval": DUR},
    "connection_pool": {"max_connections": INT, "max_connections_per_service": INT,
                        "idle_timeout": DUR, "dial_timeout": DUR, "read_timeout": DUR,
                        "write_timeout": DUR, "max_retries": INT, "retry_delay": DUR,
                        "max_goroutines": INT, "goroutine_expiry": DUR,
                        "connection_queue_size": INT},
    "grpc": {"heartbeat_interval": DUR, "connection_timeout": DUR,
             "reconnect_interval": DUR, "max_reconnect_attempts": INT},
    "security": {"max_message_size": INT, "max_connections_per_ip": INT,
                 "connection_rate_limit": INT},
    "tracing": {"enable_trace_propagation": BOOL},
    "graceful_shutdown_timeout": DUR,
}

NS = 1
US = 1000 * NS
MS = 1000 * US
SECOND = 1000 * MS
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

# Go's setDefaults: a key whose value is zero/empty after decoding takes this.
DEFAULTS = {
    "server.listen_addr": ":8080",
    "server.health_check_port": 9090,
    "server.metrics_port": 9091,
    "redis.addr": "localhost:6379",
    "redis.key_prefix": "game-gateway:",
    "redis.pool_size": 10,
    "redis.min_idle_conns": 5,
    "redis.dial_timeout": 5 * SECOND,
    "redis.read_timeout": 3 * SECOND,
    "redis.write_timeout": 3 * SECOND,
    "routing.refresh_interval": 10 * SECOND,
    "routing.realm_refresh_interval": 5 * SECOND,
    "connection_pool.max_connections": 1000,
    "connection_pool.max_connections_per_service": 100,
    "connection_pool.idle_timeout": 5 * MINUTE,
    "connection_pool.dial_timeout": 5 * SECOND,
    "connection_pool.read_timeout": 30 * SECOND,
    "connection_pool.write_timeout": 30 * SECOND,
    "connection_pool.max_retries": 3,
    "connection_pool.retry_delay": 100 * MS,
    "connection_pool.goroutine_expiry": 10 * SECOND,
    "connection_pool.connection_queue_size": 1000,
    "grpc.heartbeat_interval": 30 * SECOND,
    "grpc.connection_timeout": 10 * SECOND,
    "grpc.reconnect_interval": 5 * SECOND,
    "graceful_shutdown_timeout": 30 * SECOND,
    "security.max_message_size": 1024 * 1024,
    "security.max_connections_per_ip": 10,
    "security.connection_rate_limit": 5,
}

_ZERO = {STR: "", INT: 0, BOOL: False, DUR: 0}


class ConfigError(Exception):
    """A config the Go gateway would refuse as well (message names the key)."""


class GoConfig:
    """The Go gateway's settings after decoding and setDefaults.

    values: "section.key" -> value for every key of SCHEMA (durations in ns).
    present: the keys the file set to a non-null value (before defaults).
    defaulted: the keys set to zero/empty in the file that Go replaced by its
      default (e.g. max_retries: 0 becomes 3).
    unknown: the keys of the file the Go gateway does not read, as "a.b".
    """

    def __init__(self):
        self.values = {}
        self.present = set()
        self.defaulted = set()
        self.unknown = []

    def get(self, key):
        """Returns the value of "section.key" (every known key has one)."""
        return self.values[key]


_DUR_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": NS, "us": US, "µs": US, "μs": US, "ms": MS, "s": SECOND,
            "m": MINUTE, "h": HOUR}


def parse_go_duration(text):
    """Parses Go's time.ParseDuration syntax ("1h30m", "1.5s", "300ms", "0").

    Returns nanoseconds (int, rounded toward zero like Go); raises ValueError.
    """
    s = text.strip() if isinstance(text, str) else ""
    if s != text or not s:
        raise ValueError("not a duration")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError("not a duration")
    total = 0
    pos = 0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError("not a duration")
        whole, _, frac = m.group(1).partition(".")
        unit = _UNIT_NS[m.group(2)]
        total += int(whole or "0") * unit
        if frac:
            total += int(frac) * unit // (10 ** len(frac))
        pos = m.end()
    return sign * total


def _typed(key, kind, raw):
    """Decodes one scalar as yaml.v3 decodes it into a Go field of `kind`."""
    if kind == STR:
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, (str, int, float)):
            return str(raw)
    elif kind == INT:
        if isinstance(raw, bool):
            pass
        elif isinstance(raw, int):
            return raw
        elif isinstance(raw, float) and math.isfinite(raw) and raw == int(raw):
            return int(raw)
    elif kind == BOOL:
        if isinstance(raw, bool):
            return raw
    elif kind == DUR:
        if isinstance(raw, str):
            try:
                return parse_go_duration(raw)
            except ValueError:
                raise ConfigError('%s: "%s" is not a Go duration (e.g. "5s", "100ms", "1m30s")'
                                  % (key, raw))
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raise ConfigError('%s: %s is a number; the Go gateway (yaml.v3) refuses a number '
                              'for a duration: write it with a unit, e.g. "%ss"' % (key, raw, raw))
    raise ConfigError("%s: expected %s, got %s %r (the Go gateway refuses this too)"
                      % (key, "an integer" if kind == INT else "a " + kind,
                         type(raw).__name__, raw))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader refusing duplicate mapping keys, as yaml.v3 does."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, 'mapping key "%s" already defined' % key, key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              _construct_mapping)


def _read(cfg, key, kind, raw):
    value = _ZERO[kind] if raw is None else _typed(key, kind, raw)
    if raw is not None:
        cfg.present.add(key)
    if value == _ZERO[kind] and key in DEFAULTS:
        if raw is not None:
            cfg.defaulted.add(key)
        value = DEFAULTS[key]
    cfg.values[key] = value


def _validate(cfg):
    """Go's validateConfig, plus ranges the Go gateway would fail on at start."""
    v = cfg.get
    if not 1 <= v("server.health_check_port") <= 65535:
        raise ConfigError("server.health_check_port must be between 1 and 65535")
    if not 1 <= v("server.metrics_port") <= 65535:
        raise ConfigError("server.metrics_port must be between 1 and 65535")
    if v("redis.pool_size") <= 0:
        raise ConfigError("redis.pool_size must be greater than 0")
    for key in ("connection_pool.max_connections", "connection_pool.max_connections_per_service",
                "connection_pool.dial_timeout", "routing.refresh_interval",
                "graceful_shutdown_timeout"):
        if v(key) <= 0:
            raise ConfigError("%s must be greater than 0" % key)
    for key, kind in _flat_schema():
        if kind in (INT, DUR) and cfg.values[key] < 0:
            raise ConfigError("%s must not be negative, got %s" % (key, cfg.values[key]))


def _flat_schema():
    """Yields ("section.key", kind) for every known key."""
    for section, body in SCHEMA.items():
        if isinstance(body, dict):
            for key, kind in body.items():
                yield section + "." + key, kind
        else:
            yield section, body


def _yaml_error(e):
    """One line for a PyYAML error: "line L, column C: problem"."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(e).split())
    context = getattr(e, "context", None)
    return "line %d, column %d: %s%s" % (mark.line + 1, mark.column + 1, problem,
                                         " (%s)" % context if context else "")


def load(text):
    """Parses config.yaml text the Go gateway's way.

    Returns a GoConfig; raises ConfigError for what the Go gateway would refuse
    (invalid YAML, a wrong type, a failed validation), naming the key.
    """
    try:
        doc = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        raise ConfigError("invalid YAML: " + _yaml_error(e))
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError("invalid config: the top level must be a mapping of sections "
                          "(server, redis, backend, ...), got %s" % type(doc).__name__)
    cfg = GoConfig()
    for name, raw in doc.items():
        if str(name) not in SCHEMA:
            cfg.unknown.append(str(name))
    for section, body in SCHEMA.items():
        raw_section = doc.get(section)
        if not isinstance(body, dict):
            _read(cfg, section, body, raw_section)
            continue
        if raw_section is None:
            raw_section = {}
        if not isinstance(raw_section, dict):
            raise ConfigError("%s: expected a mapping, got %s (the Go gateway refuses this too)"
                              % (section, type(raw_section).__name__))
        for name in raw_section:
            if str(name) not in body:
                cfg.unknown.append("%s.%s" % (section, name))
        for key, kind in body.items():
            _read(cfg, section + "." + key, kind, raw_section.get(key))
    _validate(cfg)
    return cfg
