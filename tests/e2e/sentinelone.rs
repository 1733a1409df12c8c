//! `expel_sentinelone_device` with the real `terraform` CLI against the SentinelOne and
//! Workbench emulators: apply, no-op plan, each out-of-band change -> plan exit 2 naming it
//! -> apply repairs -> plan exit 0, destroy leaves nothing, bad inputs, no token in logs.
use expel_e2e::{Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER};
use serde_json::{json, Value as Json};

fn hcl(stack: &Stack, extra: &str) -> String {
    format!(
        r#"{TF_HEADER}
resource "expel_sentinelone_device" "edr" {{
  name              = "Acme - S1 EDR"
  console_url       = "{}"
  account_id        = "{}"
  organization_name = "Acme Corp"
  status_syncing    = true
{extra}
}}
"#,
        stack.var("SENTINELONE_CONSOLE_URL"),
        stack.var("SENTINELONE_ACCOUNT_ID")
    )
}

/// The resource's attributes in the state.
fn attrs(w: &Workdir) -> Json {
    let out = w.tf_expect(&["show", "-json", "-no-color"], 0);
    let doc: Json = serde_json::from_str(&out.stdout).expect("show -json");
    doc["values"]["root_module"]["resources"][0]["values"].clone()
}

fn id(a: &Json, k: &str) -> String {
    a[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {a}"))
        .to_string()
}

/// The SentinelOne and Workbench calls of one no-op `plan` (which must exit 0), and the
/// counters. Workbench's own health check calls /threats with the device's token: not ours.
fn calls_per_refresh(stack: &Stack, w: &Workdir) -> (u64, Json) {
    stack.admin("DELETE", "/_admin/calls", None);
    w.tf_expect(PLAN, 0);
    let (_, calls) = stack.admin("GET", "/_admin/calls", None);
    let ours = calls["routes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.contains("/threats"))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    (ours, calls)
}

#[test]
fn apply_drift_repair_destroy() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(&stack, ""), &stack);
    let out = w.tf_expect(APPLY, 0);
    assert!(!out.all().contains("Error"), "{}", out.all());
    w.tf_expect(PLAN, 0);

    let a = attrs(&w);
    assert_eq!(a["console_user_email"], json!("soc+acme_corp@expel.io"));
    let (role_id, su_id, dev_id) = (id(&a, "role_id"), id(&a, "service_user_id"), id(&a, "id"));
    assert!(a["token_expires_at"].as_str().is_some(), "{a}");

    // What was made matches the guide.
    let st = stack.sandbox_state();
    let s1s = &st["sentinelone"];
    let role = s1s["custom_roles"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == json!(role_id)))
        .expect("role exists")
        .clone();
    assert_eq!(role["name"], json!("Viewer - Expel"));
    let perms: Vec<&str> = role["permissionIds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for p in [
        "Endpoints.remoteShell",
        "Endpoints.initiateScan",
        "Endpoints.fileFetch",
        "Endpoints.fetchLogs",
        "Threats.fetchThreatFile",
        "Threats.view",
        "Dashboard.view",
    ] {
        assert!(perms.contains(&p), "role lacks {p}: {perms:?}");
    }
    let user = s1s["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == json!("soc+acme_corp@expel.io"))
        .expect("console user")
        .clone();
    assert_eq!(user["fullName"], json!("Expel SOC"));
    assert_eq!(user["invitationSent"], json!(true));
    assert_eq!(user["scopeRoles"][0]["roleId"], json!(role_id));
    let dev = st["workbench"]["security_devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == json!(dev_id))
        .expect("device")
        .clone();
    assert_eq!(dev["attributes"]["plugin_slug"], json!("sentinelone"));
    assert_eq!(
        dev["attributes"]["device_spec"]["status_syncing"],
        json!(true)
    );
    // The device's token is the service user's live token, and it is not in the state.
    let token = dev["attributes"]["device_spec"]["api_token"]
        .as_str()
        .expect("token stored in Workbench")
        .to_string();
    let live: Vec<&Json> = s1s["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ownerId"] == json!(su_id) && t["active"] == json!(true))
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["value"], json!(token));
    let tfstate = std::fs::read_to_string(w.dir.path().join("terraform.tfstate")).unwrap();
    assert!(!tfstate.contains(&token), "the token leaked into the state");

    // Drift 1: a permission removed from the role.
    let (code, r) = stack.sentinelone("GET", &format!("/rbac/role/{role_id}"), None);
    assert_eq!(code, 200);
    let keep: Vec<String> = r["data"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["permissions"].as_array().unwrap().iter())
        .filter(|p| p["value"] == json!(true) && p["identifier"] != json!("Endpoints.remoteShell"))
        .map(|p| p["identifier"].as_str().unwrap().to_string())
        .collect();
    let body = json!({"data": {"name": "Viewer - Expel", "description": r["data"]["description"], "permissionIds": keep}});
    assert_eq!(
        stack
            .sentinelone("PUT", &format!("/rbac/role/{role_id}"), Some(&body))
            .0,
        200
    );
    w.drift_repaired("permission removed", &["role", "Remote Shell"]);

    // Drift 2: the role deleted (its holder moved to Viewer).
    let (_, roles) = stack.sentinelone("GET", "/rbac/roles?name=Viewer&predefinedRole=true", None);
    let viewer = roles["data"][0]["id"].as_str().unwrap().to_string();
    let (code, body) = stack.sentinelone(
        "DELETE",
        &format!("/rbac/role/{role_id}"),
        Some(&json!({"data": {"targetId": viewer}})),
    );
    assert_eq!(code, 200, "{body}");
    w.drift_repaired("role deleted", &["role", "deleted outside Terraform"]);
    let a = attrs(&w);
    assert_ne!(id(&a, "role_id"), role_id);

    // Drift 3: the console user deleted.
    let cu = id(&a, "console_user_id");
    assert_eq!(
        stack.sentinelone("DELETE", &format!("/users/{cu}"), None).0,
        200
    );
    w.drift_repaired(
        "console user deleted",
        &["console_user", "deleted outside Terraform"],
    );

    // Drift 4: the token revoked.
    let su = id(&attrs(&w), "service_user_id");
    let (code, body) = stack.sentinelone(
        "POST",
        "/users/revoke-api-token",
        Some(&json!({"data": {"id": su}})),
    );
    assert_eq!(code, 200, "{body}");
    w.drift_repaired("token revoked", &["service_user", "revoked"]);

    // Drift 5: the token expired.
    let (code, body) = stack.admin(
        "POST",
        "/_admin/sentinelone/expire-token",
        Some(&json!({"serviceUserId": su})),
    );
    assert_eq!(code, 200, "{body}");
    w.drift_repaired("token expired", &["service_user", "expired"]);

    // Drift 6: the service user deleted.
    assert_eq!(
        stack
            .sentinelone("DELETE", &format!("/service-users/{su}"), None)
            .0,
        200
    );
    w.drift_repaired(
        "service user deleted",
        &["service_user", "deleted outside Terraform"],
    );

    // Drift 7: the device edited in Workbench.
    let dev = id(&attrs(&w), "id");
    let (code, body) = stack.workbench(
        "PATCH",
        &format!("/api/v2/security_devices/{dev}"),
        Some(&json!({"data": {"type": "security_devices", "id": dev, "attributes": {"name": "renamed", "device_spec": {"console_url": stack.var("SENTINELONE_CONSOLE_URL"), "status_syncing": false}}}})),
    );
    assert_eq!(code, 200, "{body}");
    w.drift_repaired(
        "device edited",
        &["workbench_device", "renamed", "status syncing"],
    );

    // Drift 8: the device deleted in Workbench (its token is needed again: a new one is made).
    assert_eq!(
        stack
            .workbench("DELETE", &format!("/api/v2/security_devices/{dev}"), None)
            .0,
        204
    );
    w.drift_repaired(
        "device deleted",
        &["workbench_device", "deleted outside Terraform"],
    );

    // The device's token works: Workbench's health check calls SentinelOne with it.
    let a = attrs(&w);
    let dev = id(&a, "id");
    let mut status = Json::Null;
    for _ in 0..50 {
        let (_, d) = stack.workbench("GET", &format!("/api/v2/security_devices/{dev}"), None);
        status = d["data"]["attributes"]["status"].clone();
        if d["data"]["attributes"]["is_verifying_status"] == json!(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, json!("healthy"));

    // Destroy leaves nothing behind.
    w.tf_expect(DESTROY, 0);
    let st = stack.sandbox_state();
    assert_eq!(
        st["sentinelone"]["custom_roles"],
        json!([]),
        "{}",
        st["sentinelone"]["custom_roles"]
    );
    assert_eq!(st["sentinelone"]["service_users"], json!([]));
    assert_eq!(
        st["sentinelone"]["users"].as_array().map(Vec::len),
        Some(1),
        "only the admin remains: {}",
        st["sentinelone"]["users"]
    );
    assert_eq!(st["workbench"]["security_devices"], json!([]));
}

