#!/usr/bin/env python3
"""Smoke test of a running peer (or of Tessera: same contract), standard library only.

    python3 smoke.py PORT SEEDED.csv [--load SECONDS] [--concurrency N]

Checks, with its own RFC 6238 code (not django-otp's, not pyotp's):
  1. the right code for a fresh challenge -> 200 authenticated with a session token;
  2. the same challenge again -> 401 invalid_challenge;
  3. a fresh challenge with a wrong code -> 401 invalid_code.
With --load, then signs in with further CSV lines from N threads for about SECONDS seconds
(each line once, bounded by the CSV) and prints the rate and the statuses it saw.
"""
import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import json
import struct
import sys
import threading
import time


def totp(secret_b32, at=None, step=30, digits=6):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def post(port, token, code):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"challenge_token": token, "code": code})
        conn.request("POST", "/api/v1/login/verify", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data[:200]
        return response.status, parsed
    finally:
        conn.close()


def check(label, got, want_status, want):
    status, body = got
    ok = status == want_status and want(body)
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {status} {body}")
    return ok


def load(port, rows, seconds, concurrency):
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    statuses = collections.Counter()
    latencies = []
    rows = iter(rows)

    def worker():
        while time.monotonic() < stop_at:
            with lock:
                row = next(rows, None)
            if row is None:
                return
            token, secret = row
            started = time.perf_counter()
            try:
                status, _ = post(port, token, totp(secret))
            except OSError as e:
                status = type(e).__name__
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] += 1
                latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    latencies.sort()
    n = len(latencies)
    print(
        json.dumps(
            {
                "requests": n,
                "seconds": round(took, 2),
                "per_sec": round(n / took, 1),
                "p50_ms": round(latencies[n // 2] * 1000, 1) if n else None,
                "p99_ms": round(latencies[min(n - 1, n * 99 // 100)] * 1000, 1) if n else None,
                "statuses": {str(k): v for k, v in statuses.items()},
            }
        )
    )
    return set(statuses) == {200}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("csv")
    parser.add_argument("--load", type=float, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with open(args.csv) as f:
        rows = [line.rstrip("\n").split(",") for line in f if line.strip()]
    if len(rows) < 2:
        sys.exit("need at least 2 CSV lines")
    (t1, s1), (t2, s2) = rows[0], rows[1]

    ok = check(
        "right code",
        post(args.port, t1, totp(s1)),
        200,
        lambda b: b.get("status") == "authenticated" and len(b.get("session_token", "")) >= 32,
    )
    ok &= check(
        "same challenge again",
        post(args.port, t1, totp(s1)),
        401,
        lambda b: b == {"error": {"code": "invalid_challenge"}},
    )
    right = totp(s2)
    wrong = next(
        c for c in ("000000", "111111", "222222", "333333")
        if c not in {totp(s2, time.time() + d) for d in (-60, -30, 0, 30, 60)} and c != right
    )
    ok &= check(
        "wrong code",
        post(args.port, t2, wrong),
        401,
        lambda b: b == {"error": {"code": "invalid_code"}},
    )
    if args.load > 0:
        ok &= load(args.port, rows[2:], args.load, args.concurrency)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
