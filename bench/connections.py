#!/usr/bin/env python3
"""How many slow and idle connections Tessera sheds while still answering others quickly.

Starts `tessera serve` (SQLite, default connection settings unless given), then, in two
scenarios, opens attacking connections from other loopback addresses while a probe client
on 127.0.0.1 asks `GET /api/v1/health` on a fresh connection every 20 ms:

1. one address: SLOW half-sent request heads ("slowloris") from 127.0.0.2;
2. many addresses: SLOW half-sent heads and IDLE connections (connected, nothing sent)
   spread over 100 addresses, each under the per-address cap.

For the attacking connections it reports (from the server's `/metrics`) how many were
refused over a cap or closed to make room at the total cap, how many the header timeout
closed, and how many were still open when the watch ended; for the probe, its latencies and
failures. Prints a Markdown section (appended to bench/RESULTS.md by
bench/run). Nothing here is a test: it reports, it never fails.

    bench/connections.py [--tessera PATH] [--slow N] [--idle N] [--watch SECS]
"""

import argparse
import http.client
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def start(binary, workdir, env_extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TESSERA_BIND": "127.0.0.1:0",
        "TESSERA_LOG_FORMAT": "json",
        "TESSERA_LOG": "warn,tessera=info",
        "TESSERA_DATA_DIR": os.path.join(workdir, "data"),
    }
    env.update(env_extra)
    proc = subprocess.Popen(
        [binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    address, limits = None, {}
    for line in proc.stdout:
        entry = json.loads(line)
        fields = entry.get("fields", {})
        if "max_connections" in fields:
            limits = fields
        if "address" in fields:
            address = fields["address"]
            break
    # Keep draining the log so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    host, port = address.rsplit(":", 1)
    return proc, (host, int(port)), limits


def metrics(address):
    """The server's connection figures: open now, refused by each cap so far."""
    conn = http.client.HTTPConnection(*address, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    figures = {}
    for line in text.splitlines():
        if line.startswith("tessera_connections_open "):
            figures["open"] = int(line.split()[-1])
        elif line.startswith('tessera_connections_refused_total{cap="total"}'):
            figures["total"] = int(line.split()[-1])
        elif line.startswith('tessera_connections_refused_total{cap="per_ip"}'):
            figures["per_ip"] = int(line.split()[-1])
        elif line.startswith("tessera_connections_evicted_total "):
            figures["evicted"] = int(line.split()[-1])
    return figures


class Probe(threading.Thread):
    """GET /api/v1/health on a fresh connection every 20 ms."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.address = address
        self.latencies = []
        self.failures = 0
        self.running = True
        self.peak_open = 0

    def run(self):
        rounds = 0
        while self.running:
            rounds += 1
            if rounds % 10 == 0:
                try:
                    self.peak_open = max(self.peak_open, metrics(self.address)["open"])
                except (OSError, KeyError):
                    pass
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(*self.address, timeout=5)
                conn.request("GET", "/api/v1/health")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    self.latencies.append((time.perf_counter() - started) * 1000)
                else:
                    self.failures += 1
            except OSError:
                self.failures += 1
            time.sleep(0.02)


def attack(address, sources, slow, idle, watch):
    """Opens `slow` half-sent heads and `idle` silent connections, spread over `sources`;
    watches them for `watch` seconds. Returns counts by fate."""
    selector = selectors.DefaultSelector()
    opened_at = {}
    fates = {"closed": 0, "held": 0, "failed to connect": 0}
    kinds = ["slow"] * slow + ["idle"] * idle

    def look(timeout):
        """Notes the connections the server closed, by how long they lived."""
        for key, _ in selector.select(timeout=timeout):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                continue  # an answer (a 408, say): the close follows
            opened_at.pop(s)
            fates["closed"] += 1
            selector.unregister(s)
            s.close()

    for i, kind in enumerate(kinds):
        if i % 20 == 0:
            look(0)
        source = sources[i % len(sources)]
        s = socket.socket()
        try:
            s.bind((source, 0))
            s.settimeout(1)
            s.connect(address)
            if kind == "slow":
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
        except OSError:
            fates["failed to connect"] += 1
            s.close()
            continue
        opened_at[s] = time.monotonic()
        selector.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + watch
    while opened_at and time.monotonic() < deadline:
        look(0.1)
    fates["held"] = len(opened_at)
    for s in opened_at:
        s.close()
    return fates


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    parser = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default = os.path.join(root, "target", "release", "tessera")
    parser.add_argument("--tessera", default=default)
    parser.add_argument("--slow", type=int, default=4000)
    parser.add_argument("--idle", type=int, default=8000)
    parser.add_argument("--watch", type=float, default=15)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    rows = []
    many = [f"127.0.1.{i}" for i in range(1, 101)]
    scenarios = [
        ("one address, slow heads", {}, ["127.0.0.2"], args.slow, 0),
        ("100 addresses, slow heads and idle connections", {}, many, args.slow, args.idle),
        (
            "100 addresses, slow heads, `TESSERA_MAX_CONNECTIONS=1000`",
            {"TESSERA_MAX_CONNECTIONS": "1000"},
            many,
            args.slow,
            0,
        ),
    ]
    limits = None
    for name, env, sources, slow, idle in scenarios:
        with tempfile.TemporaryDirectory() as workdir:
            proc, address, started_with = start(args.tessera, workdir, env)
            limits = limits or started_with
            try:
                before = metrics(address)
                probe = Probe(address)
                probe.start()
                time.sleep(0.5)
                fates = attack(address, sources, slow, idle, args.watch)
                probe.running = False
                probe.join()
                after = metrics(address)
                fates["per_ip"] = after["per_ip"] - before["per_ip"]
                fates["total"] = after["total"] - before["total"]
                fates["evicted"] = after["evicted"] - before["evicted"]
                rows.append((name, slow, idle, fates, probe))
            finally:
                proc.terminate()
                proc.wait(timeout=40)

    print("\n## Slow and idle connections (`bench/connections.py`)\n")
    print(
        f"`tessera serve` with its default connection settings: at most "
        f"{limits.get('max_connections')} connections "
        f"(half the open-file limit, {limits.get('open_files')}), "
        f"{limits.get('max_connections_per_ip')} per client address, heads within "
        f"{limits.get('header_timeout_secs')} s. Attacking connections come from other "
        f"loopback addresses; a probe on 127.0.0.1 asks `GET /api/v1/health` on a fresh "
        f"connection every 20 ms meanwhile. Watched {args.watch:.0f} s per scenario; "
        f"binary `{os.path.relpath(args.tessera, root)}`.\n"
    )
    print(
        "| scenario | slow | idle | refused: per-address cap | refused: total cap "
        "| closed to make room at the cap | closed at the header timeout "
        "| still open at the end | could not connect | most open at once | probe answers "
        "| probe p50 | probe p99 | probe max | probe failures |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, slow, idle, fates, probe in rows:
        lat = probe.latencies
        shed = fates["per_ip"] + fates["total"] + fates["evicted"]
        print(
            f"| {name} | {slow:,} | {idle:,} | {fates['per_ip']:,} | {fates['total']:,} | "
            f"{fates['evicted']:,} | {fates['closed'] - shed:,} | {fates['held']:,} | "
            f"{fates['failed to connect']:,} | {probe.peak_open:,} | "
            f"{len(lat):,} | {statistics.median(lat) if lat else float('nan'):.1f} ms | "
            f"{percentile(lat, 0.99):.1f} ms | {max(lat) if lat else float('nan'):.1f} ms | "
            f"{probe.failures} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