#[test]
fn bad_inputs_name_the_attribute() {
    let stack = Stack::local();
    let url = stack.var("SENTINELONE_CONSOLE_URL");
    let acct = stack.var("SENTINELONE_ACCOUNT_ID");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            hcl(&stack, "").replace(&url, "http://usea1-1001.sentinelone.net"),
            "console_url",
            "https",
        ),
        (
            hcl(&stack, "").replace(&acct, "999"),
            "account_id",
            "Unknown SentinelOne account",
        ),
        (
            hcl(&stack, "  token_expiration_date = \"2020-01-01\"\n"),
            "token_expiration_date",
            "past",
        ),
        (
            hcl(&stack, "").replace("\"Acme Corp\"", "\"\""),
            "organization_name",
            "empty",
        ),
    ];
    for (text, attr, words) in cases {
        let w = Workdir::with_hcl(&text, &stack);
        let out = w.tf_expect(&["plan", "-no-color"], 1);
        assert!(out.stderr.contains(attr), "{attr}: {}", out.stderr);
        assert!(out.stderr.contains(words), "{attr}: {}", out.stderr);
    }
    // An unfamiliar host is a warning, not an error.
    let w = Workdir::with_hcl(
        &hcl(&stack, "").replace(&url, "https://s1.example.gov"),
        &stack,
    );
    let out = w.terraform(&["validate", "-no-color"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains("Unfamiliar SentinelOne console"),
        "{}",
        out.all()
    );
    // Nothing was made.
    let st = stack.sandbox_state();
    assert_eq!(st["sentinelone"]["custom_roles"], json!([]));
}

