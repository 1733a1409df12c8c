//! `auto_remediation { deactivate_access_keys = ... }` through the real terraform CLI, in a
//! lived-in world: another team's device and remediation records already in Workbench, a
//! statement of theirs in ExpelAPIPolicy. On: our statement in the policy and our device in
//! the organization's Workbench record, opted in. Either undone behind Terraform's back is
//! drift that apply repairs. Off removes both, ours only. The member role carries the
//! permission alone (it has no device).
use expel_e2e::{sids, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER};
use serde_json::{json, Value as Json};

const KEYS: &str = "DISABLE_AND_MODIFY_AWS_ACCESS_KEYS";
const SETTINGS: &str = "/api/v2/remediation_action_settings";
const OUR_SID: &str = "ExpelDeactivateAccessKeys";

fn cloudtrail(on: bool) -> String {
    format!(
        r#"{TF_HEADER}resource "expel_cloudtrail_integration" "this" {{
  name          = "Acme - AWS CloudTrail"
  force_destroy = true

  auto_remediation {{
    deactivate_access_keys = {on}
  }}
}}
"#
    )
}

fn switch(w: &Workdir, from: bool, to: bool) {
    w.edit_main(|main| {
        main.replace(
            &format!("deactivate_access_keys = {from}"),
            &format!("deactivate_access_keys = {to}"),
        )
    });
}

/// A device of another team in the organization (not one the provider made).
fn foreign_device(stack: &Stack, name: &str) -> String {
    let spec = json!({"role_arn": "arn:aws:iam::210987654321:role/GuardDutyForExpel",
                      "role_session_name": "ExpelGuardDuty", "region": "us-west-2",
                      "sqs_queue_url": "http://127.0.0.1:1/210987654321/other"});
    let (code, body) = stack.workbench(
        "POST",
        "/api/v2/security_devices",
        Some(&json!({"data": {"type": "security_devices",
            "attributes": {"name": name, "location": "us-west-2", "device_type": "CLOUD",
                           "plugin_slug": "aws", "device_spec": spec},
            "relationships": {"organization": {"data": {"type": "organizations",
                "id": stack.var("EXPEL_ORGANIZATION_ID")}}}}})),
    );
    assert_eq!(code, 201, "{body}");
    body["data"]["id"].as_str().expect("device id").to_string()
}

/// A remediation record made by someone else (the UI, another team's automation).
fn foreign_record(stack: &Stack, action: &str, opt_in: bool, device: &str) -> String {
    let (code, body) = stack.workbench(
        "POST",
        SETTINGS,
        Some(&json!({"data": {"type": "remediation_action_settings",
            "attributes": {"action_type": action, "automate_opt_in": opt_in,
                           "automate_opt_in_agreement_version": "V1",
                           "automate_list_type": "ALLOW"},
            "relationships": {
                "organization": {"data": {"type": "organizations",
                    "id": stack.var("EXPEL_ORGANIZATION_ID")}},
                "security_devices": {"data": [{"type": "security_devices", "id": device}]}}}})),
    );
    assert_eq!(code, 201, "{body}");
    body["data"]["id"].as_str().expect("record id").to_string()
}

