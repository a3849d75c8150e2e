#!/usr/bin/env python3
"""Checks docs/ops against the real gateway binary.

- Every manifest in docs/ops/k8s parses as YAML; the objects refer to each
  other consistently (selectors, names, the ConfigMap's mount and key).
- The ports and paths the manifests use (container ports, Services, probes,
  the preStop drain URL, Prometheus annotations, the HPA's custom metric) are
  the ones the binary really uses: the ConfigMap's config passes
  `gateway --check-config`, its game, health_listener (probes) and
  metrics_listener (scrape annotation) ports match the manifests and the
  image's config (docs/ops/docker-gateway.json), the admin API stays on
  loopback, and a gateway started from that config (addresses moved to free
  loopback ports, backends to a local backend_sim) answers the probe paths on
  its health listener, serves the HPA metric on its metrics listener, and
  drains and exits 0 on the preStop request.
- `promtool check rules` and `promtool test rules` pass on the alert rules.
- What the Grafana dashboard and the rules query: ops_dashboards_test.py.
- The Dockerfile exposes the manifests' ports and builds //core:gateway.

Run by //test/integration:ops_manifests_test (cwd: the runfiles root).
Filters the binary does not register yet are dropped from the ConfigMap's
chain with a warning (their metrics are then not required).
"""
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import yaml

