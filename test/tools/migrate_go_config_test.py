#!/usr/bin/env python3
# test/tools/migrate_go_config_test.py — tools/migrate_go_config against a Go
# gateway config.yaml (test/tools/migrate_go/go_config.yaml, the Go gateway's
# sample values): the mapped values, the stderr notes, the real gateway's
# --check-config on the output, Go's defaults and zero values, --native, and
# the refusals (bad YAML, a number for a duration, no backend) with exit 2.
# Run by migrate_go_config_test.sh (Debian's python3, which has python3-yaml).

import json
import os
import subprocess
import sys
import tempfile
import unittest

CONVERTER = "tools/migrate_go_config"
GATEWAY = "core/gateway"
FIXTURE = "test/tools/migrate_go/go_config.yaml"
GUIDE = "docs/migrating-from-go.md"
PREFIX = "migrate_go_config: note: "


def run(yaml_text=None, path=None, args=()):
    """Runs the converter; returns (exit code, stdout, note lines, stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        if path is None:
            path = os.path.join(tmp, "config.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(yaml_text)
        p = subprocess.run([sys.executable, CONVERTER, *args, path], capture_output=True,
                           text=True, timeout=60)
    notes = [l[len(PREFIX):] for l in p.stderr.splitlines() if l.startswith(PREFIX)]
    return p.returncode, p.stdout, notes, p.stderr


def note_keys(notes):
    return sorted(n.split(":", 1)[0] for n in notes)


def chain(cfg):
    """{filter name: its config} of the one listener."""
    return {f["name"]: f["config"] for f in cfg["listeners"][0]["filters"]}


def sample():
    with open(FIXTURE, encoding="utf-8") as f:
        return f.read()


def routes_from_redis(cfg):
    """The upstream filter's routes_from_redis object of a converted config."""
    for f in cfg["listeners"][0]["filters"]:
        if f["name"] == "upstream":
            return f["config"]["routes_from_redis"]
    raise AssertionError("no upstream filter")


class CheckConfig:
    """Runs the real gateway's --check-config on a converted config."""

    @classmethod
    def run(cls, cfg):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfg, f)
        try:
            return subprocess.run([GATEWAY, "--check-config", f.name], capture_output=True,
                                  text=True, timeout=60)
        finally:
            os.unlink(f.name)