#[test]
fn token_never_in_trace_logs() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(&stack, ""), &stack);
    let log = w.dir.path().join("trace.log");
    let out = {
        // The harness clears TF_LOG; run terraform directly with trace logging.
        let mut cmd = std::process::Command::new("terraform");
        cmd.args(["apply", "-auto-approve", "-no-color"])
            .current_dir(w.dir.path())
            .env("TF_LOG", "trace")
            .env("TF_LOG_PATH", &log)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", w.dir.path().join("dev.tfrc"));
        for (k, v) in &stack.env {
            cmd.env(k, v);
        }
        cmd.output().expect("terraform")
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = stack.sandbox_state();
    let token = st["workbench"]["security_devices"][0]["attributes"]["device_spec"]["api_token"]
        .as_str()
        .expect("device token")
        .to_string();
    let trace = std::fs::read_to_string(&log).expect("trace log");
    assert!(trace.len() > 10_000, "trace logging was on");
    assert!(
        !trace.contains(&token),
        "the S1 token appears in TF_LOG=trace output"
    );
    assert!(
        !trace.contains(&stack.var("SENTINELONE_API_TOKEN")),
        "the provider's S1 token appears in the trace"
    );
    w.tf_expect(DESTROY, 0);
}

#[test]
fn more_drift_rotation_and_import() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(&stack, ""), &stack);
    w.tf_expect(APPLY, 0);
    // A refresh reads each piece once (plus the account pin); the role template and the
    // Viewer permissions come from private state. Workbench's own health check calls
    // /threats with the device's token: not ours.
    let (ours, calls) = calls_per_refresh(&stack, &w);
    assert_eq!(ours, 5, "calls per refresh: {calls}");
    let a = attrs(&w);
    let (role_id, cu, su, dev) = (
        id(&a, "role_id"),
        id(&a, "console_user_id"),
        id(&a, "service_user_id"),
        id(&a, "id"),
    );

    // A permission added to the role.
    let (_, r) = stack.sentinelone("GET", &format!("/rbac/role/{role_id}"), None);
    let mut ids: Vec<String> = r["data"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["permissions"].as_array().unwrap().iter())
        .filter(|p| p["value"] == json!(true))
        .map(|p| p["identifier"].as_str().unwrap().to_string())
        .collect();
    ids.push("Endpoints.uninstall".into());
    let body = json!({"data": {"name": "Viewer - Expel", "description": r["data"]["description"], "permissionIds": ids}});
    assert_eq!(
        stack
            .sentinelone("PUT", &format!("/rbac/role/{role_id}"), Some(&body))
            .0,
        200
    );
    w.drift_repaired(
        "permission added",
        &["role", "permissions added", "Endpoints.uninstall"],
    );

    // The console user given another role.
    let (_, roles) = stack.sentinelone("GET", "/rbac/roles?name=Viewer&predefinedRole=true", None);
    let viewer = roles["data"][0]["id"].as_str().unwrap().to_string();
    let acct = stack.var("SENTINELONE_ACCOUNT_ID");
    let body = json!({"data": {"scopeRoles": [{"id": acct, "roleId": viewer}]}});
    let (code, out) = stack.sentinelone("PUT", &format!("/users/{cu}"), Some(&body));
    assert_eq!(code, 200, "{out}");
    w.drift_repaired("console user role", &["console_user", "Viewer"]);

    // Rotation: the token regenerated out of band to expire in 10 days, within rotate_before
    // (30d): refresh marks it due, the plan shows a new expiry, apply rotates.
    let in_10_days = {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", "+10 days", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (code, out) = stack.sentinelone(
        "POST",
        &format!("/service-users/{su}/generate-api-token"),
        Some(&json!({"data": {"expirationDate": in_10_days}})),
    );
    assert_eq!(code, 200, "{out}");
    let before = id(&attrs(&w), "token_expires_at");
    w.drift_repaired(
        "token rotation due",
        &["service_user", "rotation due", "token_expires_at"],
    );
    let after = id(&attrs(&w), "token_expires_at");
    assert_ne!(before, after);
    assert!(
        after.as_str() > in_10_days.as_str(),
        "{after} vs {in_10_days}"
    );

    // Import by Workbench device id: a fresh state finds every piece again.
    w.tf_expect(&["state", "rm", "expel_sentinelone_device.edr"], 0);
    w.tf_expect(
        &["import", "-no-color", "expel_sentinelone_device.edr", &dev],
        0,
    );
    let a = attrs(&w);
    assert_eq!(id(&a, "role_id"), role_id);
    assert_eq!(id(&a, "service_user_id"), su);
    assert_eq!(id(&a, "console_user_id"), cu);
    // organization_name is read back (the console user's e-mail, spelled as Workbench
    // knows the organization): the first plan after the import is empty.
    assert_eq!(a["organization_name"], json!("Acme Corp"));
    let plan = w.terraform(PLAN);
    assert_eq!(plan.code, 0, "plan after import not empty:\n{}", plan.all());

    w.tf_expect(DESTROY, 0);
    let st = stack.sandbox_state();
    assert_eq!(st["sentinelone"]["custom_roles"], json!([]));
    assert_eq!(st["sentinelone"]["service_users"], json!([]));
    assert_eq!(st["workbench"]["security_devices"], json!([]));
}

