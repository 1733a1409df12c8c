//! Ctrl-C during each resource's create (SIGINT to terraform's process group, as a terminal
//! sends it), with one step slowed by the AWS proxy or the sandbox so the interrupt lands
//! mid-create. The provider lets the call in flight finish, starts nothing more and returns
//! what it made: the state holds it. `terraform destroy` right after leaves nothing; a rerun
//! instead finishes the create with exactly one of each object, reusing what exists (no new
//! service account or role where one was made).
use std::time::{Duration, Instant};

use expel_e2e::{
    count, ctrl_c, finish, sentinelone_device, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER,
};
use serde_json::{json, Value as Json};

/// Where a slow call is injected.
enum Slow<'a> {
    /// The AWS proxy: `service`, `operation`.
    Aws(&'a str, &'a str),
    /// The sandbox: `route` (and GraphQL operation).
    Sandbox(&'a str, Option<&'a str>),
}

/// An admin call of the stack: the proxy's or the sandbox's.
type AdminCall = fn(&Stack, &str, &str, Option<&Json>) -> (u16, Json);

/// Registers a 4 s delay on the slow call; returns a probe that says whether it was reached.
fn slow_down<'s>(stack: &'s Stack, slow: &Slow) -> impl Fn() -> bool + 's {
    let (admin, path, spec): (AdminCall, &str, Json) = match slow {
        Slow::Aws(service, operation) => (
            Stack::aws_proxy,
            "/_proxy/faults",
            json!({"service": service, "operation": operation, "kind": "latency",
                       "latency_ms": 4000, "count": 1, "phase": "after"}),
        ),
        Slow::Sandbox(route, operation) => {
            let mut spec = json!({"route": route, "latency_ms": 4000, "count": 1});
            if let Some(op) = operation {
                spec["operation"] = json!(op);
            }
            (Stack::admin, "/_admin/faults", spec)
        }
    };
    let (code, body) = admin(stack, "POST", path, Some(&spec));
    assert_eq!(code, 201, "{body}");
    let id = body["id"].clone();
    move || {
        let (_, faults) = admin(stack, "GET", path, None);
        faults["faults"].as_array().is_some_and(|fs| {
            fs.iter()
                .any(|f| f["id"] == id && f["matched"].as_u64() > Some(0))
        })
    }
}

/// A working directory of `hcl` in which `terraform apply` was started and Ctrl-C pressed
/// once the slow call was under way; checks that terraform stopped with the resource
/// `address` saved in the state.
fn interrupted_apply(stack: &Stack, hcl: &str, slow: Slow, address: &str) -> Workdir {
    let w = Workdir::with_hcl(hcl, stack);
    let reached = slow_down(stack, &slow);
    let child = w.spawn(APPLY);
    let start = Instant::now();
    while !reached() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the slow call was never reached"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ctrl_c(&child);
    let out = finish(child);
    let text = out.all();
    assert_ne!(
        out.code, 0,
        "an interrupted apply does not succeed:\n{text}"
    );
    assert!(
        text.contains("Interrupt received") || text.contains("Stopping operation"),
        "terraform saw the interrupt:\n{text}"
    );
    assert!(
        !text.contains("Operation cancelled"),
        "the create stopped cooperatively, not abandoned:\n{text}"
    );
    let list = w.tf_expect(&["state", "list", "-no-color"], 0);
    assert!(
        list.stdout.lines().any(|l| l == address),
        "the state holds what was made:\n{}\n{text}",
        list.stdout
    );
    w
}

const CLOUDTRAIL: &str = r#"
resource "expel_cloudtrail_integration" "this" {
  name          = "Acme - AWS CloudTrail"
  force_destroy = true
}
"#;

/// The integration's apply interrupted while its trail is being created.
fn cloudtrail_interrupted(stack: &Stack) -> Workdir {
    interrupted_apply(
        stack,
        &format!("{TF_HEADER}{CLOUDTRAIL}"),
        Slow::Aws("cloudtrail", "CreateTrail"),
        "expel_cloudtrail_integration.this",
    )
}