class SampleConfig(unittest.TestCase):
    """The Go gateway's sample config, converted."""

    @classmethod
    def setUpClass(cls):
        cls.rc, out, cls.notes, cls.stderr = run(path=FIXTURE)
        cls.cfg = json.loads(out) if cls.rc == 0 else None

    def test_converts(self):
        self.assertEqual(self.rc, 0, self.stderr)

    def test_top_level(self):
        c = self.cfg
        self.assertEqual(c["listeners"][0]["address"], "0.0.0.0:8080")  # ":8080"
        self.assertEqual(c["health_listener"], "0.0.0.0:9090")
        self.assertEqual(c["metrics_listener"], "0.0.0.0:9091")
        self.assertEqual(c["drain_timeout"], "30s")  # graceful_shutdown_timeout
        self.assertEqual(c["admin"]["address"], "127.0.0.1:9901")
        self.assertEqual(c["listeners"][0]["tcp_user_timeout"], "30s")  # write_timeout

    def test_chain(self):
        names = [f["name"] for f in self.cfg["listeners"][0]["filters"]]
        self.assertEqual(names, ["ip_limiter", "detect", "websocket", "framing", "session",
                                 "breaker", "upstream"])
        f = chain(self.cfg)
        self.assertEqual(f["ip_limiter"], {"max_connections_per_ip": 10, "connection_rate_limit": 5,
                                           "connection_burst": 5, "max_connections": 1000})
        self.assertEqual(f["websocket"]["max_message_bytes"], 1048576)
        self.assertEqual(f["framing"], {"max_frame_bytes": 65535, "read_timeout": "30s",
                                        "idle_timeout": "30s", "first_frame_timeout": "30s"})
        self.assertEqual(f["session"]["store"], "memory")
        self.assertEqual(f["breaker"]["failure_threshold"], 5)

    def test_routes(self):
        up = chain(self.cfg)["upstream"]
        self.assertEqual(up["routes"], [{"match": "10:0", "cluster": "account"},
                                        {"match": "15:0", "cluster": "version"},
                                        {"match": "200:0", "cluster": "game"}])
        self.assertEqual(up["routes_from_redis"], {
            "address": "10.1.0.8:6379", "routes_format": "go", "key_prefix": "game-gateway:",
            "refresh_interval": "10s", "cluster_template": "game"})

    def test_clusters(self):
        by_name = {c["name"]: c for c in self.cfg["clusters"]}
        self.assertEqual(by_name["game"]["hosts"], ["game-server.hgame.svc.cluster.local:8080"])
        self.assertEqual(by_name["account"]["hosts"],
                         ["account-server.hgame.svc.cluster.local:8080"])
        for c in by_name.values():
            self.assertEqual(c["connect_timeout"], "5s")
            self.assertEqual(c["idle_timeout"], "5m")
            self.assertEqual(c["max_connections_per_service"], 100)
            self.assertEqual(c["max_connections"], 1000)
            self.assertEqual(c["max_retries"], 2)  # Go's 3 attempts = 2 retries
            self.assertEqual(c["retry_delay"], "100ms")
            self.assertEqual(c["compat"], {})  # the Go gateway's TCP mode, trace off

    def test_notes(self):
        self.assertEqual(note_keys(self.notes), [
            "redis.dial_timeout", "redis.min_idle_conns", "redis.pool_size",
            "redis.read_timeout", "redis.write_timeout", "routing.realm_refresh_interval"])
        for n in self.notes:
            self.assertIn("not carried over", n)

    def test_check_config(self):
        p = CheckConfig.run(self.cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Variants(unittest.TestCase):
    def test_native_has_no_compat(self):
        rc, out, _, err = run(path=FIXTURE, args=["--native"])
        self.assertEqual(rc, 0, err)
        cfg = json.loads(out)
        self.assertTrue(all("compat" not in c for c in cfg["clusters"]))
        self.assertEqual(CheckConfig.run(cfg).returncode, 0)

    def test_secrets_grpc_consul_tracing(self):
        text = sample().replace('password: ""', 'password: "s3cret-pw"') \
            .replace("enable_trace_propagation: false", "enable_trace_propagation: true") \
            .replace("  metrics_port: 9091\n", "  metrics_port: 9091\n  use_grpc: true\n"
                     "  gateway_name: gw-0\n") \
            + "consul:\n  enabled: true\n  service_name: gameserver\n  refresh_interval: 10s\n"
        rc, out, notes, err = run(text)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("s3cret-pw", out)  # secrets stay out of the JSON
        self.assertNotIn("s3cret-pw", err)
        keys = note_keys(notes)
        for k in ("redis.password", "server.use_grpc", "server.gateway_name", "consul.enabled",
                  "consul.service_name", "consul.refresh_interval",
                  "tracing.enable_trace_propagation"):
            self.assertIn(k, keys)
        self.assertIn("issue 17", [n for n in notes if n.startswith("server.use_grpc")][0])
        cfg = json.loads(out)
        self.assertTrue(all(c["compat"] == {"trace_propagation": True} for c in cfg["clusters"]))
        # The password becomes the name of a variable the operator sets.
        self.assertEqual(routes_from_redis(cfg)["password_env"], "GAME_GATEWAY_REDIS_PASSWORD")
        self.assertNotIn("password", [k for k in routes_from_redis(cfg) if k != "password_env"])
        pw_note = [n for n in notes if n.startswith("redis.password")][0]
        self.assertIn("set GAME_GATEWAY_REDIS_PASSWORD", pw_note)
        os.environ.pop("GAME_GATEWAY_REDIS_PASSWORD", None)
        p = CheckConfig.run(cfg)  # unset: refused, naming the key
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("routes_from_redis/password_env", p.stdout + p.stderr)
        os.environ["GAME_GATEWAY_REDIS_PASSWORD"] = "s3cret-pw"
        try:
            self.assertEqual(CheckConfig.run(cfg).returncode, 0)
        finally:
            del os.environ["GAME_GATEWAY_REDIS_PASSWORD"]

    def test_redis_db(self):
        rc, out, notes, err = run(sample().replace("  db: 0\n", "  db: 3\n"))
        self.assertEqual(rc, 0, err)
        cfg = json.loads(out)
        self.assertEqual(routes_from_redis(cfg)["db"], 3)
        self.assertNotIn("redis.db", note_keys(notes))
        self.assertEqual(CheckConfig.run(cfg).returncode, 0)
        # db 0 (and no password): neither key is written.
        rc, out, notes, err = run(sample())
        self.assertEqual(set(routes_from_redis(json.loads(out))) & {"db", "password_env"}, set())

    def test_unknown_keys_noted(self):
        rc, out, notes, err = run(sample() + "shiny_feature:\n  level: 1\nsecurity_extra: 1\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("shiny_feature", note_keys(notes))
        self.assertIn("security_extra", note_keys(notes))
        rc, out, notes, err = run(sample().replace("  db: 0\n", "  db: 0\n  sentinel: x\n"))
        self.assertIn("redis.sentinel: not a Go gateway setting (the Go gateway ignores it "
                      "too); ignored", notes)

    def test_go_defaults_and_zero_values(self):
        # Only a game service: everything else takes setDefaults' values; a 0 is "unset".
        text = ("backend:\n  game_service: \"10.0.0.7:19806\"\n"
                "connection_pool:\n  max_retries: 0\n  max_connections_per_service: 0\n")
        rc, out, notes, err = run(text)
        self.assertEqual(rc, 0, err)
        cfg = json.loads(out)
        self.assertEqual([c["name"] for c in cfg["clusters"]], ["game"])
        game = cfg["clusters"][0]
        self.assertEqual(game["max_retries"], 2)
        self.assertEqual(game["max_connections_per_service"], 100)
        self.assertEqual(game["connect_timeout"], "5s")
        self.assertEqual(cfg["listeners"][0]["address"], "0.0.0.0:8080")
        self.assertEqual(cfg["drain_timeout"], "30s")
        up = chain(cfg)["upstream"]
        self.assertEqual(up["routes"], [{"match": "200:0", "cluster": "game"}])
        self.assertEqual(up["routes_from_redis"]["address"], "127.0.0.1:6379")  # localhost:6379
        self.assertEqual(up["routes_from_redis"]["refresh_interval"], "10s")
        self.assertEqual(chain(cfg)["ip_limiter"]["connection_rate_limit"], 5)
        self.assertIn("connection_pool.max_retries", note_keys(notes))
        self.assertEqual(CheckConfig.run(cfg).returncode, 0)

    def test_go_durations(self):
        text = sample().replace("idle_timeout: 5m", "idle_timeout: 1h30m") \
            .replace("graceful_shutdown_timeout: 30s", "graceful_shutdown_timeout: 1.5s")
        rc, out, _, err = run(text)
        self.assertEqual(rc, 0, err)
        cfg = json.loads(out)
        self.assertEqual(cfg["clusters"][0]["idle_timeout"], "90m")
        self.assertEqual(cfg["drain_timeout"], "1500ms")


class Guide(unittest.TestCase):
    """docs/migrating-from-go.md's table names every key the converter knows."""

    def test_every_go_key_in_the_table(self):
        sys.path.insert(0, "tools/migrate_go")
        import go_config
        with open(GUIDE, encoding="utf-8") as f:
            table = f.read().split("## Every Go gateway feature and setting", 1)[1]
        rows = [l for l in table.splitlines() if l.startswith("| ")]
        for section, body in go_config.SCHEMA.items():
            keys = [section] if not isinstance(body, dict) else body
            for key in keys:
                full = key if key == section else "%s.%s" % (section, key)
                # A row names "section.key", or "section.first" and then "key" after a comma.
                self.assertTrue(any(("`%s`" % full) in r or (("`%s." % section) in r and
                                                               ("`%s`" % key) in r)
                                    for r in rows), "no row for " + full)


class Refusals(unittest.TestCase):
    def assert_refused(self, text, *fragments):
        rc, out, _, err = run(text)
        self.assertEqual(rc, 2, err)
        self.assertEqual(out, "")
        for fragment in fragments:
            self.assertIn(fragment, err)

    def test_bad_yaml(self):
        self.assert_refused("server:\n  listen_addr: \":8080\"\n bad: [\n",
                            "invalid YAML: line 3, column 2")

    def test_duplicate_key(self):
        self.assert_refused(sample() + "graceful_shutdown_timeout: 10s\n",
                            'mapping key "graceful_shutdown_timeout" already defined')

    def test_number_for_duration(self):
        self.assert_refused(sample().replace("dial_timeout: 5s\n  read_timeout: 30s",
                                             "dial_timeout: 5\n  read_timeout: 30s"),
                            "connection_pool.dial_timeout: 5 is a number")

    def test_wrong_type(self):
        self.assert_refused(sample().replace("max_connections_per_ip: 10",
                                             "max_connections_per_ip: ten"),
                            "security.max_connections_per_ip: expected an integer")

    def test_go_validation(self):
        self.assert_refused(sample().replace("health_check_port: 9090", "health_check_port: 0x1FFFF"),
                            "server.health_check_port must be between 1 and 65535")

    def test_no_backend(self):
        self.assert_refused("server:\n  listen_addr: \":8080\"\n", "backend: no account_service")

    def test_unreadable(self):
        rc, out, _, err = run(path="/nonexistent/config.yaml")
        self.assertEqual(rc, 2)
        self.assertIn("cannot read", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
