"""Where the machine's CPU went during the load, per part of the stack.

Read from /proc: user and system time of every process, attributed to the stack's
process groups (web, workers, beat), PostgreSQL (its OS user), Valkey and the
harness itself; and the whole machine's busy time, so that `other` shows what
processes that are not ours took (another job on the same machine skews every
number: the report says so). Two snapshots and a difference, divided by the wall
time, give cores used: on a 2-core machine, 2.0 is everything.
"""

import os
import pwd
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _postgres_uid() -> int | None:
    try:
        return pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return None


def snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far per part; `groups` maps a name to a process group id."""
    by_group = {pgid: name for name, pgid in groups.items()}
    postgres = _postgres_uid()
    harness = os.getpid()
    used: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            uid = entry.stat().st_uid
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # Its own time and that of its children that exited (a PostgreSQL backend
        # closed during the load counts in the postmaster's).
        pgid = int(fields[2])
        seconds = sum(int(value) for value in fields[11:15]) / TICKS
        if int(entry.name) == harness:
            name = "harness"
        elif pgid in by_group:
            name = _kind(by_group[pgid])
        elif uid == postgres:
            name = "postgres"
        elif command.startswith("valkey"):
            name = "valkey"
        else:
            continue
        used[name] = used.get(name, 0.0) + seconds
    used["machine"] = _machine_busy()
    return used


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (/proc/stat, all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def _kind(name: str) -> str:
    """web1, web2 → web; worker1, worker2 → worker."""
    return name.rstrip("0123456789")


def cores(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    """Cores used per part between two snapshots."""
    if seconds <= 0:
        return {}
    used = {
        name: round((after.get(name, 0.0) - before.get(name, 0.0)) / seconds, 2)
        for name in sorted(set(before) | set(after))
    }
    machine = used.pop("machine", 0.0)
    used["ours"] = round(sum(used.values()), 2)
    used["other"] = round(max(machine - used["ours"], 0.0), 2)
    return used