/// Every remediation record the emulator holds (`id`, `attributes`, `security_device_ids`).
fn records(stack: &Stack) -> Vec<Json> {
    stack.sandbox_state()["workbench"]["remediation_action_settings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn record<'a>(all: &'a [Json], id: &str) -> &'a Json {
    all.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no record {id}: {all:?}"))
}

fn members(r: &Json) -> Vec<String> {
    r["security_device_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The integration applied with the remediation on (the next plan empty): the working
/// directory, our device id and the remediation records Workbench then holds.
fn applied_on(stack: &Stack) -> (Workdir, String, Vec<Json>) {
    let w = Workdir::with_hcl(&cloudtrail(true), stack);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let ours = our_device(&w);
    (w, ours, records(stack))
}

fn our_device(w: &Workdir) -> String {
    w.state_of("expel_cloudtrail_integration")["id"]
        .as_str()
        .expect("device id in state")
        .to_string()
}

fn api_policy(stack: &Stack, extra: &[&str]) -> Json {
    stack.policy_show("api", extra)
}

fn theirs() -> Json {
    json!({"Sid": "GuardDutyRemediation", "Effect": "Allow",
           "Action": "ec2:ModifyInstanceAttribute", "Resource": "*"})
}

#[test]
fn integration_joins_the_organizations_record_repairs_both_halves_and_leaves_only_ours() {
    let stack = Stack::local();
    // The lived-in world: another team's device, already opted in to this remediation (a
    // record they made) and to another one.
    let other = foreign_device(&stack, "GuardDuty (security team)");
    let keys = foreign_record(&stack, KEYS, true, &other);
    let hosts = foreign_record(&stack, "CONTAIN_HOSTS", true, &other);
    let before_hosts = record(&records(&stack), &hosts).clone();

    let (w, ours, all) = applied_on(&stack);
    assert_eq!(all.len(), 2, "joined, not made: {all:?}");
    assert_eq!(
        members(record(&all, &keys)),
        vec![other.clone(), ours.clone()]
    );
    assert_eq!(
        record(&all, &keys)["attributes"]["automate_list_type"],
        "ALLOW"
    );
    let policy = api_policy(&stack, &[]);
    assert!(sids(&policy).contains(&OUR_SID.to_string()), "{policy}");

    // Someone adds a statement of theirs to ExpelAPIPolicy: not drift, and kept by repairs.
    let add = format!("add={}", theirs());
    stack.oob_with("policy-foreign", &["doc=api", &add]);
    w.tf_expect(PLAN, 0);

    // Drift 1: our statement removed from the policy.
    let drop = format!("drop={OUR_SID}");
    stack.oob_with("policy-foreign", &["doc=api", &drop]);
    w.drift_repaired("statement removed", &["api_policy", OUR_SID, "missing"]);
    let policy = api_policy(&stack, &[]);
    assert!(sids(&policy).contains(&OUR_SID.to_string()), "{policy}");
    assert!(
        sids(&policy).contains(&"GuardDutyRemediation".to_string()),
        "{policy}"
    );

    // Drift 2: the organization opted out in Workbench.
    let (code, body) = stack.workbench(
        "PATCH",
        &format!("{SETTINGS}/{keys}"),
        Some(
            &json!({"data": {"type": "remediation_action_settings", "id": keys,
                              "attributes": {"automate_opt_in": false}}}),
        ),
    );
    assert_eq!(code, 200, "{body}");
    w.drift_repaired(
        "opted out",
        &["auto_remediation", "opted out", "automate_opt_in"],
    );
    assert_eq!(
        record(&records(&stack), &keys)["attributes"]["automate_opt_in"],
        true
    );

    // Drift 3: our device taken out of the record.
    let (code, body) = stack.workbench(
        "DELETE",
        &format!("{SETTINGS}/{keys}/relationships/security_devices"),
        Some(&json!({"data": [{"type": "security_devices", "id": ours}]})),
    );
    assert_eq!(code, 200, "{body}");
    w.drift_repaired("device taken out", &["auto_remediation", "not among"]);
    assert_eq!(
        members(record(&records(&stack), &keys)),
        vec![other.clone(), ours.clone()]
    );

    // Off: our statement and our device go; theirs stay, and so does their record.
    switch(&w, true, false);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let policy = api_policy(&stack, &[]);
    assert!(!sids(&policy).contains(&OUR_SID.to_string()), "{policy}");
    assert!(
        sids(&policy).contains(&"GuardDutyRemediation".to_string()),
        "{policy}"
    );
    let all = records(&stack);
    assert_eq!(members(record(&all, &keys)), vec![other.clone()]);
    assert_eq!(
        record(&all, &keys)["attributes"]["automate_opt_in"],
        true,
        "not opted out"
    );
    assert_eq!(
        record(&all, &hosts),
        &before_hosts,
        "another action's record untouched"
    );

    // Off, and our statement put back by hand: drift, removed by apply.
    let put = format!(
        "add={}",
        json!({"Sid": OUR_SID, "Effect": "Allow",
               "Action": ["iam:ListAccessKeys", "iam:UpdateAccessKey"], "Resource": "*"})
    );
    stack.oob_with("policy-foreign", &["doc=api", &put]);
    w.drift_repaired("statement while off", &["present, though not wanted"]);
    assert!(!sids(&api_policy(&stack, &[])).contains(&OUR_SID.to_string()));

    w.tf_expect(DESTROY, 0);
    let all = records(&stack);
    assert_eq!(members(record(&all, &keys)), vec![other]);
    assert_eq!(record(&all, &hosts), &before_hosts);
}

#[test]
fn a_record_the_integration_made_is_deleted_only_while_no_other_device_is_in_it() {
    let stack = Stack::local();
    let other = foreign_device(&stack, "GuardDuty (security team)");
    let (w, ours, all) = applied_on(&stack);
    assert_eq!(all.len(), 1, "{all:?}");
    let made = all[0]["id"].as_str().expect("id").to_string();
    assert_eq!(members(&all[0]), vec![ours.clone()]);
    let attrs = &all[0]["attributes"];
    assert_eq!(
        (
            &attrs["action_type"],
            &attrs["automate_opt_in"],
            &attrs["automate_opt_in_agreement_version"]
        ),
        (&json!(KEYS), &json!(true), &json!("V1"))
    );

    // Off: the record we made, now empty, is deleted.
    switch(&w, true, false);
    w.tf_expect(APPLY, 0);
    assert!(records(&stack).is_empty(), "{:?}", records(&stack));

    // On again: a new record; then another team joins it.
    switch(&w, false, true);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let all = records(&stack);
    assert_eq!(all.len(), 1, "{all:?}");
    let again = all[0]["id"].as_str().expect("id").to_string();
    assert_ne!(again, made);
    let (code, body) = stack.workbench(
        "POST",
        &format!("{SETTINGS}/{again}/relationships/security_devices"),
        Some(&json!({"data": [{"type": "security_devices", "id": other}]})),
    );
    assert_eq!(code, 200, "{body}");
    w.tf_expect(PLAN, 0);

    // Destroy: ours leaves; the record stays for the other device, still opted in.
    w.tf_expect(DESTROY, 0);
    let all = records(&stack);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(members(&all[0]), vec![other]);
    assert_eq!(all[0]["attributes"]["automate_opt_in"], true);
}

#[test]
fn member_role_carries_only_the_permission_and_repairs_it_both_ways() {
    let stack = Stack::local();
    let hcl = |on: bool| {
        format!(
            r#"{TF_HEADER}resource "expel_aws_member_role" "this" {{
  policy_name = "ExpelMemberPolicy"

  auto_remediation {{
    deactivate_access_keys = {on}
  }}
}}
"#
        )
    };
    let policy = ["policy=ExpelMemberPolicy"];
    let w = Workdir::with_hcl(&hcl(true), &stack);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(
        sids(&api_policy(&stack, &policy)),
        vec!["VisualEditor0", OUR_SID]
    );
    assert!(
        records(&stack).is_empty(),
        "no Workbench record for a member role"
    );

    let add = format!("add={}", theirs());
    stack.oob_with("policy-foreign", &["doc=api", policy[0], &add]);
    let drop = format!("drop={OUR_SID}");
    stack.oob_with("policy-foreign", &["doc=api", policy[0], &drop]);
    w.drift_repaired("member statement removed", &["api_policy", OUR_SID]);
    assert_eq!(
        sids(&api_policy(&stack, &policy)),
        vec!["VisualEditor0", OUR_SID, "GuardDutyRemediation"]
    );

    switch(&w, true, false);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(
        sids(&api_policy(&stack, &policy)),
        vec!["VisualEditor0", "GuardDutyRemediation"]
    );
    w.tf_expect(DESTROY, 0);
}
