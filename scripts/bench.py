"""Benchmark figures for terraform-provider-expel (run through scripts/bench; not a test).

One run prints, side by side, expel_cloudtrail_integration (bench/expel) and the same AWS
objects written over hashicorp/aws 5.100.0 (bench/aws-anchor), both against the same moto
through the same fault proxy: apply, no-op plan, plan after an out-of-band change, repair,
destroy, AWS calls, apply with 50 ms added to every AWS call, and each plugin's peak RSS.
Plus the expel-only figures: handshake time, `terraform plan` of examples/quickstart, and
for the SaaS resources (examples/sentinelone, examples/wiz against the sandbox): apply, no-op
plan, destroy, and the API calls of each (a no-op plan's calls are the calls per refresh).

Needs the stack's environment (MOTO_URL, AWS_PROXY_URL, EXPEL_SANDBOX_URL, ...: scripts/stack
up), the venv's Python (boto3, for tests/e2e/oob.py) and hashicorp/aws 5.100.0 in a filesystem
mirror (default /opt/tf-plugins). The expel side uses dev_overrides and no `terraform init`
(Terraform 1.11); the anchor uses a CLI config with only that mirror, and `terraform init`.
"""
import argparse
import glob
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AWS_VERSION = "5.100.0"
OOB = os.path.join(ROOT, "tests", "e2e", "oob.py")
# 50 ms before every AWS call (tests/sandbox/README.md, AWS proxy).
LATENCY_FAULT = {"kind": "latency", "latency_ms": 50, "service": "*", "operation": "*", "count": -1}
EXPEL, AWS = "expel", "aws"
SAAS = "saas"  # the side of the SentinelOne and Wiz runs (same plugin, own RSS figure)


def die(msg):
    raise SystemExit(f"bench: {msg}")


def client_cert_pem(tmp):
    """A client certificate shaped like Terraform's: self-signed ECDSA P-521, a CA."""
    key, crt = os.path.join(tmp, "c.key"), os.path.join(tmp, "c.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521",
         "-sha512", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True)
    with open(crt) as f:
        return f.read()


