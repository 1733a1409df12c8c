//! Workbench devices are adopted only by exact name in our organization and never when
//! soft-deleted; each resource pins its Workbench organization and URL. Real `terraform`
//! against the local stack, whose Workbench serves a second organization to the same key.
use expel_e2e::{sentinelone_device, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER};
use serde_json::{json, Value as Json};

const DEVICES: &str = "/api/v2/security_devices";

/// The devices not soft-deleted, as (id, organization id).
fn live(stack: &Stack) -> Vec<(String, String)> {
    stack
        .workbench_devices()
        .iter()
        .filter(|d| d["attributes"]["deleted_at"].is_null())
        .map(|d| (s(&d["id"]), s(&d["organization_id"])))
        .collect()
}

fn s(v: &Json) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A second organization served to the stack's API key; its id.
fn add_org(stack: &Stack, name: &str) -> String {
    let (code, org) = stack.admin(
        "POST",
        "/_admin/workbench/organizations",
        Some(&json!({"name": name})),
    );
    assert_eq!(code, 201, "{org}");
    s(&org["id"])
}

/// A device registered by someone else, straight through the Workbench API; its id.
fn register(stack: &Stack, org: &str, attributes: Json) -> String {
    let body = json!({"data": {"type": "security_devices", "attributes": attributes,
        "relationships": {"organization": {"data": {"type": "organizations", "id": org}}}}});
    let (code, doc) = stack.workbench("POST", DEVICES, Some(&body));
    assert_eq!(code, 201, "{doc}");
    s(&doc["data"]["id"])
}

fn soft_delete(stack: &Stack, id: &str) {
    let (code, body) = stack.admin(
        "POST",
        &format!("/_admin/workbench/security_devices/{id}/soft-delete"),
        None,
    );
    assert_eq!(code, 200, "{body}");
}

/// What adopting a device would change: everything but its health.
fn fingerprint(stack: &Stack, id: &str) -> Json {
    let d = stack
        .workbench_devices()
        .into_iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("device {id} is gone"));
    let a = &d["attributes"];
    json!([
        d["organization_id"],
        a["name"],
        a["location"],
        a["plugin_slug"],
        a["device_spec"],
        a["properties"],
        a["updated_at"],
        a["deleted_at"]
    ])
}

/// A resource's attributes in the state.
fn attrs(w: &Workdir) -> Json {
    let out = w.tf_expect(&["show", "-json", "-no-color"], 0);
    let doc: Json = serde_json::from_str(&out.stdout).expect("show -json");
    doc["values"]["root_module"]["resources"][0]["values"].clone()
}

/// Two look-alikes of the device `attributes` describes exist before the first apply: one in
/// another organization, one soft-deleted in ours. The apply registers a new device in our
/// organization and leaves both exactly as they were.
fn adopts_neither_look_alike(stack: &Stack, w: &Workdir, attributes: Json) {
    let ours = stack.var("EXPEL_ORGANIZATION_ID");
    let other = add_org(stack, "Globex Corp");
    let elsewhere = register(stack, &other, attributes.clone());
    let deleted = register(stack, &ours, attributes);
    soft_delete(stack, &deleted);
    let before = [fingerprint(stack, &elsewhere), fingerprint(stack, &deleted)];

    w.tf_expect(APPLY, 0);
    let id = s(&attrs(w)["security_device_id"]);
    assert!(
        id != elsewhere && id != deleted,
        "adopted a look-alike: {id}"
    );
    assert_eq!(
        live(stack),
        vec![(elsewhere.clone(), other), (id.clone(), ours.clone())]
    );
    assert_eq!(
        [fingerprint(stack, &elsewhere), fingerprint(stack, &deleted)],
        before,
        "a look-alike was changed"
    );
    assert_eq!(s(&attrs(w)["workbench_organization_id"]), ours);
    assert_eq!(
        s(&attrs(w)["workbench_url"]).trim_end_matches('/'),
        stack.var("EXPEL_WORKBENCH_URL").trim_end_matches('/')
    );
    w.tf_expect(PLAN, 0);
}

