"""PostgreSQL's CPU time so far, in seconds: bench/run reads it before and after a load.

The sum of user and system time of every process named postgres, plus the time of the
ended ones, which the kernel adds to their parent when it reaps them: the postmaster's
(the one postgres process whose parent is not postgres) cutime and cstime.
"""

import os
tck = os.sysconf("SC_CLK_TCK")
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    if comm != "postgres":
        continue
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    total += utime + stime
    try:
        with open(f"/proc/{fields[1]}/comm") as f:
            parent = f.read().strip()
    except OSError:
        parent = ""
    if parent != "postgres":
        total += cutime + cstime
print(total / tck)
