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

This file runs the benchmark and lays out its tables; the parts are in benchlib/.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import tempfile

from benchlib.common import AWS, EXPEL, ROOT, SAAS, die, say
from benchlib.handshake import handshakes
from benchlib.report import print_table, print_values
from benchlib.rss import RssSampler
from benchlib.runs import NO_VERIFY, apply_once, eventual_side, org_side, run_side, saas_side
from benchlib.stack import Stack
from benchlib.terraform import (Terraform, aws_mirror_or_die, copy_tf, write_dev_overrides,
                                write_mirror_config)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provider", required=True, help="the terraform-provider-expel binary")
    ap.add_argument("--runs", type=int, default=10, help="handshakes and quickstart plans")
    ap.add_argument("--plan-runs", type=int, default=5, help="no-op plans per side (median)")
    ap.add_argument("--aws-mirror", default=os.environ.get("EXPEL_BENCH_AWS_MIRROR", "/opt/tf-plugins"))
    ap.add_argument("--no-latency", action="store_true", help="skip the 50 ms/AWS call applies")
    ap.add_argument("--org-accounts", type=int, default=1000,
                    help="member accounts of the organization rollout (expel_aws_organization_member_roles)")
    ap.add_argument("--only-org", action="store_true",
                    help="only the organization rollout (needs no hashicorp/aws mirror)")
    a = ap.parse_args()
    if not os.access(a.provider, os.X_OK):
        die(f"{a.provider} is not an executable (build it: cargo build -p terraform-provider-expel)")
    if not a.only_org:
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
    if a.only_org:
        org_bench(a, tmp, stack, tf, plugins)
        return

    load0 = os.getloadavg()[0]
    say("handshakes")
    plain, tls = handshakes(provider, tmp, a.runs)

    common = {k: v for k, v in os.environ.items() if not k.startswith("TF_LOG")}
    common.update(TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0")
    common.pop("TF_PLUGIN_CACHE_DIR", None)
    dev_rc = write_dev_overrides(os.path.join(tmp, "dev.tfrc"), plugins)
    mirror_rc = write_mirror_config(os.path.join(tmp, "mirror.tfrc"), a.aws_mirror)

    say(f"quickstart: {a.runs} plans")
    quick = copy_tf(os.path.join(ROOT, "examples", "quickstart"), os.path.join(tmp, "quickstart"))
    plans, rss_log = quickstart_plans(quick, dict(common, TF_CLI_CONFIG_FILE=dev_rc), tmp, tf,
                                      stack, a.runs)

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
    nv = apply_once(EXPEL, expel_dir, expel_env, tf, stack, False, NO_VERIFY)

    saas = []
    for name, extra in (("sentinelone", {"TF_VAR_console_url": os.environ.get("SENTINELONE_CONSOLE_URL", ""),
                                         "TF_VAR_account_id": os.environ.get("SENTINELONE_ACCOUNT_ID", "")}),
                        ("wiz", {"TF_VAR_domain_validated": "true"})):
        d = copy_tf(os.path.join(ROOT, "examples", name), os.path.join(tmp, name))
        saas += saas_side(name, d, dict(expel_env, **extra), tf, stack, a.plan_runs)

    say(f"[expel] organization rollout, {a.org_accounts} accounts")
    org_dir = copy_tf(os.path.join(ROOT, "bench", "org"), os.path.join(tmp, "org"))
    saas += org_side(org_dir, expel_env, tf, stack, a.org_accounts, a.plan_runs)

    say("[expel] quickstart apply with eventual consistency off and on")
    quick_env = dict(common, TF_CLI_CONFIG_FILE=dev_rc)
    ec = eventual_side(quick, quick_env, tf, stack, max(1, a.plan_runs))

    lat = {}
    if not a.no_latency:
        for side, d, env, extra in ((EXPEL, expel_dir, expel_env, ()),
                                    (AWS, anchor_dir, anchor_env, ()),
                                    ("expel-nv", expel_dir, expel_env, NO_VERIFY)):
            say(f"[{side}] apply with 50 ms on every AWS call")
            lat[side] = apply_once(EXPEL if side != AWS else AWS, d, env, tf, stack, True, extra)
    stack.reset()
    sampler.stop()

    rows = expel_only_rows(a.runs, plain, tls, plans, rss_log, init_s)
    rows += side_by_side_rows(fig, a.plan_runs, nv, lat)
    rows += rss_rows(sampler)
    print_table(rows, notes(a.plan_runs, sampler, load0, left))
    saas.append(("plugin peak RSS in these runs, max VmHWM (MiB)", mib(sampler.peak_kib(EXPEL, SAAS))))
    saas += ec
    print()
    print_values("SaaS resources against the sandbox; quickstart under eventual consistency", saas)


def org_bench(a, tmp, stack, tf, plugins):
    """The organization rollout alone: plan time and AWS calls per refresh at `--org-accounts`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_LOG")}
    env.update(TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0",
               TF_CLI_CONFIG_FILE=write_dev_overrides(os.path.join(tmp, "dev.tfrc"), plugins))
    d = copy_tf(os.path.join(ROOT, "bench", "org"), os.path.join(tmp, "org"))
    rows = org_side(d, env, tf, stack, a.org_accounts, max(1, a.plan_runs))
    stack.reset()
    print_values("Organization rollout (expel_aws_organization_member_roles) against moto with "
                 "the StackSets emulation; its operations end at once, AWS's take minutes", rows)


def quickstart_plans(quick, env, tmp, tf, stack, runs):
    """`terraform plan` of examples/quickstart `runs` times (after one to warm the page
    cache): the seconds of each, and the plugin's own peak RSS figures from its log."""
    log = os.path.join(tmp, "provider.log")
    qenv = dict(env, TF_LOG_PROVIDER="info", TF_LOG_PATH=log)
    stack.reset()
    tf(EXPEL, quick, qenv, "plan", "-no-color", ok=(0, 2))  # warm the page cache
    plans = [tf(EXPEL, quick, qenv, "plan", "-no-color", ok=(0, 2))[0] for _ in range(runs)]
    with open(log) as f:
        rss_log = [int(m) for m in re.findall(r"peak_rss_kib=(\d+)", f.read())]
    return plans, rss_log


def mib(kib):
    return round(kib / 1024, 1) if kib else None


def expel_only_rows(runs, plain, tls, plans, rss_log, init_s):
    return [
        ("handshake, plaintext, median (ms)", statistics.median(plain), None),
        ("handshake, AutoMTLS, median (ms)", statistics.median(tls), None),
        (f"plan examples/quickstart, median of {runs} (s)", statistics.median(plans), None),
        ("plan examples/quickstart, min (s)", min(plans), None),
        ("plugin peak RSS, quickstart, own log (MiB)", mib(max(rss_log)) if rss_log else None, None),
        ("terraform init (s)", None, init_s),
    ]


def side_by_side_rows(fig, plan_runs, nv, lat):
    """The figures of run_side for both sides, the apply with verify = false (`nv`: seconds,
    calls) and, when measured, the applies with 50 ms per AWS call (`lat`)."""
    def row(metric):
        return (metric, fig[metric].get(EXPEL), fig[metric].get(AWS))

    nv_s, nv_calls = nv
    apply_aws = fig["apply (s)"][AWS]
    calls_aws = fig["  AWS calls in apply"][AWS]
    rows = [
        row("apply (s)"),
        ("apply, verify = false (s)", nv_s, apply_aws),
        row("  CPU of terraform + plugin in apply (s)"),
        row("  AWS calls in apply"),
        ("  AWS calls in apply, verify = false", nv_calls, calls_aws),
        row("  of which answered 4xx/5xx (mostly not-found probes)"),
        row(f"no-op plan, median of {plan_runs} (s)"),
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
    return rows


def rss_rows(sampler):
    return [
        ("plugin peak RSS, max VmHWM (MiB)", mib(sampler.peak_kib(EXPEL, EXPEL)),
         mib(sampler.peak_kib(AWS))),
        ("plugin processes per terraform command", sampler.processes_per_command(EXPEL),
         sampler.processes_per_command(AWS)),
        ("terraform core peak RSS (MiB)", mib(sampler.core_peak.get(EXPEL)),
         mib(sampler.core_peak.get(AWS))),
    ]


def notes(plan_runs, sampler, load0, left):
    out = [
        "",
        "ratio = expel / hashicorp/aws. Same moto, same proxy, reset before every apply.",
        "expel: 1 resource (KMS key + alias, bucket, queue, notification, trail, ExpelAPIPolicy, "
        "ExpelServiceRole, Workbench device; verify = true puts a canary object and waits for its "
        "message). hashicorp/aws: 12 resources + 2 data sources, no Workbench side, no canary.",
        f"no-op plans checked for exit 0, drift plans for exit 2; {plan_runs} no-op plans per side; "
        f"RSS from /proc every {int(sampler.period * 1000)} ms.",
        "load average (1 min) at start / end: %.1f / %.1f on %d CPUs"
        % (load0, os.getloadavg()[0], os.cpu_count() or 0),
    ]
    for side in (EXPEL, AWS):
        if left[side]:
            out.append(f"left after {side} destroy: {', '.join(left[side])}")
    return out


if __name__ == "__main__":
    main()