/// After the first apply, the provider points at a second organization: the plan replaces
/// the resource and says why; the apply leaves exactly one device, in the new organization.
fn organization_change_replaces(stack: &Stack, w: &mut Workdir) {
    let first = stack.var("EXPEL_ORGANIZATION_ID");
    let second = add_org(stack, "Globex Corp");
    w.tf_expect(APPLY, 0);
    let old = s(&attrs(w)["security_device_id"]);
    w.set_env("EXPEL_ORGANIZATION_ID", Some(&second));
    let out = w.tf_expect(PLAN, 2).all();
    for words in [
        "must be replaced",
        "forces replacement",
        "Workbench organization changed: the resource will be replaced",
        &format!("\"Acme Corp\" ({first})"),
        &format!("\"Globex Corp\" ({second})"),
        &format!("deletes security device {old}"),
    ] {
        assert!(out.contains(words), "plan does not say {words:?}:\n{out}");
    }
    w.tf_expect(APPLY, 0);
    let a = attrs(w);
    let new = s(&a["security_device_id"]);
    assert_ne!(new, old);
    assert_eq!(live(stack), vec![(new, second.clone())]);
    assert_eq!(s(&a["workbench_organization_id"]), second);
    w.tf_expect(PLAN, 0);
}

/// Removes the pins from the local state, as a provider before them wrote it.
fn strip_pins(w: &Workdir) {
    let path = w.dir.path().join("terraform.tfstate");
    let mut st: Json =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state")).expect("JSON");
    let a = st["resources"][0]["instances"][0]["attributes"]
        .as_object_mut()
        .expect("attributes");
    assert!(a.remove("workbench_organization_id").is_some());
    assert!(a.remove("workbench_url").is_some());
    std::fs::write(&path, st.to_string()).expect("write state");
}

// ---- expel_cloudtrail_integration ---------------------------------------------------------

/// The device examples/cloudtrail registers (account and region of the stack's moto).
fn cloudtrail_device() -> Json {
    json!({"name": "Acme - AWS CloudTrail", "location": "us-east-1", "device_type": "CLOUD",
        "plugin_slug": "aws", "device_spec": {
            "role_arn": "arn:aws:iam::123456789012:role/ExpelServiceRole",
            "role_session_name": "ExpelCloudTrail", "region": "us-east-1",
            "sqs_queue_url": "http://127.0.0.1:1/123456789012/ExpelMasterCloudTrailNotify"}})
}

#[test]
fn cloudtrail_adopts_no_device_of_another_organization_and_no_soft_deleted_one() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    adopts_neither_look_alike(&stack, &w, cloudtrail_device());
}

