"""The local stack (scripts/stack up) as the benchmark uses it: moto, the AWS proxy's faults,
call counts and eventual consistency, the sandbox's resets and call counts, and what is left
after a destroy (tests/e2e/oob.py, the same out-of-band tool as the end-to-end tests)."""
import json
import os
import subprocess
import sys
import urllib.request

from .common import ROOT, die

OOB = os.path.join(ROOT, "tests", "e2e", "oob.py")
# 50 ms before every AWS call (tests/sandbox/README.md, AWS proxy).
LATENCY_FAULT = {"kind": "latency", "latency_ms": 50, "service": "*", "operation": "*", "count": -1}


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
        return http("GET", f"{self.sandbox}/_admin/calls")["emulators"]

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

    def call_log(self):
        """The proxy's log of the calls since clear_calls (service, operation, status)."""
        return http("GET", f"{self.proxy}/_proxy/calls")

    def oob(self, action):
        return self.oob_with(action)

    def oob_with(self, action, *args):
        r = subprocess.run([sys.executable, OOB, action, *args], env=dict(os.environ), text=True,
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
