"""Peak RSS of the plugins and of terraform itself, from /proc."""
import glob
import os
import re
import statistics
import threading

from .common import AWS, EXPEL

# Peak RSS of the plugins: Terraform starts each provider several times per command, as a
# child of the `terraform` process. A thread polls the children of our terraform processes
# (/proc/PID/task/*/children, so other sessions' plugins on this machine are not counted)
# and keeps the highest VmHWM per provider; VmHWM only grows, so a 20 ms period loses at most
# the last 20 ms of a plugin's life.


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _hwm_kib(pid):
    status = read_bytes(f"/proc/{pid}/status")
    m = re.search(rb"^VmHWM:\s+(\d+) kB", status or b"", re.M)
    return int(m.group(1)) if m else None


class RssSampler(threading.Thread):
    def __init__(self, period=0.02):
        super().__init__(daemon=True)
        self.period = period
        self.lock = threading.Lock()
        self.terraform_pids = {}   # pid -> side, while it runs
        self.kind_of = {}          # plugin pid -> "expel" | "aws" | other
        self.side_of = {}          # plugin pid -> the side of the command that started it
        self.peak = {}             # plugin pid -> max VmHWM seen (kB)
        self.commands = {}         # terraform pid -> (side, set of its plugin pids)
        self.core_peak = {}        # side -> max VmHWM of terraform itself (kB)
        self.stop_event = threading.Event()

    def watch(self, pid, side):
        with self.lock:
            self.terraform_pids[pid] = side
            self.commands[pid] = (side, set())

    def unwatch(self, pid):
        self.sample()  # the last look at its plugins, if any still run
        with self.lock:
            self.terraform_pids.pop(pid, None)

    def _classify(self, pid):
        comm = (read_bytes(f"/proc/{pid}/comm") or b"").strip()
        if not comm.startswith(b"terraform-provi"):  # comm is cut to 15 characters
            return None
        argv0 = os.path.basename((read_bytes(f"/proc/{pid}/cmdline") or b"").split(b"\0")[0])
        if argv0.startswith(b"terraform-provider-expel"):
            return EXPEL
        if argv0.startswith(b"terraform-provider-aws"):
            return AWS
        return argv0.decode(errors="replace")

    def sample(self):
        with self.lock:
            watched = dict(self.terraform_pids)
        for tf, side in watched.items():
            hwm = _hwm_kib(tf)
            if hwm:
                with self.lock:
                    self.core_peak[side] = max(self.core_peak.get(side, 0), hwm)
            for task in glob.glob(f"/proc/{tf}/task/*/children"):
                for child in (read_bytes(task) or b"").split():
                    pid = int(child)
                    with self.lock:
                        known = pid in self.kind_of
                    if not known:
                        kind = self._classify(pid)
                        if kind is None:
                            continue
                        with self.lock:
                            self.kind_of[pid] = kind
                            self.side_of[pid] = side
                    hwm = _hwm_kib(pid)
                    with self.lock:
                        self.commands[tf][1].add(pid)
                        if hwm:
                            self.peak[pid] = max(self.peak.get(pid, 0), hwm)

    def run(self):
        while not self.stop_event.wait(self.period):
            self.sample()

    def stop(self):
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=2)

    def peak_kib(self, kind, side=None):
        """Max VmHWM of the `kind` plugins, of the commands of `side` only when given."""
        with self.lock:
            vals = [v for pid, v in self.peak.items() if self.kind_of.get(pid) == kind
                    and side in (None, self.side_of.get(pid))]
        return max(vals) if vals else None

    def processes_per_command(self, kind):
        """Mean plugin processes per terraform command (of those that started any)."""
        with self.lock:
            counts = [sum(1 for p in pids if self.kind_of.get(p) == kind)
                      for _, pids in self.commands.values()]
        counts = [c for c in counts if c]
        return round(float(statistics.mean(counts)), 1) if counts else None