#[test]
fn cloudtrail_interrupted_then_destroyed_leaves_nothing() {
    let stack = Stack::local();
    let w = cloudtrail_interrupted(&stack);
    let s = w.state_of("expel_cloudtrail_integration");
    assert!(
        s["key_arn"].is_string() && s["queue_url"].is_string(),
        "{s}"
    );
    w.tf_expect(DESTROY, 0);
    let l = stack.aws_listing();
    for kind in ["trails", "queues", "policies", "aliases", "buckets"] {
        assert_eq!(count(&l[kind]), 0, "{kind} left: {l}");
    }
    assert!(
        !l["roles"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "ExpelServiceRole")),
        "{l}"
    );
    assert_eq!(
        count(&stack.sandbox_state()["workbench"]["security_devices"]),
        0
    );
}

#[test]
fn cloudtrail_interrupted_then_applied_finishes_with_one_of_each() {
    let stack = Stack::local();
    let w = cloudtrail_interrupted(&stack);
    let key = w.state_of("expel_cloudtrail_integration")["key_arn"].clone();
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let s = w.state_of("expel_cloudtrail_integration");
    assert_eq!(
        s["key_arn"], key,
        "the key made before the interrupt is kept"
    );
    let l = stack.aws_listing();
    for kind in ["trails", "queues", "policies", "aliases", "buckets"] {
        assert_eq!(count(&l[kind]), 1, "{kind}: {l}");
    }
    assert_eq!(
        count(&stack.sandbox_state()["workbench"]["security_devices"]),
        1
    );
}

const MEMBER: &str = r#"
resource "expel_aws_member_role" "this" {}
"#;

#[test]
fn member_role_interrupted_then_destroyed_or_finished() {
    let stack = Stack::local();
    let interrupted = || {
        interrupted_apply(
            &stack,
            &format!("{TF_HEADER}{MEMBER}"),
            Slow::Aws("iam", "CreatePolicy"),
            "expel_aws_member_role.this",
        )
    };
    let w = interrupted();
    w.tf_expect(DESTROY, 0);
    let l = stack.aws_listing();
    assert_eq!(count(&l["policies"]), 0, "{l}");

    // Again, and this time the rerun finishes it.
    let w = interrupted();
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let l = stack.aws_listing();
    assert_eq!(count(&l["policies"]), 1, "{l}");
    assert_eq!(
        l["roles"]
            .as_array()
            .map(|r| r.iter().filter(|x| *x == "ExpelServiceRole").count()),
        Some(1),
        "{l}"
    );
}

fn s1_hcl(stack: &Stack) -> String {
    format!(
        "{TF_HEADER}{}",
        sentinelone_device(stack, "edr", "Acme - S1 EDR")
    )
}

#[test]
fn sentinelone_interrupted_then_destroyed_or_finished() {
    let stack = Stack::local();
    let slow = || Slow::Sandbox("POST /web/api/v2.1/service-users", None);
    let w = interrupted_apply(
        &stack,
        &s1_hcl(&stack),
        slow(),
        "expel_sentinelone_device.edr",
    );
    w.tf_expect(DESTROY, 0);
    let st = stack.sandbox_state();
    assert_eq!(count(&st["sentinelone"]["custom_roles"]), 0, "{st}");
    assert_eq!(count(&st["sentinelone"]["service_users"]), 0, "{st}");
    assert_eq!(
        count(&st["sentinelone"]["users"]),
        1,
        "only the admin: {st}"
    );

    let w = interrupted_apply(
        &stack,
        &s1_hcl(&stack),
        slow(),
        "expel_sentinelone_device.edr",
    );
    let before = w.state_of("expel_sentinelone_device");
    assert!(before["service_user_id"].is_string(), "{before}");
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let after = w.state_of("expel_sentinelone_device");
    for k in ["role_id", "console_user_id", "service_user_id"] {
        assert_eq!(before[k], after[k], "{k}: what existed is reused");
    }
    let st = stack.sandbox_state();
    assert_eq!(count(&st["sentinelone"]["custom_roles"]), 1, "{st}");
    assert_eq!(count(&st["sentinelone"]["service_users"]), 1, "{st}");
    assert_eq!(count(&st["workbench"]["security_devices"]), 1, "{st}");
}