#[test]
fn cloudtrail_organization_change_replaces_the_device_and_the_role_trust() {
    let stack = Stack::local();
    let mut w = Workdir::from_example("cloudtrail", &stack);
    let first = stack.var("EXPEL_ORGANIZATION_ID");
    let second = add_org(&stack, "Globex Corp");
    w.tf_expect(APPLY, 0);
    let old_device = s(&attrs(&w)["security_device_id"]);
    assert_eq!(s(&attrs(&w)["workbench_organization_id"]), first);

    // Another Workbench URL (the same server under another name) is an error, not "gone".
    let url = stack.var("EXPEL_WORKBENCH_URL");
    let elsewhere = url.replace("127.0.0.1", "localhost");
    assert_ne!(elsewhere, url, "the stack's URL names 127.0.0.1");
    w.set_env("EXPEL_WORKBENCH_URL", Some(&elsewhere));
    let refused = w.tf_expect(PLAN, 1);
    for words in [
        "The provider points at another Workbench",
        "localhost",
        "EXPEL_WORKBENCH_URL",
    ] {
        assert!(
            refused.all().contains(words),
            "no {words:?}:\n{}",
            refused.all()
        );
    }
    w.set_env("EXPEL_WORKBENCH_URL", Some(&url));

    // Another organization: the plan replaces the resource and says why.
    w.set_env("EXPEL_ORGANIZATION_ID", Some(&second));
    let plan = w.tf_expect(PLAN, 2);
    let out = plan.all();
    for words in [
        "must be replaced",
        "workbench_organization_id",
        "forces replacement",
        "Workbench organization changed: the resource will be replaced",
        &format!("\"Acme Corp\" ({first})"),
        &format!("\"Globex Corp\" ({second})"),
        &format!("deletes security device {old_device}"),
        "trusting the new organization id as its external id",
    ] {
        assert!(out.contains(words), "plan does not say {words:?}:\n{out}");
    }
    w.tf_expect(APPLY, 0);
    let a = attrs(&w);
    let new_device = s(&a["security_device_id"]);
    assert_ne!(new_device, old_device);
    assert_eq!(
        live(&stack),
        vec![(new_device.clone(), second.clone())],
        "exactly one device, in the new organization"
    );
    assert_eq!(s(&a["workbench_organization_id"]), second);
    assert_eq!(s(&a["external_id"]), second, "the role trusts the new org");
    // Workbench's own check assumes the role with the new organization id as external id.
    let mut status = Json::Null;
    for _ in 0..100 {
        let d = stack
            .workbench_devices()
            .into_iter()
            .find(|d| d["id"] == new_device.as_str())
            .unwrap_or_default();
        if d["attributes"]["is_verifying_status"] == json!(false) {
            status = d["attributes"]["status"].clone();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, json!("healthy"), "{:?}", stack.workbench_devices());
    w.tf_expect(PLAN, 0);

    // A key that no longer sees the pinned organization: an error, never "gone" (which
    // would re-register the device and orphan the old one). Reset serves only the first.
    let (code, _) = stack.admin("POST", "/_admin/reset", None);
    assert_eq!(code, 204);
    w.set_env("EXPEL_ORGANIZATION_ID", Some(&first));
    let out = w.tf_expect(PLAN, 1).all();
    for words in [
        "The device's Workbench organization is out of reach",
        &second,
        "terraform state rm",
    ] {
        assert!(out.contains(words), "no {words:?}:\n{out}");
    }
}

#[test]
fn cloudtrail_device_soft_deleted_in_workbench_is_gone_and_registered_again() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    w.tf_expect(APPLY, 0);
    let old = s(&attrs(&w)["security_device_id"]);
    soft_delete(&stack, &old);
    let before = fingerprint(&stack, &old);
    let plan = w.tf_expect(PLAN, 2);
    for words in ["workbench_device", "deleted outside Terraform"] {
        assert!(plan.all().contains(words), "no {words:?}:\n{}", plan.all());
    }
    w.tf_expect(APPLY, 0);
    let new = s(&attrs(&w)["security_device_id"]);
    assert_ne!(new, old);
    assert_eq!(
        live(&stack),
        vec![(new, stack.var("EXPEL_ORGANIZATION_ID"))]
    );
    assert_eq!(
        fingerprint(&stack, &old),
        before,
        "the soft-deleted one is left alone"
    );
    w.tf_expect(PLAN, 0);
}

