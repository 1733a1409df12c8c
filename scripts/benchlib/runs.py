"""The measured runs: one side of the side-by-side table, a single apply, the quickstart under
eventual consistency, and one SaaS example."""
import statistics

from .common import EXPEL, SAAS, say
from .terraform import fresh_state

# The expel side's apply without the canary (bench/expel's `verify` variable).
NO_VERIFY = ("-var", "verify=false")

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


def org_side(workdir, env, tf, stack, accounts, plan_runs):
    """expel_aws_organization_member_roles (bench/org) over an organization of `accounts`
    member accounts in nested OUs: apply, no-op plans, destroy; the AWS calls of each, by
    operation (a no-op plan's calls are the calls per refresh: pages, not accounts).
    [(metric, value)]."""
    def ops(snapshot):
        per = {}
        for e in snapshot.get("log", []):
            k = f"{e['service']}:{e['operation']}"
            per[k] = per.get(k, 0) + 1
        return ", ".join(f"{k} {v}" for k, v in sorted(per.items())) + f" = {sum(per.values())}"

    stack.reset()
    fresh_state(workdir)
    say(f"[org] an organization of {accounts} member accounts")
    stack.oob_with("stacksets-org", f"members={accounts}")
    stack.oob_with("stacksets-access-on")
    out = []
    stack.clear_calls()
    say("[org] apply")
    dt, _ = tf(EXPEL, workdir, env, "apply", "-auto-approve", "-input=false", "-no-color")
    out += [(f"org of {accounts}: apply (s)", dt), ("org:   AWS calls in apply", ops(stack.call_log()))]
    plans, refresh = [], None
    for _ in range(plan_runs):
        stack.clear_calls()
        dt, _ = tf(EXPEL, workdir, env, "plan", "-detailed-exitcode", "-input=false", "-no-color")
        plans.append(dt)
        refresh = stack.call_log()
    out += [(f"org of {accounts}: no-op plan, median of {plan_runs} (s)", statistics.median(plans)),
            ("org:   AWS calls per refresh (no-op plan)", ops(refresh))]
    say("[org] destroy")
    stack.clear_calls()
    dt, _ = tf(EXPEL, workdir, env, "destroy", "-auto-approve", "-input=false", "-no-color")
    out += [(f"org of {accounts}: destroy (s)", dt), ("org:   AWS calls in destroy", ops(stack.call_log()))]
    return out
