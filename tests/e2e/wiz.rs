//! expel_wiz_device with the real `terraform` CLI against the sandbox's Workbench and Wiz
//! emulators: apply, no-op plan, drift made through the emulators' APIs, repair, the
//! two-phase console access, an issue reaching Workbench, import, destroy, bad inputs and
//! secrets kept out of logs.
use expel_e2e::{flat, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER};
use serde_json::{json, Value as Json};

/// plan, apply and destroy with console access validated (`-var validated=true`).
const PLAN_V: &[&str] = &[
    "plan",
    "-detailed-exitcode",
    "-no-color",
    "-var",
    "validated=true",
];
const APPLY_V: &[&str] = &[
    "apply",
    "-auto-approve",
    "-no-color",
    "-var",
    "validated=true",
];
const DESTROY_V: &[&str] = &[
    "destroy",
    "-auto-approve",
    "-no-color",
    "-var",
    "validated=true",
];

fn hcl(body: &str) -> String {
    format!("{TF_HEADER}\n{body}\n")
}

fn wiz_state(stack: &Stack) -> Json {
    stack.sandbox_state()["wiz"].clone()
}

fn state_attr(w: &Workdir, addr: &str, attr: &str) -> Json {
    let out = w.tf_expect(&["show", "-json", "-no-color"], 0);
    let v: Json = serde_json::from_str(&out.stdout).expect("show -json");
    v["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["address"] == addr))
        .map(|r| r["values"][attr].clone())
        .unwrap_or(Json::Null)
}

fn wiz_ok(stack: &Stack, q: &str, vars: Json) -> Json {
    let a = stack.wiz(q, vars);
    assert!(a.get("errors").is_none_or(Json::is_null), "{a}");
    a["data"].clone()
}

const CLOUD: &str = r#"
variable "validated" {
  type    = bool
  default = false
}
resource "expel_wiz_device" "w" {
  name = "Acme Wiz"
  console_access {
    domain_validated = var.validated
  }
}
"#;

#[test]
fn cloud_apply_drift_repair_console_access_webhook_and_destroy() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    let first = w.tf_expect(APPLY, 0);
    assert!(
        first.all().contains("domain_verification_code"),
        "the plan says what to do next:\n{}",
        first.all()
    );
    w.tf_expect(PLAN, 0);
    let addr = "expel_wiz_device.w";
    let rule_id = state_attr(&w, addr, "automation_rule_id");
    let integ_id = state_attr(&w, addr, "integration_id");
    let sa_id = state_attr(&w, addr, "service_account_id");
    let dev_id = state_attr(&w, addr, "security_device_id");
    assert!(rule_id.is_string() && integ_id.is_string() && sa_id.is_string());
    assert!(state_attr(&w, addr, "domain_verification_code").is_string());
    // The client secret is not in state.
    let st = wiz_state(&stack);
    let secret = st["service_accounts"][0]["clientSecret"]
        .as_str()
        .expect("secret in the emulator")
        .to_string();
    let raw = std::fs::read_to_string(w.dir.path().join("terraform.tfstate")).unwrap();
    assert!(!raw.contains(&secret), "client secret in state");

    // An issue reaches Workbench through the rule and the webhook.
    let (s, _) = stack.admin(
        "POST",
        "/_admin/wiz/issues",
        Some(&json!({"severity": "HIGH", "title": "Exposed bucket"})),
    );
    assert_eq!(s, 201);
    let mut alerts = Json::Null;
    for _ in 0..50 {
        let (_, a) = stack.admin("GET", "/_admin/workbench/alerts", None);
        if a["alerts"].as_array().is_some_and(|l| !l.is_empty()) {
            alerts = a;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        alerts["alerts"][0]["name"],
        json!("Wiz Cloud: Exposed bucket"),
        "{alerts}"
    );

    // Drift through the Wiz API.
    let upd_rule = "mutation($input: UpdateAutomationRuleInput!) { updateAutomationRule(input: $input) { automationRule { id } } }";
    wiz_ok(
        &stack,
        upd_rule,
        json!({"input": {"id": rule_id, "patch": {"enabled": false}}}),
    );
    w.drift_repaired("rule disabled", &["rule is disabled"]);
    wiz_ok(
        &stack,
        upd_rule,
        json!({"input": {"id": rule_id, "patch": {"filters": {"severity": ["CRITICAL"]}}}}),
    );
    w.drift_repaired("severities narrowed", &["severity filter"]);
    wiz_ok(
        &stack,
        upd_rule,
        json!({"input": {"id": rule_id, "patch": {"triggerSource": "CLOUD_EVENTS"}}}),
    );
    w.drift_repaired("trigger changed", &["rule trigger"]);
    wiz_ok(&stack, "mutation($input: DeleteAutomationRuleInput!) { deleteAutomationRule(input: $input) { _stub } }", json!({"input": {"id": rule_id}}));
    w.drift_repaired("rule deleted", &["automation_rule"]);
    wiz_ok(&stack, "mutation($input: UpdateIntegrationInput!) { updateIntegration(input: $input) { integration { id } } }",
        json!({"input": {"id": integ_id, "patch": {"params": {"webhook": {"url": "https://evil.example/hook", "authorization": {"username": "x", "password": "y"}}}}}}));
    w.drift_repaired(
        "integration URL and credentials changed",
        &["integration URL"],
    );
    wiz_ok(
        &stack,
        "mutation($id: String!) { rotateServiceAccountSecret(ID: $id) { serviceAccount { id } } }",
        json!({"id": sa_id}),
    );
    w.drift_repaired("secret rotated", &["rotated outside Terraform"]);
    // The device holds a working secret again: Workbench's health check gets a token.
    let sa_id = state_attr(&w, addr, "service_account_id");
    wiz_ok(&stack, "mutation($input: DeleteServiceAccountInput!) { deleteServiceAccount(input: $input) { _stub } }", json!({"input": {"id": sa_id}}));
    w.drift_repaired("service account deleted", &["service_account"]);
    let dev = dev_id.as_str().unwrap();
    let (s, _) = stack.workbench(
        "PATCH",
        &format!("/api/v2/security_devices/{dev}"),
        Some(&json!({"data": {"type": "security_devices", "id": dev, "attributes": {"name": "Renamed", "location": "elsewhere"}}})),
    );
    assert_eq!(s, 200);
    w.drift_repaired("device edited", &["device name"]);
    let (s, _) = stack.workbench("DELETE", &format!("/api/v2/security_devices/{dev}"), None);
    assert!(s == 200 || s == 204, "{s}");
    w.drift_repaired("device deleted", &["workbench_device"]);
    // After all that, an issue still reaches Workbench (new device, new webhook).
    let before = stack.admin("GET", "/_admin/workbench/alerts", None).1["alerts"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    stack.admin(
        "POST",
        "/_admin/wiz/issues",
        Some(&json!({"severity": "LOW", "title": "Again"})),
    );
    let mut got = 0;
    for _ in 0..50 {
        got = stack.admin("GET", "/_admin/workbench/alerts", None).1["alerts"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        if got > before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        got > before,
        "no alert after repairs: {:?}",
        stack.admin("GET", "/_admin/wiz/deliveries", None).1
    );

    // Two-phase console access.
    assert!(state_attr(&w, addr, "user_id").is_null());
    w.tf_expect(APPLY_V, 0);
    let st = wiz_state(&stack);
    assert!(
        st["allowed_domains"]
            .as_array()
            .unwrap()
            .contains(&json!("expel.io")),
        "{st}"
    );
    let users = st["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{st}");
    assert_eq!(users[0]["email"], json!("soc+acme_corp@expel.io"));
    assert_eq!(users[0]["name"], json!("Expel Analyst"));
    assert_eq!(users[0]["isSuspended"], json!(false));
    w.tf_expect(PLAN_V, 0);
    let uid = users[0]["id"].clone();
    // Suspended in Wiz (the API's only way to stop a user signing in; there is no expiry).
    wiz_ok(
        &stack,
        "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id } } }",
        json!({"input": {"id": uid, "patch": {"isSuspended": true}}}),
    );
    let plan = w.terraform(PLAN_V);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.all().contains("is suspended"), "{}", plan.all());
    w.tf_expect(APPLY_V, 0);
    assert_eq!(wiz_state(&stack)["users"][0]["isSuspended"], json!(false));
    wiz_ok(
        &stack,
        "mutation($input: DeleteUserInput!) { deleteUser(input: $input) { _stub } }",
        json!({"input": {"id": uid}}),
    );
    let plan = w.terraform(PLAN_V);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.all().contains("Expel Analyst"), "{}", plan.all());
    w.tf_expect(APPLY_V, 0);
    w.tf_expect(PLAN_V, 0);
    // Back to false: user and domain entry removed, the seeded domain kept.
    w.tf_expect(APPLY, 0);
    let st = wiz_state(&stack);
    assert!(st["users"].as_array().unwrap().is_empty(), "{st}");
    assert_eq!(st["allowed_domains"], json!(["acme.example"]));
    w.tf_expect(PLAN, 0);

    // Destroy leaves nothing.
    w.tf_expect(APPLY_V, 0);
    w.tf_expect(DESTROY_V, 0);
    assert_nothing_left(&stack, "destroy");
}

#[test]
fn defend_variant_fires_on_detections_and_refuses_sync_rules() {
    let stack = Stack::local();
    let bad = hcl(r#"resource "expel_wiz_device" "d" {
  name       = "Acme Wiz Defend"
  product    = "defend"
  sync_rules = true
}"#);
    let mut w = Workdir::with_hcl(&bad, &stack);
    let out = w.terraform(&["plan", "-no-color"]);
    assert_ne!(out.code, 0);
    assert!(
        out.all().contains("sync_rules") && out.all().contains("Wiz Defend"),
        "{}",
        out.all()
    );

    w.write(
        "main.tf",
        &hcl(r#"resource "expel_wiz_device" "d" {
  name    = "Acme Wiz Defend"
  product = "defend"
}"#),
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(
        state_attr(&w, "expel_wiz_device.d", "sync_rules"),
        json!(false)
    );
    let dev = state_attr(&w, "expel_wiz_device.d", "security_device_id");
    assert_eq!(
        device_properties(&stack, dev.as_str().unwrap()),
        json!({"sync_rules_enabled": false})
    );
    let st = wiz_state(&stack);
    assert_eq!(
        st["automation_rules"][0]["triggerSource"],
        json!("DETECTIONS"),
        "{st}"
    );
    let (s, _) = stack.admin(
        "POST",
        "/_admin/wiz/detections",
        Some(&json!({"severity": "CRITICAL", "title": "Crypto miner"})),
    );
    assert_eq!(s, 201);
    let mut name = Json::Null;
    for _ in 0..50 {
        let (_, a) = stack.admin("GET", "/_admin/workbench/alerts", None);
        if let Some(n) = a["alerts"].get(0).map(|x| x["name"].clone()) {
            name = n;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(name, json!("Wiz Defend: Crypto miner"));
    // State pins the tenant: the provider pointing at another one is an error, not "gone".
    let other = stack.var("WIZ_API_URL").replace("127.0.0.1", "localhost");
    w.set_env("WIZ_API_URL", Some(&other));
    let p = w.terraform(&["plan", "-no-color"]);
    assert_eq!(p.code, 1, "{}", p.all());
    assert!(p.all().contains("another Wiz tenant"), "{}", p.all());
    w.set_env("WIZ_API_URL", Some(&stack.var("WIZ_API_URL")));
    w.tf_expect(DESTROY, 0);
    let st = wiz_state(&stack);
    assert!(
        st["service_accounts"].as_array().unwrap().is_empty(),
        "{st}"
    );
    assert!(stack.workbench_devices().is_empty());
}

#[test]
fn bad_inputs_are_diagnostics_naming_the_attribute() {
    let stack = Stack::local();
    let cases = [
        (
            r#"api_endpoint_url = "http://api.us17.app.wiz.io/graphql""#,
            "api_endpoint_url",
            "https",
        ),
        (
            r#"api_endpoint_url = "https://api.us17.app.wiz.io/v1""#,
            "api_endpoint_url",
            "GraphQL",
        ),
        (r#"severities = []"#, "severities", "empty"),
        (r#"severities = ["URGENT"]"#, "severities", "URGENT"),
        (
            r#"console_access {
    domain_validated = true
    role_name        = "Chief Everything Officer"
  }"#,
            "role_name",
            "Chief Everything Officer",
        ),
    ];
    for (body, attr, words) in cases {
        let w = Workdir::with_hcl(
            &hcl(&format!(
                "resource \"expel_wiz_device\" \"b\" {{\n  name = \"Bad\"\n  {body}\n}}"
            )),
            &stack,
        );
        let out = w.terraform(&["plan", "-no-color"]);
        assert_eq!(out.code, 1, "{body}: plan should fail:\n{}", out.all());
        assert!(
            out.all().contains(attr) && out.all().contains(words),
            "{body}: diagnostic should name {attr} and say {words:?}:\n{}",
            out.all()
        );
    }
    // Nothing was made.
    let st = wiz_state(&stack);
    assert!(st["service_accounts"].as_array().unwrap().is_empty());
}

/// A wrong Wiz client secret fails `terraform plan` with a diagnostic naming the setting and
/// its variable (never the secret); a create whose every Wiz call is refused made nothing and
/// leaves no resource (tainted or not) in state.
#[test]
fn wrong_client_secret_fails_plan_and_a_refused_create_leaves_no_state() {
    let stack = Stack::local();
    let mut w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    let wrong = "not-the-wiz-secret-4f1c9a";
    w.set_env("WIZ_CLIENT_SECRET", Some(wrong));
    let out = w.terraform(&["plan", "-no-color"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all().replace('\n', " ");
    for words in [
        "Wiz refused the provider's credentials",
        "wiz.client_secret",
        "WIZ_CLIENT_SECRET",
        "access_denied",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{}", out.all());
    }
    assert!(!out.all().contains(wrong), "the secret is in the output");

    // The right secret plans; then every GraphQL call is refused as unauthenticated: the
    // create's first calls fail, nothing is made, nothing is in state.
    w.set_env("WIZ_CLIENT_SECRET", Some(&stack.var("WIZ_CLIENT_SECRET")));
    w.tf_expect(&["plan", "-no-color"], 0);
    let (s, f) = stack.admin(
        "POST",
        "/_admin/faults",
        Some(&json!({"route": "POST /wiz/graphql", "count": -1, "status": 401})),
    );
    assert_eq!(s, 201, "{f}");
    let out = w.terraform(APPLY);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("Nothing was made"), "{}", out.all());
    let shown = w.tf_expect(&["show", "-json", "-no-color"], 0);
    let v: Json = serde_json::from_str(&shown.stdout).expect("show -json");
    assert!(
        v["values"]["root_module"]["resources"].is_null(),
        "state after a create that made nothing: {v}"
    );
    stack.admin("DELETE", "/_admin/faults", None);
    w.tf_expect(APPLY, 0);
    w.tf_expect(DESTROY, 0);
    assert_nothing_left(&stack, "after the refused create");
}

#[test]
fn import_by_device_id_then_empty_plan_and_secrets_never_logged() {
    let stack = Stack::local();
    let mut w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    w.set_env("TF_LOG", Some("trace"));
    let out = w.tf_expect(APPLY_V, 0);
    let plan = w.tf_expect(&["plan", "-no-color", "-var", "validated=true"], 0);
    let st = wiz_state(&stack);
    let secret = st["service_accounts"][0]["clientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let dev = state_attr(&w, "expel_wiz_device.w", "security_device_id");
    let dev = dev.as_str().unwrap().to_string();
    let (_, d) = stack.workbench("GET", &format!("/api/v2/security_devices/{dev}"), None);
    let password = d["data"]["attributes"]["webhook_password"]
        .as_str()
        .unwrap()
        .to_string();
    let logs = format!("{}{}", out.all(), plan.all());
    assert!(logs.len() > 10_000, "trace logging is on");
    assert!(
        !logs.contains(&secret),
        "client secret in TF_LOG=trace output"
    );
    assert!(
        !logs.contains(&password),
        "webhook password in TF_LOG=trace output"
    );
    assert!(
        !logs.contains(&stack.var("WIZ_CLIENT_SECRET")),
        "provider secret in the log"
    );
    w.set_env("TF_LOG", None);

    // Forget it, import it by device id: the next plan is empty.
    w.tf_expect(&["state", "rm", "expel_wiz_device.w"], 0);
    w.tf_expect(
        &[
            "import",
            "-no-color",
            "-var",
            "validated=true",
            "expel_wiz_device.w",
            &dev,
        ],
        0,
    );
    let p = w.terraform(PLAN_V);
    assert_eq!(p.code, 0, "plan after import:\n{}", p.all());
    w.tf_expect(DESTROY_V, 0);
    assert_wiz_objects_gone(&wiz_state(&stack), "destroy after import");
}

/// A fault at each call of the first apply. A server error is retried (a create first looks
/// for what it may have made), so the apply succeeds; a refusal fails it, the failed apply
/// keeps what it made in state, the next apply converges, and destroy leaves nothing.
#[test]
fn fault_at_each_step_leaves_no_orphan_and_rerun_converges() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    let routes = [
        ("POST /wiz/graphql", 1),
        ("POST /wiz/graphql", 3),
        ("POST /wiz/graphql", 5),
        ("POST /wiz/graphql", 7),
        ("POST /wiz/graphql", 9),
        ("POST /api/v2/security_devices", 1),
    ];
    let mut failed = 0;
    for (route, nth) in routes {
        for status in [500, 400] {
            let what = format!("{status} on {route} #{nth}");
            stack.admin("DELETE", "/_admin/faults", None);
            let (s, f) = stack.admin(
                "POST",
                "/_admin/faults",
                Some(&json!({"route": route, "nth": nth, "count": 1, "status": status})),
            );
            assert!(s == 200 || s == 201, "{f}");
            let first = w.terraform(APPLY);
            let (_, faults) = stack.admin("GET", "/_admin/faults", None);
            assert_eq!(faults["faults"][0]["fired"], json!(1), "{what}: {faults}");
            if status == 500 {
                assert_eq!(first.code, 0, "{what}: not retried:\n{}", first.all());
            } else if first.code != 0 {
                failed += 1;
                assert!(first.all().contains("failed at"), "{}", first.all());
            }
            stack.admin("DELETE", "/_admin/faults", None);
            w.tf_expect(APPLY, 0);
            let p = w.terraform(PLAN);
            assert_eq!(p.code, 0, "{what}: rerun did not converge:\n{}", p.all());
            let st = wiz_state(&stack);
            for k in ["service_accounts", "integrations", "automation_rules"] {
                assert_eq!(st[k].as_array().unwrap().len(), 1, "{what}: {k}: {st}");
            }
            assert_eq!(stack.workbench_devices().len(), 1, "{what}");
            w.tf_expect(DESTROY, 0);
            assert_nothing_left(&stack, &what);
        }
    }
    assert!(failed >= 5, "only {failed} refusals failed an apply");
}

/// Polls the device until Workbench has finished checking it; returns its attributes.
fn settled_device(stack: &Stack, id: &str) -> Json {
    for _ in 0..100 {
        let (_, d) = stack.workbench("GET", &format!("/api/v2/security_devices/{id}"), None);
        if d["data"]["attributes"]["is_verifying_status"] == json!(false) {
            return d["data"]["attributes"].clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("Workbench never finished checking device {id}");
}

/// No service account, user, integration or automation rule is left in `st` (the Wiz state).
fn assert_wiz_objects_gone(st: &Json, what: &str) {
    for k in [
        "service_accounts",
        "users",
        "integrations",
        "automation_rules",
    ] {
        assert!(
            st[k].as_array().unwrap().is_empty(),
            "{what}: {k} left: {st}"
        );
    }
}

fn assert_nothing_left(stack: &Stack, what: &str) {
    let st = wiz_state(stack);
    assert_wiz_objects_gone(&st, what);
    assert_eq!(st["allowed_domains"], json!(["acme.example"]), "{what}");
    assert!(stack.workbench_devices().is_empty(), "{what}: device left");
}

/// Each create acts and then its answer is lost (a 503, or the connection dropped): the
/// apply still succeeds with exactly one object of each kind (the one the lost create made
/// is found and adopted), the device works, and destroy leaves nothing.
#[test]
fn lost_create_answers_are_adopted_not_duplicated() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    let v = ["-var", "validated=true"];
    let creates = [
        json!({"route": "POST /wiz/graphql", "operation": "createServiceAccount"}),
        json!({"route": "POST /api/v2/security_devices"}),
        json!({"route": "POST /wiz/graphql", "operation": "addAllowedLoginDomain"}),
        json!({"route": "POST /wiz/graphql", "operation": "createUser"}),
        json!({"route": "POST /wiz/graphql", "operation": "createIntegration"}),
        json!({"route": "POST /wiz/graphql", "operation": "createAutomationRule"}),
    ];
    for create in creates {
        for lost in [json!({"status": 503}), json!({"reset": true})] {
            let mut fault = create.clone();
            fault["phase"] = json!("after");
            for (k, x) in lost.as_object().unwrap() {
                fault[k] = x.clone();
            }
            let what = fault.to_string();
            stack.admin("DELETE", "/_admin/faults", None);
            let (s, f) = stack.admin("POST", "/_admin/faults", Some(&fault));
            assert_eq!(s, 201, "{f}");
            w.tf_expect(&["apply", "-auto-approve", "-no-color", v[0], v[1]], 0);
            let (_, faults) = stack.admin("GET", "/_admin/faults", None);
            assert_eq!(
                faults["faults"][0]["fired"],
                json!(1),
                "{what}: the fault never hit: {faults}"
            );
            stack.admin("DELETE", "/_admin/faults", None);
            let st = wiz_state(&stack);
            for k in [
                "service_accounts",
                "users",
                "integrations",
                "automation_rules",
            ] {
                assert_eq!(
                    st[k].as_array().unwrap().len(),
                    1,
                    "{what}: {k} is not exactly one: {st}"
                );
            }
            assert_eq!(
                st["allowed_domains"],
                json!(["acme.example", "expel.io"]),
                "{what}"
            );
            let devs = stack.workbench_devices();
            assert_eq!(devs.len(), 1, "{what}");
            // The device holds the secret of the one service account (rotated if adopted).
            let dev = devs[0]["id"].as_str().unwrap().to_string();
            let attrs = settled_device(&stack, &dev);
            assert_eq!(
                attrs["status"],
                json!("healthy"),
                "{what}: {}",
                attrs["status_details"]
            );
            if create["operation"] == json!("createServiceAccount") {
                assert!(
                    st["service_accounts"][0]["lastRotatedAt"].is_string(),
                    "{what}: the adopted account's secret was not rotated: {st}"
                );
            }
            w.tf_expect(&["plan", "-detailed-exitcode", "-no-color", v[0], v[1]], 0);
            w.tf_expect(&["destroy", "-auto-approve", "-no-color", v[0], v[1]], 0);
            assert_nothing_left(&stack, &what);
        }
    }
}

/// wait_for_healthy: the apply ends once Workbench has checked the device (its status is in
/// state); when Wiz refuses the device's credentials, the apply fails within the timeout,
/// naming the setting and the device status, and destroy still removes everything.
#[test]
fn wait_for_healthy_waits_for_workbench_and_fails_clearly_on_refused_credentials() {
    let stack = Stack::local();
    let config = |name: &str| {
        hcl(&format!(
            r#"resource "expel_wiz_device" "w" {{
  name             = "{name}"
  wait_for_healthy = true
  timeouts {{
    create = "90s"
  }}
}}"#
        ))
    };
    let w = Workdir::with_hcl(&config("Acme Wiz"), &stack);
    w.tf_expect(APPLY, 0);
    assert_eq!(
        state_attr(&w, "expel_wiz_device.w", "device_status"),
        json!("healthy")
    );
    assert_eq!(
        state_attr(&w, "expel_wiz_device.w", "wait_for_healthy"),
        json!(true)
    );
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
    assert_nothing_left(&stack, "healthy case");

    // Wiz now refuses every service account's token request (the provider's own admin
    // client still signs in): Workbench finds the device unhealthy.
    let (s, b) = stack.admin(
        "PUT",
        "/_admin/wiz/settings",
        Some(&json!({"refuse_service_account_tokens": true})),
    );
    assert_eq!(s, 200, "{b}");
    let w = Workdir::with_hcl(&config("Refused Wiz"), &stack);
    let started = std::time::Instant::now();
    let out = w.terraform(APPLY);
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all().replace('\n', " ");
    for words in [
        "wait_for_healthy",
        "device status unhealthy",
        "access_denied",
        "Refused Wiz",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{}", out.all());
    }
    assert!(
        took < std::time::Duration::from_secs(90),
        "took {took:?}, beyond the create timeout"
    );
    assert_eq!(
        state_attr(&w, "expel_wiz_device.w", "device_status"),
        json!("unhealthy")
    );
    stack.admin(
        "PUT",
        "/_admin/wiz/settings",
        Some(&json!({"refuse_service_account_tokens": false})),
    );
    w.tf_expect(DESTROY, 0);
    assert_nothing_left(&stack, "refused case");
}

/// Secrets that must never reach Terraform's output, even at TF_LOG=trace: the provider's
/// Wiz client secret, the device's client secret, its webhook password, and access tokens
/// (the sandbox's are JWTs, whose header always encodes to `eyJhbGciOi`).
fn assert_no_secrets(stack: &Stack, logs: &str, what: &str) {
    assert!(logs.len() > 10_000, "{what}: trace logging is on");
    let st = wiz_state(stack);
    let mut secrets = vec![stack.var("WIZ_CLIENT_SECRET"), "eyJhbGciOi".to_string()];
    for sa in st["service_accounts"].as_array().unwrap() {
        secrets.push(sa["clientSecret"].as_str().unwrap().to_string());
    }
    for d in stack.workbench_devices() {
        if let Some(p) = d["attributes"]["webhook_password"].as_str() {
            secrets.push(p.to_string());
        }
    }
    assert!(secrets.len() >= 4, "{what}: {secrets:?}");
    for s in secrets {
        assert!(
            !logs.contains(&s),
            "{what}: a secret is in the TF_LOG=trace output"
        );
    }
}

fn calls_since(stack: &Stack, seq: u64) -> Vec<Json> {
    let (_, c) = stack.admin("GET", &format!("/_admin/calls?since={seq}"), None);
    c["log"].as_array().cloned().unwrap_or_default()
}

fn call_seq(stack: &Stack) -> u64 {
    stack.admin("GET", "/_admin/calls", None).1["total"]
        .as_u64()
        .unwrap()
}

/// A storm of 429s (queries, a create, the token endpoint) during apply: every one is
/// retried, the apply succeeds with one object of each kind, and no secret is logged.
#[test]
fn rate_limit_storm_is_retried() {
    let stack = Stack::local();
    let mut w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    w.set_env("TF_LOG", Some("trace"));
    let storms = [
        json!({"route": "POST /wiz/graphql", "nth": 2, "count": 6, "status": 429, "retry_after": 1}),
        json!({"route": "POST /wiz/graphql", "operation": "createIntegration", "count": 3, "status": 429}),
        json!({"route": "POST /wiz/oauth/token", "count": 2, "status": 429, "retry_after": 1}),
    ];
    for f in &storms {
        let (s, b) = stack.admin("POST", "/_admin/faults", Some(f));
        assert_eq!(s, 201, "{b}");
    }
    let since = call_seq(&stack);
    let out = w.tf_expect(APPLY, 0);
    let (_, faults) = stack.admin("GET", "/_admin/faults", None);
    for (f, want) in faults["faults"].as_array().unwrap().iter().zip([6, 3, 2]) {
        assert_eq!(f["fired"], json!(want), "a storm did not fully hit: {f}");
    }
    let log = calls_since(&stack, since);
    let throttled = |route: &str| {
        log.iter()
            .filter(|c| c["route"] == json!(route) && c["status"] == json!(429))
            .count()
    };
    assert_eq!(throttled("/wiz/graphql"), 9, "{log:?}");
    assert_eq!(throttled("/wiz/oauth/token"), 2, "{log:?}");
    // Each throttled call was sent again and answered.
    assert!(
        log.iter()
            .any(|c| c["route"] == json!("/wiz/oauth/token") && c["status"] == json!(200)),
        "{log:?}"
    );
    stack.admin("DELETE", "/_admin/faults", None);
    let st = wiz_state(&stack);
    for k in ["service_accounts", "integrations", "automation_rules"] {
        assert_eq!(st[k].as_array().unwrap().len(), 1, "{k}: {st}");
    }
    assert_no_secrets(&stack, &out.all(), "429 storm");
    w.set_env("TF_LOG", None);
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
    assert_nothing_left(&stack, "429 storm");
}

/// Every access token expires while a call is in flight: the provider gets a new token once
/// and sends the call again; the apply succeeds and no secret is logged.
#[test]
fn expired_token_mid_apply_reauthenticates_once() {
    let stack = Stack::local();
    let mut w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    w.set_env("TF_LOG", Some("trace"));
    // 401 rather than Wiz's HTTP 200 + UNAUTHENTICATED, so the call log shows it.
    let (s, _) = stack.admin(
        "PUT",
        "/_admin/wiz/settings",
        Some(&json!({"unauthenticated_http_status": 401})),
    );
    assert_eq!(s, 200);
    // createIntegration is held for 3 s; the tokens expire meanwhile (the token is checked
    // after the delay).
    let (s, _) = stack.admin(
        "POST",
        "/_admin/faults",
        Some(&json!({"route": "POST /wiz/graphql", "operation": "createIntegration", "latency_ms": 3000})),
    );
    assert_eq!(s, 201);
    let since = call_seq(&stack);
    let (out, expired_at) = std::thread::scope(|scope| {
        let apply = scope.spawn(|| w.terraform(APPLY));
        let mut expired_at = None;
        for _ in 0..600 {
            let (_, f) = stack.admin("GET", "/_admin/faults", None);
            if f["faults"][0]["fired"] == json!(1) {
                let seq = call_seq(&stack);
                let (_, e) = stack.admin("POST", "/_admin/wiz/expire-tokens", None);
                assert!(e["expired"].as_u64().unwrap() >= 1, "{e}");
                expired_at = Some(seq);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        (apply.join().unwrap(), expired_at)
    });
    assert_eq!(out.code, 0, "{}", out.all());
    let expired_at = expired_at.expect("createIntegration was never sent");
    // The held call is logged when it arrives (before the expiry), answered after it.
    let wiz_calls: Vec<Json> = calls_since(&stack, since)
        .into_iter()
        .filter(|c| c["path"].as_str().is_some_and(|p| p.starts_with("/wiz/")))
        .collect();
    let refused = wiz_calls
        .iter()
        .filter(|c| c["status"] == json!(401))
        .count();
    let after: Vec<&Json> = wiz_calls
        .iter()
        .filter(|c| c["seq"].as_u64().unwrap() > expired_at)
        .collect();
    let tokens = after
        .iter()
        .filter(|c| c["route"] == json!("/wiz/oauth/token"))
        .count();
    assert!(refused >= 1, "the held call was not refused: {wiz_calls:?}");
    assert!(
        tokens >= 1 && tokens <= refused,
        "{tokens} token requests for {refused} refusals: {wiz_calls:?}"
    );
    assert_eq!(
        after[0]["route"],
        json!("/wiz/oauth/token"),
        "the first call after the expiry is not a token request: {wiz_calls:?}"
    );
    assert!(
        after.iter().all(|c| c["status"] == json!(200))
            && after.iter().any(|c| c["route"] == json!("/wiz/graphql")),
        "{wiz_calls:?}"
    );
    assert_eq!(
        wiz_state(&stack)["integrations"].as_array().unwrap().len(),
        1
    );
    assert_no_secrets(&stack, &out.all(), "expired token");
    w.set_env("TF_LOG", None);
    stack.admin("DELETE", "/_admin/faults", None);
    w.tf_expect(DESTROY, 0);
    assert_nothing_left(&stack, "expired token");
}

fn device_properties(stack: &Stack, id: &str) -> Json {
    let (s, d) = stack.workbench("GET", &format!("/api/v2/security_devices/{id}"), None);
    assert_eq!(s, 200, "{d}");
    d["data"]["attributes"]["properties"].clone()
}

/// sync_rules goes to the Workbench device (`properties.sync_rules_enabled`, a guess); a
/// change made in Workbench is drift that apply repairs, keeping others' properties.
#[test]
fn sync_rules_live_on_the_device_and_changes_in_workbench_are_drift() {
    let stack = Stack::local();
    let config = |sync: &str| {
        hcl(&format!(
            "resource \"expel_wiz_device\" \"w\" {{\n  name = \"Acme Wiz\"\n  {sync}\n}}"
        ))
    };
    let w = Workdir::with_hcl(&config(""), &stack);
    w.tf_expect(APPLY, 0);
    let dev = state_attr(&w, "expel_wiz_device.w", "security_device_id");
    let dev = dev.as_str().unwrap().to_string();
    assert_eq!(
        device_properties(&stack, &dev),
        json!({"sync_rules_enabled": true})
    );
    w.tf_expect(PLAN, 0);

    // Someone disables them in Workbench (and sets a property of their own).
    let (s, b) = stack.workbench(
        "PATCH",
        &format!("/api/v2/security_devices/{dev}"),
        Some(&json!({"data": {"type": "security_devices", "id": dev,
            "attributes": {"properties": {"sync_rules_enabled": false, "team": "secops"}}}})),
    );
    assert_eq!(s, 200, "{b}");
    w.drift_repaired(
        "sync rules disabled in Workbench",
        &["synchronization rules are disabled"],
    );
    assert_eq!(
        device_properties(&stack, &dev),
        json!({"sync_rules_enabled": true, "team": "secops"})
    );

    // Turned off in the configuration: the device follows, nothing else changes.
    w.write("main.tf", &config("sync_rules = false"));
    w.tf_expect(APPLY, 0);
    assert_eq!(
        device_properties(&stack, &dev),
        json!({"sync_rules_enabled": false, "team": "secops"})
    );
    assert_eq!(
        state_attr(&w, "expel_wiz_device.w", "security_device_id"),
        json!(dev)
    );
    w.tf_expect(PLAN, 0);

    // Import reads the setting back: an empty plan.
    w.tf_expect(&["state", "rm", "expel_wiz_device.w"], 0);
    w.tf_expect(&["import", "-no-color", "expel_wiz_device.w", &dev], 0);
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
    assert_nothing_left(&stack, "sync rules");
}

/// The service account's create acts but its answer is lost, and the look-up that would find
/// it fails too: the apply fails, yet the unseen account is not orphaned. The failed apply
/// remembers (private state) that its create may have acted; the next refresh finds the
/// account's id, so after `terraform untaint` the next apply adopts it (rotating its secret),
/// and without untaint the replacement's destroy removes it before a new one is made; a
/// `destroy -refresh=false` removes it from what the failed apply remembered.
#[test]
fn an_unseen_service_account_from_a_failed_apply_is_adopted_or_removed() {
    let stack = Stack::local();
    let addr = "expel_wiz_device.w";
    for what in [
        "untaint",
        "replace",
        "untaint, no refresh",
        "destroy, no refresh",
    ] {
        let w = Workdir::with_hcl(&hcl(CLOUD), &stack);
        stack.admin("DELETE", "/_admin/faults", None);
        for f in [
            // The create acts, its answer is a 503 ...
            json!({"route": "POST /wiz/graphql", "operation": "createServiceAccount", "status": 503, "phase": "after"}),
            // ... and every look-up after the first (the pre-check) is refused.
            json!({"route": "POST /wiz/graphql", "operation": "serviceAccounts", "nth": 2, "count": -1, "status": 400}),
        ] {
            let (s, b) = stack.admin("POST", "/_admin/faults", Some(&f));
            assert_eq!(s, 201, "{b}");
        }
        let failed = w.terraform(APPLY);
        assert_eq!(failed.code, 1, "{what}: {}", failed.all());
        stack.admin("DELETE", "/_admin/faults", None);
        let st = wiz_state(&stack);
        assert_eq!(
            st["service_accounts"].as_array().unwrap().len(),
            1,
            "{what}: {st}"
        );
        let unseen = st["service_accounts"][0]["id"].clone();
        if what == "destroy, no refresh" {
            w.tf_expect(
                &["destroy", "-auto-approve", "-no-color", "-refresh=false"],
                0,
            );
            assert_nothing_left(&stack, what);
            continue;
        }
        if what == "untaint" {
            w.tf_expect(&["untaint", "-no-color", addr], 0);
        }
        w.tf_expect(APPLY, 0);
        let st = wiz_state(&stack);
        let accounts = st["service_accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 1, "{what}: {st}");
        if what == "untaint" {
            assert_eq!(accounts[0]["id"], unseen, "{what}: not adopted");
            assert!(accounts[0]["lastRotatedAt"].is_string(), "{what}: {st}");
        } else {
            assert_ne!(accounts[0]["id"], unseen, "{what}: not removed");
        }
        assert_eq!(
            state_attr(&w, addr, "service_account_id"),
            accounts[0]["id"]
        );
        let dev = state_attr(&w, addr, "security_device_id");
        let attrs = settled_device(&stack, dev.as_str().unwrap());
        assert_eq!(
            attrs["status"],
            json!("healthy"),
            "{what}: {}",
            attrs["status_details"]
        );
        w.tf_expect(PLAN, 0);
        w.tf_expect(DESTROY, 0);
        assert_nothing_left(&stack, what);
    }
}

/// Whether the plan shows `attr` changing to a value known only after apply.
fn unknown_in_plan(plan: &str, attr: &str) -> bool {
    plan.lines().any(|l| {
        l.trim_start().starts_with(&format!("~ {attr} ")) && l.contains("(known after apply)")
    })
}

/// Edits made in the Wiz console that no API patch can undo (service account scopes, an
/// integration limited to one project): refresh says the piece is made again, the plan
/// (from what the refresh found, kept in private state) shows its ids as known after apply,
/// and apply makes it again with new ids, which Terraform accepts.
#[test]
fn console_edits_no_patch_can_undo_are_made_again_with_ids_known_after_apply() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(CLOUD), &stack);
    w.tf_expect(APPLY, 0);
    let addr = "expel_wiz_device.w";
    let ids = |k: &str| state_attr(&w, addr, k);
    let (sa, client, integ, rule) = (
        ids("service_account_id"),
        ids("client_id"),
        ids("integration_id"),
        ids("automation_rule_id"),
    );

    let edit = json!({"serviceAccount": sa, "scopes": ["read:issues"]});
    let (code, out) = stack.admin("POST", "/_admin/wiz/console-edit", Some(&edit));
    assert_eq!(code, 200, "{out}");
    let plan = w.terraform(PLAN);
    assert_eq!(plan.code, 2, "{}", plan.all());
    for attr in ["service_account_id", "client_id"] {
        assert!(
            unknown_in_plan(&plan.all(), attr),
            "{attr}:\n{}",
            plan.all()
        );
    }
    assert!(
        !unknown_in_plan(&plan.all(), "integration_id"),
        "{}",
        plan.all()
    );
    w.tf_expect(APPLY, 0);
    assert_ne!(ids("service_account_id"), sa);
    assert_ne!(ids("client_id"), client);
    assert_eq!(ids("integration_id"), integ);
    w.tf_expect(PLAN, 0);

    let project = "3b9c1d2e-7f40-4a5b-8c6d-1e2f3a4b5c6d";
    let edit = json!({"integration": integ, "projectId": project});
    let (code, out) = stack.admin("POST", "/_admin/wiz/console-edit", Some(&edit));
    assert_eq!(code, 200, "{out}");
    let plan = w.terraform(PLAN);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.all().contains("made again"), "{}", plan.all());
    for attr in ["integration_id", "automation_rule_id"] {
        assert!(
            unknown_in_plan(&plan.all(), attr),
            "{attr}:\n{}",
            plan.all()
        );
    }
    assert!(
        !unknown_in_plan(&plan.all(), "service_account_id"),
        "{}",
        plan.all()
    );
    w.tf_expect(APPLY, 0);
    assert_ne!(ids("integration_id"), integ);
    assert_ne!(ids("automation_rule_id"), rule);
    w.tf_expect(PLAN, 0);
    let st = wiz_state(&stack);
    assert_eq!(st["integrations"].as_array().map(Vec::len), Some(1), "{st}");

    w.tf_expect(DESTROY, 0);
    let st = wiz_state(&stack);
    assert_eq!(st["integrations"], json!([]), "{st}");
}

/// Wiz GovCloud (guide, prerequisites and step 2): a legal addendum comes first, then Expel
/// enables event ingestion by hand and the device turns healthy. Without
/// `govcloud_addendum_confirmed` the plan fails naming it and saying whom to ask; a
/// commercial endpoint with `govcloud = true` (or a GovCloud one without it) is refused
/// naming `govcloud`. Confirmed, the apply succeeds even with `wait_for_healthy`: the
/// unhealthy device is a warning that says why; once Expel enables ingestion (the sandbox's
/// admin call) a refresh records the device healthy and the warning is gone.
#[test]
fn govcloud_refused_without_the_addendum_then_applies_with_a_warning_until_ingestion() {
    let stack = Stack::local();
    let (s, b) = stack.admin(
        "PUT",
        "/_admin/wiz/settings",
        Some(&json!({"govcloud": true})),
    );
    assert_eq!(s, 200, "{b}");
    let config = |extra: &str| {
        hcl(&format!(
            r#"resource "expel_wiz_device" "g" {{
  name             = "Agency Wiz"
  govcloud         = true
  wait_for_healthy = true
  {extra}
}}"#
        ))
    };
    let w = Workdir::with_hcl(&config(""), &stack);
    let out = w.terraform(&["plan", "-no-color"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let text = flat(&out.all());
    for words in [
        "govcloud_addendum_confirmed",
        "legal addendum",
        "Customer Success Manager",
        "Expel Support",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{}", out.all());
    }
    assert!(wiz_state(&stack)["service_accounts"]
        .as_array()
        .unwrap()
        .is_empty());

    for (extra, words) in [
        (
            "govcloud_addendum_confirmed = true\n  api_endpoint_url = \"https://api.us17.app.wiz.io/graphql\"",
            "commercial Wiz",
        ),
        (
            "api_endpoint_url = \"https://api.us1.gov.wiz.io/graphql\"",
            "GovCloud",
        ),
    ] {
        let body = if extra.contains("gov.wiz.io") {
            // A GovCloud endpoint while govcloud is false.
            hcl(&format!(
                "resource \"expel_wiz_device\" \"g\" {{\n  name = \"Agency Wiz\"\n  {extra}\n}}"
            ))
        } else {
            config(extra)
        };
        let w = Workdir::with_hcl(&body, &stack);
        let out = w.terraform(&["plan", "-no-color"]);
        assert_eq!(out.code, 1, "{extra}: {}", out.all());
        let text = flat(&out.all());
        assert!(
            text.contains("govcloud") && text.contains(words),
            "{extra}: the diagnostic names govcloud and says {words:?}:\n{}",
            out.all()
        );
    }

    w.write("main.tf", &config("govcloud_addendum_confirmed = true"));
    let out = w.tf_expect(APPLY, 0);
    let text = flat(&out.all());
    for words in [
        "Warning",
        "event ingestion",
        "legal addendum",
        "Expel Support",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{}", out.all());
    }
    let addr = "expel_wiz_device.g";
    assert_eq!(state_attr(&w, addr, "device_status"), json!("unhealthy"));
    assert_eq!(state_attr(&w, addr, "govcloud"), json!(true));
    // Unhealthy is not drift: the plan is empty and still says why.
    let out = w.tf_expect(PLAN, 0);
    assert!(
        flat(&out.all()).contains("event ingestion"),
        "{}",
        out.all()
    );

    // Expel enables ingestion: the device turns healthy and the warning goes.
    let id = state_attr(&w, addr, "security_device_id");
    let id = id.as_str().expect("device id");
    let (s, b) = stack.admin(
        "POST",
        &format!("/_admin/workbench/security_devices/{id}/enable-ingestion"),
        None,
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(settled_device(&stack, id)["status"], json!("healthy"));
    w.tf_expect(&["apply", "-refresh-only", "-auto-approve", "-no-color"], 0);
    assert_eq!(state_attr(&w, addr, "device_status"), json!("healthy"));
    let out = w.tf_expect(PLAN, 0);
    assert!(
        !flat(&out.all()).contains("event ingestion"),
        "{}",
        out.all()
    );
    w.tf_expect(DESTROY, 0);
    assert_nothing_left(&stack, "govcloud");
}