#[test]
fn cloudtrail_state_from_before_the_pin_is_filled_by_refresh_without_replacement() {
    let stack = Stack::local();
    let mut w = Workdir::from_example("cloudtrail", &stack);
    let first = stack.var("EXPEL_ORGANIZATION_ID");
    let second = add_org(&stack, "Globex Corp");
    w.tf_expect(APPLY, 0);
    strip_pins(&w);
    w.tf_expect(PLAN, 0);
    // Without a refresh the plan records them in place, still no replacement.
    let out = w
        .tf_expect(
            &["plan", "-refresh=false", "-detailed-exitcode", "-no-color"],
            2,
        )
        .all();
    assert!(
        out.contains("updated in-place") && !out.contains("replace"),
        "{out}"
    );
    w.tf_expect(&["apply", "-refresh-only", "-auto-approve", "-no-color"], 0);
    assert_eq!(s(&attrs(&w)["workbench_organization_id"]), first);
    assert!(!s(&attrs(&w)["workbench_url"]).is_empty());

    // Old state and a provider already pointing elsewhere: the device's own organization is
    // recorded, so the plan is a replacement that deletes it, never a silent second device.
    strip_pins(&w);
    w.set_env("EXPEL_ORGANIZATION_ID", Some(&second));
    let out = w.tf_expect(PLAN, 2).all();
    for words in ["forces replacement", &format!("\"Acme Corp\" ({first})")] {
        assert!(out.contains(words), "plan does not say {words:?}:\n{out}");
    }
}

// ---- expel_wiz_device, expel_sentinelone_device ----------------------------------------------

fn wiz_hcl() -> String {
    format!(
        r#"{TF_HEADER}
resource "expel_wiz_device" "w" {{
  name = "Acme Wiz"
}}
"#
    )
}

fn sentinelone_hcl(stack: &Stack) -> String {
    format!(
        "{TF_HEADER}{}",
        sentinelone_device(stack, "edr", "Acme - S1 EDR")
    )
}

#[test]
fn wiz_adopts_no_device_of_another_organization_and_no_soft_deleted_one() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&wiz_hcl(), &stack);
    let device = json!({"name": "Acme Wiz", "location": "cloud", "device_type": "CLOUD",
        "plugin_slug": "wiz", "device_spec": {"api_endpoint_url": stack.var("WIZ_API_URL"),
            "client_id": "someone-else", "client_secret": "not-ours", "product": "cloud"}});
    adopts_neither_look_alike(&stack, &w, device);
}

#[test]
fn sentinelone_adopts_no_device_of_another_organization_and_no_soft_deleted_one() {
    let stack = Stack::local();
    let console = stack.var("SENTINELONE_CONSOLE_URL");
    let w = Workdir::with_hcl(&sentinelone_hcl(&stack), &stack);
    let device = json!({"name": "Acme - S1 EDR", "location": "cloud",
        "device_type": "ENDPOINT", "plugin_slug": "sentinelone",
        "device_spec": {"console_url": console, "api_token": "not-ours"}});
    adopts_neither_look_alike(&stack, &w, device);
}

#[test]
fn wiz_organization_change_replaces_the_device() {
    let stack = Stack::local();
    let mut w = Workdir::with_hcl(&wiz_hcl(), &stack);
    organization_change_replaces(&stack, &mut w);
}

#[test]
fn sentinelone_organization_change_replaces_the_device() {
    let stack = Stack::local();
    let mut w = Workdir::with_hcl(&sentinelone_hcl(&stack), &stack);
    organization_change_replaces(&stack, &mut w);
}

#[test]
fn sentinelone_device_is_registered_when_its_plugin_publishes_an_empty_schema() {
    let stack = Stack::local();
    // pyexclient's docs example shows `device_spec_json: {}`: nothing to check locally.
    let (code, body) = stack.admin(
        "PUT",
        "/_admin/workbench/plugins/sentinelone/published-schema",
        Some(&json!({"device_spec_json": {}})),
    );
    assert_eq!(code, 200, "{body}");
    let w = Workdir::with_hcl(&sentinelone_hcl(&stack), &stack);
    w.tf_expect(APPLY, 0);
    let id = s(&attrs(&w)["security_device_id"]);
    assert_eq!(live(&stack), vec![(id, stack.var("EXPEL_ORGANIZATION_ID"))]);
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
    assert!(live(&stack).is_empty(), "{:?}", live(&stack));
}
