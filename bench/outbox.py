#!/usr/bin/python3
"""The outbox under a burst (SPEC §14, the reliability review's D5), measured against a real
SMTP server (Debian's aiosmtpd, in this process) and that server's own limit:

1. reference: the server fed by Python's smtplib over as many connections as Tessera uses;
2. Tessera on SQLite with one team of USERS users (seeded by `tessera-bench seed`): the owner
   turns "Require 2FA" on, which queues one email per user in one transaction; meanwhile a
   few people without 2FA sign in from new devices, each waiting for a device code.

Prints one JSON line: the sink's rate, Tessera's delivered emails per second, the seconds
from the click until the last user has the email, and the device codes' latencies.

    bench/outbox.py TESSERA TESSERA_BENCH WORKDIR [USERS] [CONNECTIONS]
"""

import base64
import hashlib
import hmac
import json
import os
import smtplib
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

from aiosmtpd.controller import Controller

PROBES = 5
PROBE_PASSWORD = "outbox bench probe password 7"


class Sink:
    """Accepts every email and notes when each recipient's arrived."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals = []

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.arrivals.append((now, rcpt.lower()))
        return "250 OK"

    def matching(self, predicate):
        with self.lock:
            return [(t, r) for t, r in self.arrivals if predicate(r)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def totp(secret_b32, at=None):
    """RFC 6238, SHA-1, 6 digits, 30 s: the bench's own implementation."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def call(base, method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method)
    request.add_header("User-Agent", "tessera-outbox-bench/1")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=120) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def sink_rate(port, connections, count=3000):
    """What the sink takes from smtplib over `connections` connections, emails per second."""
    body = "x" * 3000

    def send(share):
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for i in range(share):
                msg = EmailMessage()
                msg["From"] = "bench@example.com"
                msg["To"] = f"ref{i}@reference.example"
                msg["Subject"] = "reference"
                msg.set_content(body)
                smtp.send_message(msg)

    start = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(send, [count // connections] * connections))
    return (count // connections * connections) / (time.monotonic() - start)


def wait_until(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"outbox bench: {what} did not happen within {seconds} s")


def main():
    tessera, bench, work = sys.argv[1], sys.argv[2], sys.argv[3]
    users = int(sys.argv[4]) if len(sys.argv) > 4 else 10_000
    connections = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    os.makedirs(work, exist_ok=True)

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    reference = sink_rate(controller.port, connections)

    addr = f"127.0.0.1:{free_port()}"
    base = f"http://{addr}/api/v1"
    database = f"sqlite://{work}/tessera.db"
    (open(f"{work}/tessera.toml", "w")).write(f"[mail]\nconnections = {connections}\n")
    env = dict(
        os.environ,
        TESSERA_DATA_DIR=work,
        TESSERA_DATABASE_URL=database,
        TESSERA_BIND=addr,
        TESSERA_CONFIG=f"{work}/tessera.toml",
        TESSERA_SMTP_URL=f"smtp://127.0.0.1:{controller.port}",
        TESSERA_SIGNUP="open",
        TESSERA_LOG="warn",
    )
    log = open(f"{work}/log", "w")
    server = subprocess.Popen([tessera, "serve"], env=env, stdout=log, stderr=log)
    try:
        wait_until(lambda: _healthy(base), 30, "the server starting")
        seeds = f"{work}/seeds.csv"
        subprocess.run(
            [bench, "seed", "--database", database, "--users", str(users), "--challenges", "1",
             "--team-size", str(users), "--out", seeds],
            check=True, env=env, stdout=subprocess.DEVNULL)
        challenge, secret, _owner = open(seeds).readline().strip().split(",")
        status, signed_in = call(base, "POST", "/login/verify",
                                 {"challenge_token": challenge, "code": totp(secret)})
        assert status == 200, (status, signed_in)
        owner = signed_in["session_token"]

        probes = [f"probe{i}@probe.example" for i in range(PROBES)]
        for i, email in enumerate(probes):
            status, body = call(base, "POST", "/signup", {
                "account_name": f"Probe {i}", "name": f"Probe {i}", "email": email,
                "password": PROBE_PASSWORD})
            assert status == 201, (status, body)
        # Let the sign-up emails go, so the burst starts from an idle outbox.
        time.sleep(2)

        clicked = time.monotonic()
        status, body = call(base, "PUT", "/account/two-factor-policy", {"required": True},
                            token=owner)
        assert status == 200, (status, body)
        queued = time.monotonic()

        asked = {}
        for email in probes:
            time.sleep(0.3)
            asked[email] = time.monotonic()
            status, body = call(base, "POST", "/login",
                                {"email": email, "password": PROBE_PASSWORD})
            assert status == 200 and body.get("status") == "device_verification_required", \
                (status, body)

        bench_users = lambda r: r.endswith("@bench.example")
        wait_until(lambda: len(sink.matching(bench_users)) >= users, 900,
                   f"{users} 'two-factor required' emails arriving")
        bulk = sorted(t for t, _ in sink.matching(bench_users))
        latencies = []
        for email in probes:
            wait_until(lambda: any(r == email for _, r in sink.matching(lambda r: True)
                                   if _ > asked[email]), 60, f"the device code to {email}")
            arrived = min(t for t, r in sink.matching(lambda r: r == email) if t > asked[email])
            latencies.append((arrived - asked[email]) * 1000)
        latencies.sort()
        delivering = bulk[-1] - bulk[0]
        print(json.dumps({
            "users": users,
            "connections": connections,
            "sink_per_sec": reference,
            "delivered_per_sec": (len(bulk) - 1) / delivering if delivering > 0 else None,
            "queue_seconds": queued - clicked,
            "require_2fa_seconds": bulk[-1] - clicked,
            "device_code_p50_ms": latencies[len(latencies) // 2],
            "device_code_max_ms": latencies[-1],
            "device_code_during_burst": sum(1 for e in probes if asked[e] < bulk[-1]),
        }))
    finally:
        server.terminate()
        server.wait(timeout=30)
        controller.stop()


def _healthy(base):
    try:
        return call(base, "GET", "/health")[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