/// A fault at each step: apply fails, nothing is orphaned (the state lists what was made),
/// and a rerun converges. Throttling (429 with Retry-After) is retried, not reported.
#[test]
fn faults_leave_no_orphans_and_rerun_converges() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(
        &hcl(
            &stack,
            "  timeouts {\n    create = \"3s\"\n    update = \"3s\"\n  }\n",
        ),
        &stack,
    );
    // Throttled role creation: retried after Retry-After.
    let fault = json!({"route": "POST /web/api/v2.1/rbac/role", "count": 2, "status": 429, "retry_after": 1});
    assert_eq!(stack.admin("POST", "/_admin/faults", Some(&fault)).0, 201);
    w.tf_expect(APPLY, 0);
    w.tf_expect(DESTROY, 0);
    stack.admin("DELETE", "/_admin/faults", None);

    for (route, phase) in [
        ("POST /web/api/v2.1/rbac/role", "before"),
        ("POST /web/api/v2.1/users", "before"),
        ("POST /web/api/v2.1/users", "after"),
        ("POST /web/api/v2.1/service-users", "before"),
        ("POST /web/api/v2.1/service-users", "after"),
        ("POST /api/v2/security_devices", "before"),
        ("POST /api/v2/security_devices", "after"),
    ] {
        let fault = json!({"route": route, "count": -1, "status": 500, "phase": phase});
        let (code, body) = stack.admin("POST", "/_admin/faults", Some(&fault));
        assert!(code == 201 || code == 200, "{body}");
        let out = w.terraform(APPLY);
        if phase == "before" {
            assert_eq!(out.code, 1, "{route}: apply should fail:\n{}", out.all());
            assert!(out.stderr.contains("failed at"), "{route}: {}", out.stderr);
        }
        // A lost answer ("after") is adopted on a second look, or the rerun adopts it.
        stack.admin("DELETE", "/_admin/faults", None);
        // Resume: untaint and apply adopts what exists.
        let _ = w.terraform(&["untaint", "expel_sentinelone_device.edr"]);
        w.tf_expect(APPLY, 0);
        w.tf_expect(PLAN, 0);
        w.tf_expect(DESTROY, 0);
        let st = stack.sandbox_state();
        assert_eq!(st["sentinelone"]["custom_roles"], json!([]), "{route}");
        assert_eq!(st["sentinelone"]["service_users"], json!([]), "{route}");
        assert_eq!(
            st["sentinelone"]["users"].as_array().map(Vec::len),
            Some(1),
            "{route}: {}",
            st["sentinelone"]["users"]
        );
        assert_eq!(st["workbench"]["security_devices"], json!([]), "{route}");
    }
}