const WIZ: &str = r#"
resource "expel_wiz_device" "w" {
  name = "Acme Wiz"
}
"#;

#[test]
fn wiz_interrupted_then_destroyed_or_finished() {
    let stack = Stack::local();
    let slow = || Slow::Sandbox("POST /wiz/graphql", Some("createIntegration"));
    let w = interrupted_apply(
        &stack,
        &format!("{TF_HEADER}{WIZ}"),
        slow(),
        "expel_wiz_device.w",
    );
    w.tf_expect(DESTROY, 0);
    let st = stack.sandbox_state();
    for k in ["service_accounts", "integrations", "automation_rules"] {
        assert_eq!(count(&st["wiz"][k]), 0, "{k}: {st}");
    }
    assert_eq!(count(&st["workbench"]["security_devices"]), 0, "{st}");

    let w = interrupted_apply(
        &stack,
        &format!("{TF_HEADER}{WIZ}"),
        slow(),
        "expel_wiz_device.w",
    );
    let before = w.state_of("expel_wiz_device");
    assert!(before["service_account_id"].is_string(), "{before}");
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let after = w.state_of("expel_wiz_device");
    for k in ["service_account_id", "client_id"] {
        assert_eq!(before[k], after[k], "{k}: no new service account or secret");
    }
    let st = stack.sandbox_state();
    for k in ["service_accounts", "integrations", "automation_rules"] {
        assert_eq!(count(&st["wiz"][k]), 1, "{k}: {st}");
    }
    assert_eq!(count(&st["workbench"]["security_devices"]), 1, "{st}");
}

/// Ctrl-C while a client waits out a long Retry-After: the wait ends at once (it watches
/// the operation's cancellation), so terraform stops within seconds, not after the
/// server's 30 s, and what was made is kept.
#[test]
fn ctrl_c_during_a_retry_after_wait_stops_at_once() {
    let stack = Stack::local();
    let (code, body) = stack.admin(
        "POST",
        "/_admin/faults",
        Some(
            &json!({"route": "POST /web/api/v2.1/service-users", "count": -1,
                     "status": 429, "retry_after": 30}),
        ),
    );
    assert_eq!(code, 201, "{body}");
    let id = body["id"].clone();
    let w = Workdir::with_hcl(&s1_hcl(&stack), &stack);
    let child = w.spawn(APPLY);
    let start = Instant::now();
    loop {
        let (_, faults) = stack.admin("GET", "/_admin/faults", None);
        let fired = faults["faults"].as_array().is_some_and(|fs| {
            fs.iter()
                .any(|f| f["id"] == id && f["fired"].as_u64() > Some(0))
        });
        if fired {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never throttled");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pressed = Instant::now();
    ctrl_c(&child);
    let out = finish(child);
    let took = pressed.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "stopped {took:?} after Ctrl-C:\n{}",
        out.all()
    );
    assert!(out.all().contains("Interrupted"), "{}", out.all());
    let list = w.tf_expect(&["state", "list", "-no-color"], 0);
    assert!(
        list.stdout.contains("expel_sentinelone_device.edr"),
        "{}",
        list.stdout
    );
    stack.admin("DELETE", "/_admin/faults", None);
    w.tf_expect(DESTROY, 0);
    let st = stack.sandbox_state();
    assert_eq!(count(&st["sentinelone"]["custom_roles"]), 0, "{st}");
}