from ops_common import (FILTER_METRICS, GATEWAY, OPS, PROMTOOL, configmap_config, find,
                        load_manifests, metric_families, metric_value, port_of,
                        referenced_metrics, registered_filters, request, runnable_config,
                        start_backend, start_gateway, token_file)


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load_manifests()
        cls.deploy = find(cls.docs, "Deployment")[0]
        cls.cm = find(cls.docs, "ConfigMap")[0]
        cls.pod = cls.deploy["spec"]["template"]
        cls.container = cls.pod["spec"]["containers"][0]
        cls.ports = {p["name"]: p["containerPort"] for p in cls.container["ports"]}
        cls.config = configmap_config(cls.docs)
        cls.filters = registered_filters()

    def resolve(self, port):
        """A probe/Service port: a name of a container port, or a number."""
        return self.ports[port] if isinstance(port, str) else port

    def test_every_manifest_is_a_named_object(self):
        self.assertGreaterEqual(len(self.docs), 7)
        kinds = {d.get("kind") for _, d in self.docs}
        for kind in ("Deployment", "ConfigMap", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"):
            self.assertIn(kind, kinds)
        for path, d in self.docs:
            if d.get("kind") is None:  # prometheus-adapter rules: a config fragment
                self.assertIn("rules", d, path)
                continue
            if d["kind"] == "Kustomization":  # lists every object manifest
                listed = {f"{OPS}/k8s/{r}" for r in d["resources"]}
                # *.example.yaml: made by the operator (the admin token's Secret).
                objects = {p for p, o in self.docs
                           if o.get("metadata") and not p.endswith(".example.yaml")}
                self.assertEqual(listed, objects)
                continue
            self.assertTrue(d.get("apiVersion"), path)
            self.assertTrue(d["metadata"].get("name"), path)

    def admin_port(self):
        return port_of(self.config["admin"]["address"])

    def test_ports_match_the_config(self):
        """The container ports are the config's listeners (the Go gateway's
        layout): game, health_listener 9090, metrics_listener 9091, all on
        every interface; the admin API on loopback is no container port."""
        listener = self.config["listeners"][0]
        self.assertEqual(self.ports["game"], port_of(listener["address"]))
        self.assertEqual(self.ports["health"], port_of(self.config["health_listener"]))
        self.assertEqual(self.ports["metrics"], port_of(self.config["metrics_listener"]))
        self.assertEqual((self.ports["health"], self.ports["metrics"]), (9090, 9091))
        for key in ("health_listener", "metrics_listener"):
            self.assertTrue(self.config[key].startswith("0.0.0.0:"), key)
        self.assertTrue(self.config["admin"]["address"].startswith("127.0.0.1:"))
        self.assertNotIn(self.admin_port(), self.ports.values())
        ann = self.pod["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(int(ann["prometheus.io/port"]), self.ports["metrics"])
        self.assertEqual(ann["prometheus.io/path"], "/metrics")

    def test_configmap_matches_the_docker_image_config(self):
        """The pod serves the same ports as the image's own config."""
        image = json.load(open(f"{OPS}/docker-gateway.json"))
        for key in ("health_listener", "metrics_listener"):
            self.assertEqual(self.config[key], image[key], key)
        self.assertEqual(self.config["admin"]["address"], image["admin"]["address"])
        self.assertEqual([l["address"] for l in self.config["listeners"]],
                         [l["address"] for l in image["listeners"]])

    def test_network_policy_opens_game_and_metrics_only(self):
        policy = find(self.docs, "NetworkPolicy")[0]
        opened = {}
        for rule in policy["spec"]["ingress"]:
            for p in rule["ports"]:
                opened[self.resolve(p["port"])] = rule.get("from")
        self.assertEqual(set(opened), {self.ports["game"], self.ports["metrics"]})
        self.assertIsNone(opened[self.ports["game"]])
        self.assertEqual(opened[self.ports["metrics"]][0]["namespaceSelector"]["matchLabels"],
                         {"kubernetes.io/metadata.name": "monitoring"})

    def test_probes_use_the_health_port_and_prestop_the_admin_api(self):
        ready = self.container["readinessProbe"]["httpGet"]
        live = self.container["livenessProbe"]["httpGet"]
        self.assertEqual(ready["path"], "/ready")
        self.assertEqual(live["path"], "/healthz")
        self.assertEqual(self.resolve(ready["port"]), port_of(self.config["health_listener"]))
        self.assertEqual(self.resolve(live["port"]), port_of(self.config["health_listener"]))
        cmd = " ".join(self.container["lifecycle"]["preStop"]["exec"]["command"])
        self.assertRegex(cmd, r"-X POST http://127\.0\.0\.1:%d/drain" % self.admin_port())
        # The drain sends the admin token from the file the config names.
        token_file = self.config["admin"]["token_file"]
        self.assertIn('-H "Authorization: Bearer $(cat %s)"' % token_file, cmd)
        self.assertIn("-H 'Content-Type: application/json'", cmd)
        drain_s = int(re.match(r"(\d+)s$", self.config["drain_timeout"]).group(1))
        self.assertGreater(self.pod["spec"]["terminationGracePeriodSeconds"], drain_s + 5)

    def test_the_admin_token_is_mounted_from_the_secret(self):
        token_file = self.config["admin"]["token_file"]
        mount = next(m for m in self.container["volumeMounts"]
                     if token_file.startswith(m["mountPath"] + "/"))
        self.assertTrue(mount.get("readOnly"))
        vol = next(v for v in self.pod["spec"]["volumes"] if v["name"] == mount["name"])
        secret = find(self.docs, "Secret")
        self.assertEqual(len(secret), 1, "secret.example.yaml")
        self.assertEqual(vol["secret"]["secretName"], secret[0]["metadata"]["name"])
        item = vol["secret"]["items"][0]
        self.assertEqual(item["path"], token_file[len(mount["mountPath"]) + 1:])
        self.assertIn(item["key"], secret[0]["stringData"])
        # Readable by the non-root user: group-readable with fsGroup its group.
        self.assertEqual(self.pod["spec"]["securityContext"]["fsGroup"],
                         self.pod["spec"]["securityContext"]["runAsGroup"])
        self.assertEqual(vol["secret"]["defaultMode"] & 0o040, 0o040)
        # No token in the repo: the example's placeholder is refused by the gateway.
        placeholder = secret[0]["stringData"][item["key"]]
        self.assertIn(" ", placeholder)
        cfg, _ = self.runnable_config(self.config)
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as t:
            t.write(placeholder)
        cfg["admin"]["token_file"] = t.name
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfg, f)
        try:
            out = subprocess.run([GATEWAY, "--check-config", f.name], capture_output=True,
                                 text=True)
            self.assertNotEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("/admin/token_file", out.stdout + out.stderr)
        finally:
            os.unlink(f.name)
            os.unlink(t.name)

    def test_services_select_the_pods_and_target_real_ports(self):
        labels = self.pod["metadata"]["labels"]
        services = find(self.docs, "Service")
        self.assertEqual(len(services), 2)
        targets = set()
        for s in services:
            for k, v in s["spec"]["selector"].items():
                self.assertEqual(labels.get(k), v, s["metadata"]["name"])
            for p in s["spec"]["ports"]:
                targets.add(self.resolve(p["targetPort"]))
        self.assertEqual(targets, {self.ports["game"], self.ports["metrics"]})
        sel = self.deploy["spec"]["selector"]["matchLabels"]
        for k, v in sel.items():
            self.assertEqual(labels[k], v)
        pdb = find(self.docs, "PodDisruptionBudget")[0]
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"], sel)

    def test_hpa_scales_this_deployment_on_cpu_and_connections(self):
        hpa = find(self.docs, "HorizontalPodAutoscaler")[0]
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], self.deploy["metadata"]["name"])
        kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
        self.assertEqual(kinds["Resource"]["resource"]["name"], "cpu")
        self.assertEqual(kinds["Pods"]["pods"]["metric"]["name"],
                         "game_gateway_connections_active")
        adapter = yaml.safe_load(open(f"{OPS}/k8s/prometheus-adapter-rules.yaml"))
        self.assertEqual(adapter["rules"]["custom"][0]["name"]["as"],
                         "game_gateway_connections_active")
        res = self.container["resources"]
        self.assertIn("memory", res["requests"])
        self.assertIn("memory", res["limits"])

    def test_dockerfile_matches(self):
        text = open(f"{OPS}/Dockerfile").read()
        exposed = {int(p) for line in re.findall(r"^EXPOSE (.*)$", text, re.M)
                   for p in line.split()}
        self.assertEqual(exposed, {self.ports["game"], self.admin_port(), self.ports["health"],
                                   self.ports["metrics"]})
        self.assertIn("bazel build --config=opt //core:gateway", text)
        self.assertIn("curl", text)  # the preStop hook needs it
        self.assertIn("--config", text)

    def test_docker_image_config(self):
        """The image's own config listens on all interfaces (admin on loopback),
        runs as a non-root user, probes the health port, and passes
        --check-config (issue 16 item 7; Docker itself is not available)."""
        text = open(f"{OPS}/Dockerfile").read()
        final = text[text.rindex("\nFROM "):]  # the runtime stage
        copied = re.search(r"^COPY (\S+) /etc/gateway/gateway.json$", final, re.M)
        self.assertIsNotNone(copied, "the image must carry its own config")
        self.assertEqual(copied.group(1), "docs/ops/docker-gateway.json")
        user = re.search(r"^USER (\S+)$", final, re.M).group(1)
        self.assertNotIn(user.split(":")[0], ("0", "root"))
        self.assertRegex(final, r'ENTRYPOINT \["/usr/local/bin/gateway"\]')
        self.assertRegex(final, r'CMD \["--config", "/etc/gateway/gateway.json"\]')
        self.assertRegex(final, r"HEALTHCHECK .*\n?.*http://127\.0\.0\.1:9090/ready")
        exposed = {int(p) for line in re.findall(r"^EXPOSE (.*)$", final, re.M)
                   for p in line.split()}
        cfg = json.load(open(f"{OPS}/docker-gateway.json"))
        for listener in cfg["listeners"]:
            host, port = listener["address"].rsplit(":", 1)
            self.assertEqual(host, "0.0.0.0", listener["name"])
            self.assertIn(int(port), exposed)
        self.assertTrue(cfg["admin"]["address"].startswith("127.0.0.1:"))
        self.assertEqual(cfg["health_listener"], "0.0.0.0:9090")
        self.assertEqual(cfg["metrics_listener"], "0.0.0.0:9091")
        self.assertTrue({9090, 9091} <= exposed)
        out = subprocess.run([GATEWAY, "--check-config", f"{OPS}/docker-gateway.json"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_configmap_config_passes_check_config(self):
        cfg, dropped = self.runnable_config(self.config)
        cfg["admin"]["token_file"] = self.token_file()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfg, f)
        try:
            out = subprocess.run([GATEWAY, "--check-config", f.name], capture_output=True,
                                 text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("OK", out.stdout)
        finally:
            os.unlink(f.name)

    def token_file(self):
        return token_file(self)

    def runnable_config(self, config):
        return runnable_config(config, self.filters)

    def test_the_real_gateway_serves_what_the_manifests_and_rules_use(self):
        cfg, dropped = self.runnable_config(self.config)
        gw, ports = start_gateway(self, cfg, start_backend(self))
        admin, game, health = ports["admin"], ports["game"], ports["health"]
        token_file = self.config["admin"]["token_file"]
        cfg["admin"]["token_file"] = gw.token_file

        # The probe paths answer 200 once ready.
        deadline = time.time() + 5
        while request(health, "GET", "/ready")[0] != 200 and time.time() < deadline:
            time.sleep(0.05)
        for probe in ("readinessProbe", "livenessProbe"):
            path = self.container[probe]["httpGet"]["path"]
            self.assertEqual(request(health, "GET", path)[0], 200, path)

        # Traffic through the chain: frames to every routed service type.
        for st in (10, 15, 200):
            s = socket.create_connection(("127.0.0.1", game), timeout=5)
            for i in range(3):
                s.sendall(struct.pack("<HHI", 5, 100 + i, st << 8) + b"hello")
                got = b""
                while len(got) < 8:
                    chunk = s.recv(8 - len(got))
                    self.assertTrue(chunk, "gateway closed the client\n" + gw.output())
                    got += chunk
                length = struct.unpack("<H", got[:2])[0]
                while len(got) < 8 + length:
                    got += s.recv(8 + length - len(got))
            s.close()

        # Prometheus scrapes the metrics listener (the pod's annotation).
        status, text = request(ports["metrics"], "GET", "/metrics")
        self.assertEqual(status, 200)
        families = metric_families(text)
        optional = {m for flt in dropped for m in FILTER_METRICS.get(flt, [])}

        # The HPA's custom metric is exported. (What the dashboard and the
        # alert rules read: ops_dashboards_test.py, through a real Prometheus.)
        hpa = find(self.docs, "HorizontalPodAutoscaler")[0]
        for m in hpa["spec"]["metrics"]:
            if m["type"] == "Pods":
                for name in referenced_metrics(m["pods"]["metric"]["name"]) - optional:
                    self.assertIn(name, families, "hpa.yaml")
        # The three names kept from the Go gateway.
        self.assertIn("# TYPE game_gateway_request_latency_seconds histogram", text)
        if "ip_limiter" not in dropped:
            self.assertIn("# TYPE game_gateway_rate_limit_rejected_total counter", text)
        if "breaker" not in dropped:
            self.assertIn("# TYPE game_gateway_circuit_breaker_state gauge", text)

        # The preStop hook itself (its token file and admin port moved to the
        # test's) drains: 503 on /ready, then a clean exit, and the hook returns.
        hook = list(self.container["lifecycle"]["preStop"]["exec"]["command"])
        hook[-1] = (hook[-1].replace(token_file, cfg["admin"]["token_file"])
                    .replace("127.0.0.1:%d" % self.admin_port(), "127.0.0.1:%d" % admin))
        player = socket.create_connection(("127.0.0.1", game), timeout=5)  # keeps it draining
        # The connect completes in the kernel's backlog; the drain must find it
        # accepted (counted), else it exits at once and the listener's close
        # resets the player. Wait for the gateway to count it (and the traffic
        # connections above to be gone) instead of sleeping a fixed 100 ms.
        active = 'game_gateway_connections_active{listener="game"}'
        deadline = time.time() + 5
        while metric_value(request(admin, "GET", "/metrics")[1], active) != 1:
            self.assertLess(time.time(), deadline, "the gateway never counted the player's "
                            "connection as its only one\n" + gw.output())
            time.sleep(0.02)
        self.assertEqual(request(admin, "POST", "/drain")[0], 401)  # no token
        self.assertEqual(request(admin, "GET", "/ready")[0], 200)
        prestop = subprocess.Popen(hook, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: prestop.poll() is not None or prestop.kill())
        deadline = time.time() + 5
        while request(health, "GET", "/ready")[0] != 503:
            self.assertLess(time.time(), deadline, "the preStop hook did not drain\n" +
                            gw.output())
            time.sleep(0.02)
        self.assertEqual(request(admin, "GET", "/healthz")[0], 200)  # the hook's wait loop
        self.assertIsNone(prestop.poll(), "the hook returned while the gateway still ran")
        player.close()
        self.assertEqual(gw.proc.wait(10), 0, gw.output())
        hook_out = prestop.communicate(timeout=10)[0].decode()
        self.assertEqual(prestop.returncode, 0, hook_out)
        self.assertIn('"status": "draining"', hook_out)


class AlertRules(unittest.TestCase):
    def test_promtool_check_rules(self):
        out = subprocess.run([PROMTOOL, "check", "rules", f"{OPS}/alerts.yaml"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("SUCCESS", out.stdout)

    def test_promtool_test_rules(self):
        out = subprocess.run([PROMTOOL, "test", "rules", f"{OPS}/alerts_test.yaml"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_required_alerts_exist(self):
        rules = yaml.safe_load(open(f"{OPS}/alerts.yaml"))
        exprs = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]
                 if "alert" in r}
        records = {r["record"]: r["expr"] for g in rules["groups"] for r in g["rules"]
                   if "record" in r}

        def expanded(e):
            for name, body in records.items():
                e = e.replace(name, body)
            return e
        wanted = {
            "GameGatewayLatencyP95High": ["game_gateway_request_latency_seconds_bucket",
                                          "0.95", "> 0.1"],
            "GameGatewayCircuitBreakerOpen": ["game_gateway_circuit_breaker_state", "== 1"],
            "GameGatewayUpstreamHostSilent": ["game_gateway_upstream_host_silent", "> 0"],
            "GameGatewayRateLimitRejectionsHigh": ["game_gateway_rate_limit_rejected_total"],
            "GameGatewayUpstreamPoolUtilizationHigh": ["game_gateway_upstream_pool_connections",
                                                       "> 0.8"],
        }
        for alert, needles in wanted.items():
            self.assertIn(alert, exprs)
            for n in needles:
                self.assertIn(n, expanded(exprs[alert]) + exprs[alert], alert)


if __name__ == "__main__":
    unittest.main(verbosity=2)