/// A create whose answer is lost (the console acted, then answered 500) is looked for before
/// it is sent again: the same apply adopts what it made, with one POST and no conflict, and
/// the service user found that way gets a token of its own (the first one was in the lost
/// answer).
#[test]
fn a_lost_create_answer_is_adopted_without_sending_the_create_again() {
    let stack = Stack::local();
    for route in [
        "/web/api/v2.1/rbac/role",
        "/web/api/v2.1/users",
        "/web/api/v2.1/service-users",
    ] {
        let w = Workdir::with_hcl(&hcl(&stack, ""), &stack);
        stack.admin("DELETE", "/_admin/calls", None);
        let fault =
            json!({"route": format!("POST {route}"), "count": 1, "status": 500, "phase": "after"});
        assert_eq!(stack.admin("POST", "/_admin/faults", Some(&fault)).0, 201);
        w.tf_expect(APPLY, 0);
        stack.admin("DELETE", "/_admin/faults", None);
        let (_, calls) = stack.admin("GET", "/_admin/calls", None);
        let posts: Vec<u64> = calls["log"]
            .as_array()
            .expect("a call log")
            .iter()
            .filter(|c| c["method"] == "POST" && c["path"].as_str() == Some(route))
            .filter_map(|c| c["status"].as_u64())
            .collect();
        assert_eq!(posts, [500], "{route}: sent once, never again: {posts:?}");
        let st = stack.sandbox_state();
        let named = |kind: &str, key: &str, value: &str| {
            st["sentinelone"][kind]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o[key] == value)
                .count()
        };
        assert_eq!(
            named("custom_roles", "name", "Viewer - Expel"),
            1,
            "{route}"
        );
        assert_eq!(named("service_users", "name", "Expel API"), 1, "{route}");
        let token = id(&attrs(&w), "token_expires_at");
        assert!(!token.is_empty(), "{route}: a token is recorded");
        w.tf_expect(PLAN, 0);
        w.tf_expect(DESTROY, 0);
        nothing_left(&stack, route);
    }
}

/// A service user someone took our marker off is left in place by destroy; the API token this
/// resource made for it (known only to the deleted Workbench device) is revoked, unless a
/// token was made since.
#[test]
fn a_service_user_left_in_place_loses_only_the_token_we_made() {
    let stack = Stack::local();
    for regenerated in [false, true] {
        let w = Workdir::with_hcl(&hcl(&stack, ""), &stack);
        w.tf_expect(APPLY, 0);
        let su = id(&attrs(&w), "service_user_id");
        let (code, body) = stack.sentinelone(
            "PUT",
            &format!("/service-users/{su}"),
            Some(&json!({"data": {"description": "Taken over by the SOC tooling team"}})),
        );
        assert_eq!(code, 200, "{body}");
        if regenerated {
            let (code, body) = stack.sentinelone(
                "POST",
                &format!("/service-users/{su}/generate-api-token"),
                Some(&json!({"data": {"expirationDate": "2099-01-01T00:00:00Z"}})),
            );
            assert_eq!(code, 200, "{body}");
        }
        let out = w.tf_expect(DESTROY, 0);
        let (code, kept) = stack.sentinelone("GET", &format!("/service-users/{su}"), None);
        assert_eq!(code, 200, "the service user is left in place: {kept}");
        let kept = &kept["data"];
        let flat = expel_e2e::flat(&out.all());
        if regenerated {
            assert!(
                !kept["apiToken"].is_null(),
                "a token made since stays: {kept}"
            );
            assert!(!flat.contains("was revoked"), "{flat}");
        } else {
            assert!(kept["apiToken"].is_null(), "our token is revoked: {kept}");
            assert!(flat.contains("was revoked"), "said: {flat}");
        }
        assert!(flat.contains("left in place"), "{flat}");
        // Clean up what was left on purpose, for the next round.
        assert_eq!(
            stack
                .sentinelone("DELETE", &format!("/service-users/{su}"), None)
                .0,
            200
        );
    }
}

/// Nothing of ours is left in SentinelOne or Workbench (the admin is the only console user).
fn nothing_left(stack: &Stack, case: &str) {
    let st = stack.sandbox_state();
    let s1s = &st["sentinelone"];
    assert_eq!(
        s1s["custom_roles"],
        json!([]),
        "{case}: {}",
        s1s["custom_roles"]
    );
    assert_eq!(s1s["service_users"], json!([]), "{case}");
    assert_eq!(
        s1s["users"].as_array().map(Vec::len),
        Some(1),
        "{case}: only the admin remains: {}",
        s1s["users"]
    );
    assert_eq!(st["workbench"]["security_devices"], json!([]), "{case}");
}

/// Replaces the permissions of the predefined role "IR Team" (the service user's).
fn set_ir_team(stack: &Stack, ids: &[String]) {
    let (code, body) = stack.admin(
        "PUT",
        "/_admin/sentinelone/predefined-role",
        Some(&json!({"name": "IR Team", "permissionIds": ids})),
    );
    assert_eq!(code, 200, "{body}");
}

