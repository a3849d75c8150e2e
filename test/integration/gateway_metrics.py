"""Reading the real gateway's /metrics in the Python integration tests
(transports_test.py, browser_test.py): metrics() fetches and parses the
exposition text, metric() sums a family's series matching some labels."""
import urllib.request


def metrics(admin_port):
    """{series: value} of GET /metrics on 127.0.0.1:admin_port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
        body = r.read().decode()
    values = {}
    for line in body.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    return values


def metric(values, name, **labels):
    """The sum of family `name`'s series in `values` carrying every label=value given."""
    total = 0.0
    for key, v in values.items():
        if key != name and not key.startswith(name + "{"):
            continue
        if all(f'{k}="{val}"' in key for k, val in labels.items()):
            total += v
    return total
