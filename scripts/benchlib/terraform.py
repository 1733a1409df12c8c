"""Running terraform (timed, with its CPU time, its plugins watched for RSS), the CLI
configurations of both sides and their working directories."""
import glob
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time

from .common import ROOT, die
from .rss import read_bytes

AWS_VERSION = "5.100.0"


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
            plugins.update(int(x) for x in (read_bytes(task) or b"").split())
        plugins = {x for x in plugins
                   if (read_bytes(f"/proc/{x}/comm") or b"").startswith(b"terraform-provi")}
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for pid in plugins:
            # Orphans now; the comm check guards against a reused pid.
            if (read_bytes(f"/proc/{pid}/comm") or b"").startswith(b"terraform-provi"):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass


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


def write_dev_overrides(path, plugin_dir):
    """The expel side's CLI configuration: dev_overrides to `plugin_dir` (a directory), the
    same file the end-to-end harness writes (tests/harness/dev.tfrc)."""
    with open(os.path.join(ROOT, "tests", "harness", "dev.tfrc")) as f:
        template = f.read()
    with open(path, "w") as f:
        f.write(template.replace("{provider_dir}", plugin_dir))
    return path


def write_mirror_config(path, mirror):
    """The anchor's CLI configuration: hashicorp/aws from the filesystem mirror only."""
    with open(path, "w") as f:
        f.write('provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n'
                '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n' % mirror)
    return path


def copy_tf(src, dst):
    os.makedirs(dst, exist_ok=True)
    for f in glob.glob(os.path.join(src, "*.tf")):
        shutil.copy(f, dst)
    return dst


def fresh_state(workdir):
    for f in glob.glob(os.path.join(workdir, "terraform.tfstate*")):
        os.remove(f)