/// IR Team's permissions now, and the same without the status-syncing ones (and what
/// depends on them).
fn ir_team_with_and_without_manage(stack: &Stack) -> (Vec<String>, Vec<String>) {
    let (_, roles) = stack.sentinelone(
        "GET",
        "/rbac/roles?name=IR%20Team&predefinedRole=true",
        None,
    );
    let ir = roles["data"][0]["id"]
        .as_str()
        .expect("IR Team")
        .to_string();
    let (code, r) = stack.sentinelone("GET", &format!("/rbac/role/{ir}"), None);
    assert_eq!(code, 200, "{r}");
    let perms: Vec<&Json> = r["data"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["permissions"].as_array().unwrap().iter())
        .collect();
    let granted: Vec<String> = perms
        .iter()
        .filter(|p| p["value"] == json!(true))
        .map(|p| p["identifier"].as_str().unwrap().to_string())
        .collect();
    let mut dropped: Vec<String> = [
        "Change Incident Status",
        "Change Analyst Verdict",
        "Add Notes",
    ]
    .iter()
    .map(|t| {
        perms
            .iter()
            .find(|p| p["title"] == json!(t))
            .and_then(|p| p["identifier"].as_str())
            .unwrap_or_else(|| panic!("no permission titled {t}"))
            .to_string()
    })
    .collect();
    // Whatever depends on a dropped permission goes too.
    loop {
        let more: Vec<String> = perms
            .iter()
            .filter(|p| {
                p["dependsOn"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| dropped.iter().any(|x| d == &json!(x)))
            })
            .map(|p| p["identifier"].as_str().unwrap().to_string())
            .filter(|i| !dropped.contains(i))
            .collect();
        if more.is_empty() {
            break;
        }
        dropped.extend(more);
    }
    let without = granted
        .iter()
        .filter(|p| !dropped.contains(p))
        .cloned()
        .collect();
    (granted, without)
}

/// Status syncing with a service user role that lacks the Manage level: create and update
/// fail naming `status_syncing` and the missing permissions, before anything is made or
/// changed; once the role grants them, apply succeeds.
#[test]
fn status_syncing_needs_the_manage_level() {
    let stack = Stack::local();
    let (full, reduced) = ir_team_with_and_without_manage(&stack);
    assert!(reduced.len() < full.len());
    set_ir_team(&stack, &reduced);

    // Create: fails before anything exists.
    let w = Workdir::with_hcl(&hcl(&stack, ""), &stack);
    let out = w.tf_expect(APPLY, 1);
    // Terraform wraps diagnostics: compare with single spaces.
    let text = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    for words in [
        "status_syncing",
        "Manage level",
        "\"IR Team\"",
        "Endpoint Threats / Change Incident Status",
        "Endpoint Threats / Change Analyst Verdict",
        "Endpoint Threats / Add Notes",
        "status_syncing = false",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{}", out.stderr);
    }
    nothing_left(&stack, "failed create");
    let listed = w.tf_expect(&["state", "list"], 0);
    assert_eq!(listed.stdout.trim(), "", "nothing in state");
    w.tf_expect(DESTROY, 0);
    nothing_left(&stack, "destroy after failed create");

    // Without status syncing the same role is fine; turning it on is refused and changes
    // nothing (the device keeps status syncing off).
    let off = hcl(&stack, "").replace("status_syncing    = true", "status_syncing    = false");
    w.write("main.tf", &off);
    w.tf_expect(APPLY, 0);
    w.write("main.tf", &hcl(&stack, ""));
    let out = w.tf_expect(APPLY, 1);
    assert!(
        out.stderr.contains("status_syncing") && out.stderr.contains("Change Incident Status"),
        "{}",
        out.stderr
    );
    let st = stack.sandbox_state();
    assert_eq!(
        st["workbench"]["security_devices"][0]["attributes"]["device_spec"]["status_syncing"],
        json!(false)
    );

    // The role granted the Manage level again: the update goes through.
    set_ir_team(&stack, &full);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let st = stack.sandbox_state();
    assert_eq!(
        st["workbench"]["security_devices"][0]["attributes"]["device_spec"]["status_syncing"],
        json!(true)
    );
    w.tf_expect(DESTROY, 0);
    nothing_left(&stack, "destroy");
}

