"""Benchmark figures for terraform-provider-expel (run through scripts/bench)."""
import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


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


def terraform(workdir, env, *args):
    t0 = time.perf_counter()
    r = subprocess.run(["terraform", *args], cwd=workdir, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode not in (0, 2):
        raise SystemExit(f"terraform {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--provider", required=True)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="expel-bench")
    base = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=COOKIE, PLUGIN_PROTOCOL_VERSIONS="5,6")
    plain = [handshake_ms(a.provider, base) for _ in range(a.runs)]
    tls_env = dict(base, PLUGIN_CLIENT_CERT=client_cert_pem(tmp))
    tls = [handshake_ms(a.provider, tls_env) for _ in range(a.runs)]

    work = os.path.join(tmp, "quickstart")
    os.makedirs(work)
    for f in glob.glob("examples/quickstart/*.tf"):
        shutil.copy(f, work)
    with open(os.path.join(tmp, "dev.tfrc"), "w") as f:
        f.write('provider_installation {\n  dev_overrides {\n    "expel-io/expel" = "%s"\n  }\n  direct {}\n}\n'
                % os.path.dirname(os.path.abspath(a.provider)))
    log = os.path.join(tmp, "provider.log")
    env = dict(os.environ, TF_CLI_CONFIG_FILE=os.path.join(tmp, "dev.tfrc"), TF_IN_AUTOMATION="1",
               CHECKPOINT_DISABLE="1", TF_LOG_PROVIDER="info", TF_LOG_PATH=log)
    for k in ("TF_LOG",):
        env.pop(k, None)
    terraform(work, env, "plan", "-no-color")  # warm the page cache
    plans = [terraform(work, env, "plan", "-no-color") for _ in range(a.runs)]
    rss = [int(m) for m in re.findall(r"peak_rss_kib=(\d+)", open(log).read())]

    fig = {
        "handshake_ms_plaintext_median": round(statistics.median(plain), 1),
        "handshake_ms_automtls_median": round(statistics.median(tls), 1),
        "terraform_plan_quickstart_s_median": round(statistics.median(plans), 3),
        "terraform_plan_quickstart_s_min": round(min(plans), 3),
        "plugin_peak_rss_mib_max": round(max(rss) / 1024, 1) if rss else None,
        "plugin_processes_measured": len(rss),
        "runs": a.runs,
    }
    for k, v in fig.items():
        print(f"{k:40} {v}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
