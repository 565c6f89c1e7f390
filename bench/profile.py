"""`--profile`: sample the web and worker processes with py-spy during the load.

py-spy writes collapsed stacks ("frame;frame;... count"); the summary counts, per
process, the share of samples spent inside each of our own functions (inclusive)
and in each innermost frame (self), which is where the time goes.
"""

import contextlib
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

APP = ("bots", "routing", "agents", "config")
RATE = 67  # samples per second: enough for a run of a minute, cheap to take


class Profiler:
    def __init__(self, out: Path, pids: dict[str, int]) -> None:
        self.out = out
        self.pids = pids
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        binary = str(Path(sys.executable).parent / "py-spy")
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            log = (self.out / f"{name}.py-spy.log").open("wb")
            self.processes[name] = subprocess.Popen(
                [
                    binary, "record", "--pid", str(pid), "--rate", str(RATE),
                    "--format", "raw", "--output", str(self.out / f"{name}.txt"),
                    "--subprocesses", "--nonblocking",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            log.close()

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def summary(self, top: int = 12) -> dict[str, dict]:
        return {
            name: summarize(self.out / f"{name}.txt", top)
            for name in self.processes
            if (self.out / f"{name}.txt").exists()
        }


def _frame(text: str) -> str:
    """`function (path/to/file.py:123)` → `file.py:function`."""
    function, _, where = text.partition(" (")
    path = where.rsplit(":", 1)[0]
    return f"{'/'.join(path.split('/')[-2:])}:{function}"


def _ours(frame: str) -> bool:
    """A frame in our code: py-spy shows its path relative to the project."""
    return frame.rpartition(" (")[2].split("/")[0] in APP


def summarize(path: Path, top: int) -> dict:
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        innermost[_frame(frames[-1])] += samples
        ours = {_frame(f) for f in frames if _ours(f)}
        for frame in ours:
            inclusive[frame] += samples

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [
            (frame, round(100 * n / total, 1)) for frame, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "ours_inclusive_pct": share(inclusive),
        "self_pct": share(innermost),
    }