/// The soc+<org>@expel.io console user shared by two accounts of the tenant: the second
/// resource adopts it and adds its account's role; destroying one removes only that
/// account's role; destroying the last deletes the user. An unmarked user with the address
/// is refused and never deleted.
#[test]
fn console_user_shared_by_two_accounts() {
    let stack = Stack::local();
    let acct1 = stack.var("SENTINELONE_ACCOUNT_ID");
    let acct2 = stack.add_sentinelone_account("Acme EU");
    let w1 = Workdir::with_hcl(&hcl(&stack, ""), &stack);
    let w2 = Workdir::with_hcl(
        &hcl(&stack, "")
            .replace(&acct1, &acct2)
            .replace("Acme - S1 EDR", "Acme EU - S1 EDR"),
        &stack,
    );
    w1.tf_expect(APPLY, 0);
    w2.tf_expect(APPLY, 0);
    w1.tf_expect(PLAN, 0);
    w2.tf_expect(PLAN, 0);
    let (a1, a2) = (attrs(&w1), attrs(&w2));
    assert_eq!(id(&a1, "console_user_id"), id(&a2, "console_user_id"));
    let (role1, role2) = (id(&a1, "role_id"), id(&a2, "role_id"));
    assert_ne!(role1, role2);
    let soc_users = |stack: &Stack| -> Vec<Json> {
        stack.sandbox_state()["sentinelone"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["email"] == json!("soc+acme_corp@expel.io"))
            .cloned()
            .collect()
    };
    let users = soc_users(&stack);
    assert_eq!(users.len(), 1, "one user, not two: {users:?}");
    assert_eq!(
        users[0]["scopeRoles"],
        json!([{"id": acct1, "roleId": role1}, {"id": acct2, "roleId": role2}])
    );

    // Import with two accounts holding our pieces: the bare device id is ambiguous and
    // says so; naming the account finds every piece, and the first plan is empty.
    let dev2 = id(&a2, "id");
    w2.tf_expect(&["state", "rm", "expel_sentinelone_device.edr"], 0);
    let out = w2.tf_expect(
        &["import", "-no-color", "expel_sentinelone_device.edr", &dev2],
        1,
    );
    assert!(
        out.stderr.contains("Which SentinelOne account?")
            && out.stderr.contains(&format!("{dev2}/<account id>")),
        "{}",
        out.stderr
    );
    w2.tf_expect(
        &[
            "import",
            "-no-color",
            "expel_sentinelone_device.edr",
            &format!("{dev2}/{acct2}"),
        ],
        0,
    );
    assert_eq!(id(&attrs(&w2), "role_id"), role2);
    w2.tf_expect(PLAN, 0);

    // Destroy the first: the user stays, with the second account's role only.
    w1.tf_expect(DESTROY, 0);
    let users = soc_users(&stack);
    assert_eq!(users.len(), 1, "the user is still used by {acct2}");
    assert_eq!(
        users[0]["scopeRoles"],
        json!([{"id": acct2, "roleId": role2}])
    );
    let roles: Vec<Json> = stack.sandbox_state()["sentinelone"]["custom_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(roles, vec![json!(role2)]);
    w2.tf_expect(PLAN, 0);

    // Destroy the second: the user was its last scope, it goes.
    w2.tf_expect(DESTROY, 0);
    assert!(soc_users(&stack).is_empty());
    nothing_left(&stack, "both destroyed");

    // Someone else's user with the address (not our full name): refused, never deleted.
    let (_, roles) = stack.sentinelone("GET", "/rbac/roles?name=Viewer&predefinedRole=true", None);
    let viewer = roles["data"][0]["id"].as_str().unwrap().to_string();
    let body = json!({"data": {"email": "soc+acme_corp@expel.io", "fullName": "Acme SOC desk",
                               "scope": "account", "scopeRoles": [{"id": acct1, "roleId": viewer}]}});
    let (code, made) = stack.sentinelone("POST", "/users", Some(&body));
    assert_eq!(code, 200, "{made}");
    let out = w2.tf_expect(APPLY, 1);
    assert!(
        out.stderr.contains("already exists") && out.stderr.contains("import it"),
        "{}",
        out.stderr
    );
    w2.tf_expect(DESTROY, 0);
    let users = soc_users(&stack);
    assert_eq!(users.len(), 1, "the unmarked user is kept");
    assert_eq!(users[0]["fullName"], json!("Acme SOC desk"));
    assert_eq!(
        users[0]["scopeRoles"],
        json!([{"id": acct1, "roleId": viewer}])
    );
    assert_eq!(
        stack.sandbox_state()["sentinelone"]["custom_roles"],
        json!([])
    );
    assert_eq!(
        stack.sandbox_state()["sentinelone"]["service_users"],
        json!([])
    );
}

/// `site_id`: the role, the console user and the service user live in the site; a site of
/// another account or an unknown site is refused at plan time, naming `site_id`.
#[test]
fn site_scope() {
    let stack = Stack::local();
    let acct = stack.var("SENTINELONE_ACCOUNT_ID");
    let (code, sites) = stack.sentinelone("GET", &format!("/sites?accountIds={acct}"), None);
    assert_eq!(code, 200, "{sites}");
    let site = sites["data"]["sites"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (_, added) = stack.admin(
        "POST",
        "/_admin/sentinelone/accounts",
        Some(&json!({"name": "Acme EU"})),
    );
    let foreign = added["site"]["id"].as_str().unwrap().to_string();
    for (bad, words) in [
        ("42", "Unknown SentinelOne site"),
        (foreign.as_str(), "Site of another account"),
    ] {
        let w = Workdir::with_hcl(&hcl(&stack, &format!("  site_id = \"{bad}\"\n")), &stack);
        let out = w.tf_expect(&["plan", "-no-color"], 1);
        assert!(
            out.stderr.contains("site_id") && out.stderr.contains(words),
            "{bad}: {}",
            out.stderr
        );
    }

    let w = Workdir::with_hcl(&hcl(&stack, &format!("  site_id = \"{site}\"\n")), &stack);
    w.tf_expect(APPLY, 0);
    // A refresh reads the account and the site (both pinned) and each piece once.
    let (ours, calls) = calls_per_refresh(&stack, &w);
    assert_eq!(ours, 6, "calls per refresh: {calls}");
    let a = attrs(&w);
    let st = stack.sandbox_state();
    let s1s = &st["sentinelone"];
    let role = &s1s["custom_roles"][0];
    assert_eq!(role["id"], json!(id(&a, "role_id")));
    assert_eq!(
        (&role["scope"], &role["scopeId"]),
        (&json!("Site"), &json!(site))
    );
    let user = s1s["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == json!(id(&a, "console_user_id")))
        .expect("console user")
        .clone();
    assert_eq!(user["scope"], json!("site"));
    assert_eq!(
        user["scopeRoles"],
        json!([{"id": site, "roleId": id(&a, "role_id")}])
    );
    let su = &s1s["service_users"][0];
    assert_eq!(su["scope"], json!("site"));
    assert_eq!(su["scopeRoles"][0]["id"], json!(site));

    // Import names the site: every piece is found in it, the first plan is empty.
    let dev = id(&a, "id");
    w.tf_expect(&["state", "rm", "expel_sentinelone_device.edr"], 0);
    w.tf_expect(
        &[
            "import",
            "-no-color",
            "expel_sentinelone_device.edr",
            &format!("{dev}/{acct}/{site}"),
        ],
        0,
    );
    let imported = attrs(&w);
    for k in ["role_id", "console_user_id", "service_user_id", "site_id"] {
        assert_eq!(imported[k], a[k], "{k}");
    }
    w.tf_expect(PLAN, 0);

    // A drift inside the site scope is seen and repaired.
    let (code, body) = stack.sentinelone(
        "PUT",
        &format!("/service-users/{}", id(&a, "service_user_id")),
        Some(
            &json!({"data": {"scope": "account", "scopeRoles": [{"id": acct, "roleId": su["scopeRoles"][0]["roleId"]}]}}),
        ),
    );
    assert_eq!(code, 200, "{body}");
    w.drift_repaired(
        "service user moved to the account",
        &["service_user", &site],
    );

    w.tf_expect(DESTROY, 0);
    nothing_left(&stack, "site destroy");
}

/// Two accounts' devices in one configuration share the console user. Terraform runs them
/// concurrently; with the user's writes slowed down, both would read the same role list and
/// one write would undo the other (a role left held, its delete refused), so the provider
/// serializes changes to one console user.
#[test]
fn console_user_shared_in_one_configuration() {
    let stack = Stack::local();
    let acct1 = stack.var("SENTINELONE_ACCOUNT_ID");
    let acct2 = stack.add_sentinelone_account("Acme EU");
    let one = hcl(&stack, "");
    let second = one[one.find("resource").expect("a resource")..]
        .replace("\"edr\"", "\"eu\"")
        .replace(&acct1, &acct2)
        .replace("Acme - S1 EDR", "Acme EU - S1 EDR");
    let w = Workdir::with_hcl(&format!("{one}\n{second}"), &stack);
    let slow = json!({"route": "PUT /web/api/v2.1/users", "count": -1, "latency_ms": 1500});
    assert_eq!(stack.admin("POST", "/_admin/faults", Some(&slow)).0, 201);
    let scope_roles = |stack: &Stack| -> Vec<Json> {
        stack.sandbox_state()["sentinelone"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["email"] == json!("soc+acme_corp@expel.io"))
            .map(|u| u["scopeRoles"].clone())
            .collect()
    };
    let accounts_of = |roles: &[Json]| -> Vec<Vec<String>> {
        roles
            .iter()
            .map(|sr| {
                let mut ids: Vec<String> = sr
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_string())
                    .collect();
                ids.sort();
                ids
            })
            .collect()
    };
    let mut both = vec![acct1.clone(), acct2.clone()];
    both.sort();

    w.tf_expect(APPLY, 0);
    assert_eq!(accounts_of(&scope_roles(&stack)), vec![both.clone()]);
    w.tf_expect(PLAN, 0);

    // One of them destroyed: the user keeps the other's role.
    w.tf_expect(
        &[
            "destroy",
            "-auto-approve",
            "-no-color",
            "-target=expel_sentinelone_device.eu",
        ],
        0,
    );
    assert_eq!(accounts_of(&scope_roles(&stack)), vec![vec![acct1.clone()]]);
    w.tf_expect(APPLY, 0);
    assert_eq!(accounts_of(&scope_roles(&stack)), vec![both]);

    // Both destroyed at once: nothing is left, the user included.
    w.tf_expect(DESTROY, 0);
    nothing_left(&stack, "both destroyed together");
}
