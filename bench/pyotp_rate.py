#!/usr/bin/env python3
"""pyotp's TOTP verification rate on one core, window +-1 (SHA-1, 6 digits, 30 s).

Run it with `bench/peers/django/run.sh pyotp-rate` (installs pinned pyotp into the peer's
venv). Prints one JSON line:

    {"verifications_per_sec": X, "pyotp_version": "...", "case": "no_match", ...}

`verifications_per_sec` is the worst case, `totp.verify(code, valid_window=1)` with a
6-digit code that matches none of the three steps, so every call computes three HMACs
(pyotp checks the steps -1, 0, +1 in that order and stops at a match). The code that
matches only the LAST step (+1) costs the same three HMACs; its rate is given too as
`next_step_match_per_sec`. Each case runs about 1.5 s, both together about 3 s, in this
one process pinned to one CPU when the platform allows it.
"""
import base64
import json
import os
import secrets
import sys
import time
from importlib.metadata import version

import pyotp

SECONDS_PER_CASE = 1.5
BATCH = 500


def pin_to_one_cpu():
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def no_match_code(totp, now):
    """A 6-digit code valid at none of the steps around now (even if a step ends meanwhile)."""
    valid = {totp.at(now, counter_offset=offset) for offset in range(-2, 3)}
    while True:
        code = f"{secrets.randbelow(10**6):06d}"
        if code not in valid:
            return code


def rate(totp, pick_code, expect):
    calls = 0
    unexpected = 0
    started = time.perf_counter()
    deadline = started + SECONDS_PER_CASE
    while True:
        code = pick_code(totp, time.time())
        for _ in range(BATCH):
            if totp.verify(code, valid_window=1) is not expect:
                unexpected += 1
        calls += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started), unexpected


def main():
    cpu = pin_to_one_cpu()
    secret = base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")
    totp = pyotp.TOTP(secret, digits=6, interval=30)  # SHA-1 is pyotp's default digest

    # Warm up, then the two cases.
    assert all(totp.verify(totp.now(), valid_window=1) for _ in range(1000))
    no_match, no_match_unexpected = rate(totp, no_match_code, False)
    # Refreshed per batch; a step boundary inside a batch may make a few calls match at
    # step 0 (cheaper) instead of +1, counted in next_step_unexpected when they miss.
    next_step, next_step_unexpected = rate(totp, lambda t, now: t.at(now, counter_offset=1), True)

    print(
        json.dumps(
            {
                "verifications_per_sec": round(no_match),
                "pyotp_version": version("pyotp"),
                "case": "no_match (window +-1, 3 HMAC-SHA1 per call)",
                "next_step_match_per_sec": round(next_step),
                "unexpected_results": no_match_unexpected + next_step_unexpected,
                "cpu": cpu,
                "python": ".".join(map(str, sys.version_info[:3])),
            }
        )
    )


if __name__ == "__main__":
    main()