def handshake_ms(provider, env):
    t0 = time.perf_counter()
    p = subprocess.Popen([provider], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline()
    dt = (time.perf_counter() - t0) * 1000
    p.kill()
    p.wait()
    assert line.startswith(b"1|6|unix|"), line
    return dt


# ---------------------------------------------------------------------------------------
# Peak RSS of the plugins: Terraform starts each provider several times per command, as a
# child of the `terraform` process. A thread polls the children of our terraform processes
# (/proc/PID/task/*/children, so other sessions' plugins on this machine are not counted)
# and keeps the highest VmHWM per provider; VmHWM only grows, so a 20 ms period loses at most
# the last 20 ms of a plugin's life.


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _hwm_kib(pid):
    status = _read(f"/proc/{pid}/status")
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
        comm = (_read(f"/proc/{pid}/comm") or b"").strip()
        if not comm.startswith(b"terraform-provi"):  # comm is cut to 15 characters
            return None
        argv0 = os.path.basename((_read(f"/proc/{pid}/cmdline") or b"").split(b"\0")[0])
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
                for child in (_read(task) or b"").split():
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


# ---------------------------------------------------------------------------------------
# Terraform and the stack


class Terraform:
    def __init__(self, sampler):
        self.sampler = sampler
        self.running = None
        self.cpu = None

    def __call__(self, side, workdir, env, *args, ok=(0,)):
        """Runs `terraform args` in workdir; returns (seconds, exit code). self.cpu is the CPU
        time (user + system) of terraform and its plugins, which the machine's load barely
        changes (commands run one at a time, so RUSAGE_CHILDREN grows by theirs alone)."""
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.Popen(["terraform", *args], cwd=workdir, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.running = p
        self.sampler.watch(p.pid, side)
        try:
            out, _ = p.communicate()
        finally:
            self.sampler.unwatch(p.pid)
            self.running = None
        dt = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        if p.returncode not in ok:
            tail = "\n".join(out.splitlines()[-60:])
            die(f"[{side}] `terraform {' '.join(args)}` in {workdir} exited {p.returncode} "
                f"(expected {' or '.join(map(str, ok))}):\n{tail}")
        return dt, p.returncode

    def kill(self):
        """Stops the running terraform and then any plugin it leaves behind (ours only)."""
        p = self.running
        if not p or p.poll() is not None:
            return
        plugins = set()
        for task in glob.glob(f"/proc/{p.pid}/task/*/children"):
            plugins.update(int(x) for x in (_read(task) or b"").split())
        plugins = {x for x in plugins
                   if (_read(f"/proc/{x}/comm") or b"").startswith(b"terraform-provi")}
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for pid in plugins:
            # Orphans now; the comm check guards against a reused pid.
            if (_read(f"/proc/{pid}/comm") or b"").startswith(b"terraform-provi"):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw.strip() else None


class Stack:
    def __init__(self):
        missing = [k for k in ("MOTO_URL", "AWS_PROXY_URL", "EXPEL_SANDBOX_URL", "EXPEL_API_KEY",
                               "EXPEL_WORKBENCH_URL") if not os.environ.get(k)]
        if missing:
            die(f"{', '.join(missing)} not set: run through scripts/bench, or "
                "`eval \"$(scripts/stack up)\"` first")
        self.moto = os.environ["MOTO_URL"].rstrip("/")
        self.proxy = os.environ["AWS_PROXY_URL"].rstrip("/")
        self.sandbox = os.environ["EXPEL_SANDBOX_URL"].rstrip("/")

    def reset(self):
        """Both sides start from an empty moto, Workbench and proxy (no faults, no calls)."""
        http("POST", f"{self.moto}/moto-api/reset")
        http("POST", f"{self.sandbox}/_admin/reset")
        http("POST", f"{self.proxy}/_proxy/reset")

    def clear_calls(self):
        http("DELETE", f"{self.proxy}/_proxy/calls")

    def calls(self):
        """(total AWS calls since clear_calls, how many were answered >= 400)."""
        d = http("GET", f"{self.proxy}/_proxy/calls")
        errors = sum(1 for e in d.get("log", []) if (e.get("status") or 0) >= 400)
        return d["total"], errors

    def clear_saas_calls(self):
        http("DELETE", f"{self.sandbox}/_admin/calls")

    def saas_calls(self):
        """Calls the sandbox answered since clear_saas_calls, per emulator (health checks,
        which Workbench makes itself, are not counted by the sandbox)."""
        routes = http("GET", f"{self.sandbox}/_admin/calls")["routes"]
        per = {}
        for route, n in routes.items():
            path = route.split(" ", 1)[-1]
            who = ("sentinelone" if path.startswith("/web/api") else
                   "wiz" if path.startswith("/wiz") else "workbench")
            per[who] = per.get(who, 0) + n
        return per

    def eventual(self, on, refusals=2, assume_seconds=5):
        """The proxy's eventual-consistency mode: refusals answered so far, per operation."""
        http("PUT", f"{self.proxy}/_proxy/eventual",
             {"enabled": on, "refusals": refusals, "assume_role_seconds": assume_seconds})
        return http("GET", f"{self.proxy}/_proxy/eventual").get("refused", {})

    def refused(self):
        return http("GET", f"{self.proxy}/_proxy/eventual").get("refused", {})

    def add_latency(self):
        http("POST", f"{self.proxy}/_proxy/faults", LATENCY_FAULT)

    def clear_faults(self):
        http("DELETE", f"{self.proxy}/_proxy/faults")

    def oob(self, action):
        r = subprocess.run([sys.executable, OOB, action], env=dict(os.environ), text=True,
                           capture_output=True)
        if r.returncode:
            die(f"tests/e2e/oob.py {action} failed:\n{r.stdout}{r.stderr}")
        return r.stdout

    def leftovers(self):
        """What is still in moto and Workbench (keys scheduled for deletion do not count)."""
        d = json.loads(self.oob("list"))
        left = [f"key {k} {s}" for k, s in d["keys"].items() if s != "PendingDeletion"]
        for kind in ("aliases", "buckets", "queues", "trails", "roles", "policies"):
            left += [f"{kind[:-1] if kind != 'aliases' else 'alias'} {x}" for x in d[kind]]
        wb = os.environ["EXPEL_WORKBENCH_URL"].rstrip("/")
        devices = http("GET", f"{wb}/api/v2/security_devices", token=os.environ["EXPEL_API_KEY"])
        left += [f"device {x['attributes'].get('name')}" for x in devices.get("data", [])]
        return left


def aws_mirror_or_die(mirror):
    osname = {"linux": "linux", "darwin": "darwin"}.get(sys.platform, sys.platform)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())
    where = os.path.join(mirror, "registry.terraform.io", "hashicorp", "aws", AWS_VERSION,
                         f"{osname}_{arch}")
    found = glob.glob(os.path.join(where, "terraform-provider-aws_*"))
    if not found:
        die(f"hashicorp/aws {AWS_VERSION} is not in the filesystem mirror {mirror}: expected "
            f"{where}/terraform-provider-aws_v{AWS_VERSION}_x5. The side-by-side benchmark needs it "
            f"(offline; nothing is downloaded). Put it there (e.g. `terraform providers mirror "
            f"{mirror}` in a configuration that requires hashicorp/aws {AWS_VERSION}) or pass "
            "--aws-mirror DIR / set EXPEL_BENCH_AWS_MIRROR.")
    return found[0]


# ---------------------------------------------------------------------------------------
# The side-by-side runs


def copy_tf(src, dst):
    os.makedirs(dst, exist_ok=True)
    for f in glob.glob(os.path.join(src, "*.tf")):
        shutil.copy(f, dst)
    return dst


def fresh_state(workdir):
    for f in glob.glob(os.path.join(workdir, "terraform.tfstate*")):
        os.remove(f)


def run_side(side, workdir, env, tf, stack, fig, plan_runs, apply_args=()):
    """apply, no-op plans, plan after drift, repair, destroy; figures into fig[metric][side]."""
    def put(metric, value):
        fig.setdefault(metric, {})[side] = value

    stack.reset()
    fresh_state(workdir)
    say(f"[{side}] apply")
    stack.clear_calls()
    dt, _ = tf(side, workdir, env, "apply", "-auto-approve", "-input=false", "-no-color", *apply_args)
    calls, errors = stack.calls()
    put("apply (s)", dt)
    put("  CPU of terraform + plugin in apply (s)", tf.cpu)
    put("  AWS calls in apply", calls)
    put("  of which answered 4xx/5xx (mostly not-found probes)", errors)

    say(f"[{side}] {plan_runs} no-op plans")
    plans, plan_calls, plan_cpu = [], [], []
    for _ in range(plan_runs):
        stack.clear_calls()
        dt, _ = tf(side, workdir, env, "plan", "-detailed-exitcode", "-input=false", "-no-color",
                   *apply_args)
        plans.append(dt)
        plan_cpu.append(tf.cpu)
        plan_calls.append(stack.calls()[0])
    put(f"no-op plan, median of {plan_runs} (s)", statistics.median(plans))
    put("  CPU of terraform + plugin in a no-op plan (s)", statistics.median(plan_cpu))
    put("  AWS calls in a no-op plan", int(statistics.median(plan_calls)))

    say(f"[{side}] drift: trail logging stopped out of band")
    stack.oob("trail-stop")
    stack.clear_calls()
    dt, _ = tf(side, workdir, env, "plan", "-detailed-exitcode", "-input=false", "-no-color",
               *apply_args, ok=(2,))
    put("plan after drift: trail stopped (s)", dt)
    say(f"[{side}] apply repairing the drift")
    dt, _ = tf(side, workdir, env, "apply", "-auto-approve", "-input=false", "-no-color", *apply_args)
    put("apply repairing the drift (s)", dt)

    say(f"[{side}] destroy")
    stack.clear_calls()
    dt, _ = tf(side, workdir, env, "destroy", "-auto-approve", "-input=false", "-no-color",
               *apply_args)
    put("destroy (s)", dt)
    put("  AWS calls in destroy", stack.calls()[0])
    left = stack.leftovers()
    put("objects left after destroy", len(left))
    return left


def apply_once(side, workdir, env, tf, stack, latency, apply_args=()):
    """A clean apply (optionally with 50 ms on every AWS call), then destroy; (s, calls)."""
    stack.reset()
    fresh_state(workdir)
    if latency:
        stack.add_latency()
    stack.clear_calls()
    dt, _ = tf(side, workdir, env, "apply", "-auto-approve", "-input=false", "-no-color", *apply_args)
    calls, _ = stack.calls()
    stack.clear_faults()
    tf(side, workdir, env, "destroy", "-auto-approve", "-input=false", "-no-color", *apply_args)
    return dt, calls


# The engine's backoff after the 1st and 2nd refusal of a call: 100-200 ms, then 200-400 ms
# (engine/retry.rs); the mean wait for K = 2 refusals is 0.15 + 0.30 s.
MEAN_WAIT_2_REFUSALS_S = 0.45
# Objects on the quickstart's critical path whose next calls AWS refuses while it propagates:
# the KMS key (PutKeyPolicy/CreateAlias), then the bucket (PutBucket*), then the trail
# (CreateTrail with the new key). The IAM chain (policy, role, attach) runs beside them.
CRITICAL_REFUSED_OBJECTS = 3


def eventual_side(workdir, env, tf, stack, runs):
    """examples/quickstart applied on a clean stack with the proxy's eventual-consistency
    mode off, then on (2 refusals per new object, AssumeRole of a new role refused 5 s)."""
    out = {}
    for on in (False, True):
        times, refused = [], {}
        for _ in range(runs):
            stack.reset()
            fresh_state(workdir)
            stack.eventual(on)
            dt, _ = tf(EXPEL, workdir, env, "apply", "-auto-approve", "-input=false", "-no-color")
            times.append(dt)
            refused = stack.refused()
            tf(EXPEL, workdir, env, "destroy", "-auto-approve", "-input=false", "-no-color")
        out[on] = (statistics.median(times), sum(refused.values()))
    stack.eventual(False)
    (off, _), (on, n) = out[False], out[True]
    bare = CRITICAL_REFUSED_OBJECTS * MEAN_WAIT_2_REFUSALS_S
    return [
        (f"quickstart apply, eventual consistency off, median of {runs} (s)", round(off, 3)),
        (f"quickstart apply, eventual consistency on, median of {runs} (s)", round(on, 3)),
        ("  refusals answered by the proxy (last run)", n),
        ("  added by the refusals (on - off, s)", round(on - off, 3)),
        (f"  bare critical path: {CRITICAL_REFUSED_OBJECTS} dependent objects x 2 refusals x mean backoff (s)",
         round(bare, 3)),
    ]


def saas_side(name, workdir, env, tf, stack, plan_runs):
    """apply, no-op plans, destroy of one SaaS example; [(metric, value)]."""
    def calls(per):
        return " + ".join(f"{per[k]} {k}" for k in sorted(per)) + f" = {sum(per.values())}"

    stack.reset()
    fresh_state(workdir)
    out = []
    say(f"[{name}] apply")
    stack.clear_saas_calls()
    dt, _ = tf(SAAS, workdir, env, "apply", "-auto-approve", "-input=false", "-no-color")
    out += [(f"{name}: apply (s)", dt), (f"{name}:   API calls in apply", calls(stack.saas_calls()))]
    plans, refresh = [], None
    for _ in range(plan_runs):
        stack.clear_saas_calls()
        dt, _ = tf(SAAS, workdir, env, "plan", "-detailed-exitcode", "-input=false", "-no-color")
        plans.append(dt)
        refresh = stack.saas_calls()
    out += [(f"{name}: no-op plan, median of {plan_runs} (s)", statistics.median(plans)),
            (f"{name}:   API calls per refresh (no-op plan)", calls(refresh))]
    say(f"[{name}] destroy")
    stack.clear_saas_calls()
    dt, _ = tf(SAAS, workdir, env, "destroy", "-auto-approve", "-input=false", "-no-color")
    out += [(f"{name}: destroy (s)", dt), (f"{name}:   API calls in destroy", calls(stack.saas_calls()))]
    return out


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"
    return str(v)


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
        return f"{a / b:.2f}"
    return ""


def print_table(rows, notes):
    head = ("metric", "expel", "hashicorp/aws", "ratio")
    cells = [head] + [(m, fmt(e), fmt(a), ratio(e, a)) for m, e, a in rows]
    w = [max(len(r[i]) for r in cells) for i in range(4)]
    line = lambda r: f"{r[0]:<{w[0]}} | {r[1]:>{w[1]}} | {r[2]:>{w[2]}} | {r[3]:>{w[3]}}"
    print(line(head))
    print("-+-".join("-" * x for x in w))
    for r in cells[1:]:
        print(line(r))
    for n in notes:
        print(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provider", required=True, help="the terraform-provider-expel binary")
    ap.add_argument("--runs", type=int, default=10, help="handshakes and quickstart plans")
    ap.add_argument("--plan-runs", type=int, default=5, help="no-op plans per side (median)")
    ap.add_argument("--aws-mirror", default=os.environ.get("EXPEL_BENCH_AWS_MIRROR", "/opt/tf-plugins"))
    ap.add_argument("--no-latency", action="store_true", help="skip the 50 ms/AWS call applies")
    a = ap.parse_args()
    if not os.access(a.provider, os.X_OK):
        die(f"{a.provider} is not an executable (build it: cargo build -p terraform-provider-expel)")
    aws_mirror_or_die(a.aws_mirror)  # before anything is started
    stack = Stack()
    if shutil.which("terraform") is None:
        die("terraform is not on PATH")

    tmp = tempfile.mkdtemp(prefix="expel-bench-")
    sampler = RssSampler()
    tf = Terraform(sampler)

    def on_term(signum, _frame):
        tf.kill()
        raise SystemExit(f"bench: stopped by signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        bench(a, tmp, stack, sampler, tf)
    finally:
        tf.kill()
        sampler.stop()
        try:
            stack.clear_faults()
        except Exception:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


def bench(a, tmp, stack, sampler, tf):
    # The plugin is copied: a concurrent `cargo build` cannot swap it mid-run, and its path
    # (dev_overrides wants a directory) names this run's plugins alone.
    plugins = os.path.join(tmp, "plugins")
    os.makedirs(plugins)
    provider = os.path.join(plugins, "terraform-provider-expel")
    shutil.copy2(a.provider, provider)

    load0 = os.getloadavg()[0]
    say("handshakes")
    base = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=COOKIE, PLUGIN_PROTOCOL_VERSIONS="5,6")
    plain = [handshake_ms(provider, base) for _ in range(a.runs)]
    tls_env = dict(base, PLUGIN_CLIENT_CERT=client_cert_pem(tmp))
    tls = [handshake_ms(provider, tls_env) for _ in range(a.runs)]

    common = {k: v for k, v in os.environ.items() if not k.startswith("TF_LOG")}
    common.update(TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0")
    common.pop("TF_PLUGIN_CACHE_DIR", None)
    dev_rc = os.path.join(tmp, "dev.tfrc")
    with open(dev_rc, "w") as f:
        f.write('provider_installation {\n  dev_overrides {\n    "expel-io/expel" = "%s"\n  }\n'
                '  direct {}\n}\n' % plugins)
    mirror_rc = os.path.join(tmp, "mirror.tfrc")
    with open(mirror_rc, "w") as f:
        f.write('provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n'
                '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n' % a.aws_mirror)

    say(f"quickstart: {a.runs} plans")
    quick = copy_tf(os.path.join(ROOT, "examples", "quickstart"), os.path.join(tmp, "quickstart"))
    log = os.path.join(tmp, "provider.log")
    qenv = dict(common, TF_CLI_CONFIG_FILE=dev_rc, TF_LOG_PROVIDER="info", TF_LOG_PATH=log)
    stack.reset()
    tf(EXPEL, quick, qenv, "plan", "-no-color", ok=(0, 2))  # warm the page cache
    plans = [tf(EXPEL, quick, qenv, "plan", "-no-color", ok=(0, 2))[0] for _ in range(a.runs)]
    with open(log) as f:
        rss_log = [int(m) for m in re.findall(r"peak_rss_kib=(\d+)", f.read())]

    sampler.start()
    fig = {}
    expel_dir = copy_tf(os.path.join(ROOT, "bench", "expel"), os.path.join(tmp, "expel"))
    expel_env = dict(common, TF_CLI_CONFIG_FILE=dev_rc)
    anchor_dir = copy_tf(os.path.join(ROOT, "bench", "aws-anchor"), os.path.join(tmp, "aws-anchor"))
    anchor_env = dict(common, TF_CLI_CONFIG_FILE=mirror_rc, TF_VAR_aws_endpoint=stack.proxy)

    say("[aws] terraform init (filesystem mirror)")
    init_s, _ = tf(AWS, anchor_dir, anchor_env, "init", "-input=false", "-no-color")

    left = {}
    left[EXPEL] = run_side(EXPEL, expel_dir, expel_env, tf, stack, fig, a.plan_runs)
    left[AWS] = run_side(AWS, anchor_dir, anchor_env, tf, stack, fig, a.plan_runs)

    say("[expel] apply with verify = false")
    no_verify = ("-var", "verify=false")
    nv_s, nv_calls = apply_once(EXPEL, expel_dir, expel_env, tf, stack, False, no_verify)

    saas = []
    for name, extra in (("sentinelone", {"TF_VAR_console_url": os.environ.get("SENTINELONE_CONSOLE_URL", ""),
                                         "TF_VAR_account_id": os.environ.get("SENTINELONE_ACCOUNT_ID", "")}),
                        ("wiz", {"TF_VAR_domain_validated": "true"})):
        d = copy_tf(os.path.join(ROOT, "examples", name), os.path.join(tmp, name))
        saas += saas_side(name, d, dict(expel_env, **extra), tf, stack, a.plan_runs)

    say("[expel] quickstart apply with eventual consistency off and on")
    quick_env = dict(common, TF_CLI_CONFIG_FILE=dev_rc)
    ec = eventual_side(quick, quick_env, tf, stack, max(1, a.plan_runs))

    lat = {}
    if not a.no_latency:
        for side, d, env, extra in ((EXPEL, expel_dir, expel_env, ()),
                                    (AWS, anchor_dir, anchor_env, ()),
                                    ("expel-nv", expel_dir, expel_env, no_verify)):
            say(f"[{side}] apply with 50 ms on every AWS call")
            lat[side] = apply_once(EXPEL if side != AWS else AWS, d, env, tf, stack, True, extra)
    stack.reset()
    sampler.stop()

    def row(metric):
        return (metric, fig[metric].get(EXPEL), fig[metric].get(AWS))

    mib = lambda k: round(k / 1024, 1) if k else None
    rows = [
        ("handshake, plaintext, median (ms)", statistics.median(plain), None),
        ("handshake, AutoMTLS, median (ms)", statistics.median(tls), None),
        (f"plan examples/quickstart, median of {a.runs} (s)", statistics.median(plans), None),
        ("plan examples/quickstart, min (s)", min(plans), None),
        ("plugin peak RSS, quickstart, own log (MiB)", mib(max(rss_log)) if rss_log else None, None),
        ("terraform init (s)", None, init_s),
    ]
    apply_aws = fig["apply (s)"][AWS]
    calls_aws = fig["  AWS calls in apply"][AWS]
    rows += [
        row("apply (s)"),
        ("apply, verify = false (s)", nv_s, apply_aws),
        row("  CPU of terraform + plugin in apply (s)"),
        row("  AWS calls in apply"),
        ("  AWS calls in apply, verify = false", nv_calls, calls_aws),
        row("  of which answered 4xx/5xx (mostly not-found probes)"),
        row(f"no-op plan, median of {a.plan_runs} (s)"),
        row("  CPU of terraform + plugin in a no-op plan (s)"),
        row("  AWS calls in a no-op plan"),
        row("plan after drift: trail stopped (s)"),
        row("apply repairing the drift (s)"),
        row("destroy (s)"),
        row("  AWS calls in destroy"),
        row("objects left after destroy"),
    ]
    if lat:
        rows += [
            ("apply, +50 ms per AWS call (s)", lat[EXPEL][0], lat[AWS][0]),
            ("  AWS calls", lat[EXPEL][1], lat[AWS][1]),
            ("apply, +50 ms per AWS call, verify = false (s)", lat["expel-nv"][0], lat[AWS][0]),
            ("  AWS calls, verify = false", lat["expel-nv"][1], lat[AWS][1]),
        ]
    rows += [
        ("plugin peak RSS, max VmHWM (MiB)", mib(sampler.peak_kib(EXPEL, EXPEL)),
         mib(sampler.peak_kib(AWS))),
        ("plugin processes per terraform command", sampler.processes_per_command(EXPEL),
         sampler.processes_per_command(AWS)),
        ("terraform core peak RSS (MiB)", mib(sampler.core_peak.get(EXPEL)),
         mib(sampler.core_peak.get(AWS))),
    ]
    notes = [
        "",
        "ratio = expel / hashicorp/aws. Same moto, same proxy, reset before every apply.",
        "expel: 1 resource (KMS key + alias, bucket, queue, notification, trail, ExpelAPIPolicy, "
        "ExpelServiceRole, Workbench device; verify = true puts a canary object and waits for its "
        "message). hashicorp/aws: 12 resources + 2 data sources, no Workbench side, no canary.",
        f"no-op plans checked for exit 0, drift plans for exit 2; {a.plan_runs} no-op plans per side; "
        f"RSS from /proc every {int(sampler.period * 1000)} ms.",
        "load average (1 min) at start / end: %.1f / %.1f on %d CPUs"
        % (load0, os.getloadavg()[0], os.cpu_count() or 0),
    ]
    for side in (EXPEL, AWS):
        if left[side]:
            notes.append(f"left after {side} destroy: {', '.join(left[side])}")
    print_table(rows, notes)
    saas.append(("plugin peak RSS in these runs, max VmHWM (MiB)", mib(sampler.peak_kib(EXPEL, SAAS))))
    saas += ec
    print()
    w = max(len(m) for m, _ in saas)
    print(f"{'SaaS resources against the sandbox; quickstart under eventual consistency':<{w}} | value")
    print("-" * w + "-+-" + "-" * 40)
    for m, v in saas:
        print(f"{m:<{w}} | {fmt(v)}")


if __name__ == "__main__":
    main()
