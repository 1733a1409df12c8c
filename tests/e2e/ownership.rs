//! Ownership names the resource instance. `expel_cloudtrail_integration` and
//! `expel_aws_member_role` both default to ExpelServiceRole / ExpelAPIPolicy: in one account
//! the second is refused, naming the owner; destroying it deletes nothing of the first; with
//! distinct names both converge. State and objects from releases before per-instance owners
//! are adopted once and re-marked.
use expel_e2e::{flat, sentinelone_device, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER};
use serde_json::Value as Json;

const INTEGRATION: &str = r#"
resource "expel_cloudtrail_integration" "this" {
  name = "Acme - AWS CloudTrail"
}
"#;

/// Rewrites the state as a release before per-instance owners wrote it: schema version 0,
/// no `owner`.
fn as_written_before_owners(w: &Workdir) {
    let path = w.dir.path().join("terraform.tfstate");
    let mut state: Json =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state")).expect("JSON");
    for r in state["resources"].as_array_mut().expect("resources") {
        for i in r["instances"].as_array_mut().expect("instances") {
            i["schema_version"] = Json::from(0);
            i["attributes"]
                .as_object_mut()
                .expect("attributes")
                .remove("owner");
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&state).expect("JSON")).expect("write");
}

fn tags(stack: &Stack) -> Json {
    serde_json::from_str(&stack.oob("tags")).expect("tags JSON")
}

/// Terraform wraps long diagnostics: compare with single spaces.
#[test]
fn a_member_role_beside_the_integration_is_refused_naming_the_owner_and_destroys_nothing_of_it() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&format!("{TF_HEADER}{INTEGRATION}"), &stack);
    w.tf_expect(APPLY, 0);
    let owner = w.state_of("expel_cloudtrail_integration")["owner"]
        .as_str()
        .expect("owner in the state")
        .to_string();
    assert!(
        owner.starts_with("expel_cloudtrail_integration/"),
        "{owner}"
    );
    let before = tags(&stack);
    for piece in ["key", "bucket", "queue", "trail", "policy", "role"] {
        assert_eq!(
            before[piece]["expel:owner"],
            owner.as_str(),
            "{piece}: {before}"
        );
    }

    // The same account, the guide's default names: refused, naming the other owner.
    let member = r#"
resource "expel_aws_member_role" "this" {}
"#;
    w.write("main.tf", &format!("{TF_HEADER}{INTEGRATION}{member}"));
    let out = w.tf_expect(APPLY, 1);
    let text = flat(&out.all());
    assert!(
        text.contains("belongs to another resource instance")
            && text.contains(&format!("expel:owner={owner}"))
            && text.contains("expel_aws_member_role/"),
        "{text}"
    );
    assert!(
        text.contains("needs no expel_aws_member_role"),
        "the refusal says what to do: {text}"
    );
    // Nothing of the integration changed hands, and its plan stays empty.
    assert_eq!(tags(&stack)["role"]["expel:owner"], owner.as_str());
    assert_eq!(tags(&stack)["policy"]["expel:owner"], owner.as_str());

    // Distinct names: the refused (tainted) member role is replaced; its destroy leaves the
    // integration's role and policy in place, saying whose they are.
    let member = r#"
resource "expel_aws_member_role" "this" {
  role_name   = "ExpelMemberRole"
  policy_name = "ExpelMemberPolicy"
}
"#;
    w.write("main.tf", &format!("{TF_HEADER}{INTEGRATION}{member}"));
    let out = w.tf_expect(APPLY, 0);
    let text = flat(&out.all());
    assert!(
        text.contains("Left in place: not made by this resource")
            && text.contains(&format!("belongs to another resource instance ({owner})")),
        "{text}"
    );
    w.tf_expect(PLAN, 0);
    let listing = stack.aws_listing();
    let roles = expel_e2e::names(&listing["roles"]);
    for r in ["ExpelServiceRole", "ExpelMemberRole"] {
        assert!(roles.contains(&r.to_string()), "{r}: {listing}");
    }
    let member_owner = w.state_of("expel_aws_member_role")["owner"]
        .as_str()
        .expect("member owner")
        .to_string();
    assert_ne!(member_owner, owner);

    // Destroying the member role alone leaves the integration whole.
    w.write("main.tf", &format!("{TF_HEADER}{INTEGRATION}"));
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let roles = expel_e2e::names(&stack.aws_listing()["roles"]);
    assert!(roles.contains(&"ExpelServiceRole".to_string()), "{roles:?}");
    assert!(!roles.contains(&"ExpelMemberRole".to_string()), "{roles:?}");
    w.tf_expect(DESTROY, 0);

    // The kept key and bucket (logs are evidence) are no longer the destroyed instance's: a
    // later integration with another name adopts them.
    let kept = tags(&stack);
    for piece in ["key", "bucket"] {
        assert_eq!(
            kept[piece]["expel:managed-by"], "terraform-provider-expel",
            "{kept}"
        );
        assert!(kept[piece].get("expel:owner").is_none(), "{piece}: {kept}");
    }
    let other = INTEGRATION.replace("Acme - AWS CloudTrail", "Acme - AWS CloudTrail (new)");
    w.write("main.tf", &format!("{TF_HEADER}{other}"));
    w.tf_expect(APPLY, 0);
    let new_owner = w.state_of("expel_cloudtrail_integration")["owner"]
        .as_str()
        .expect("owner")
        .to_string();
    assert_ne!(new_owner, owner);
    assert_eq!(tags(&stack)["key"]["expel:owner"], new_owner.as_str());
    w.tf_expect(DESTROY, 0);
}

#[test]
fn objects_and_state_from_before_owners_are_adopted_once_and_re_marked() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    w.tf_expect(APPLY, 0);
    let owner = w.state_of("expel_cloudtrail_integration")["owner"]
        .as_str()
        .expect("owner")
        .to_string();

    // As an earlier release left them: objects with the marker only, state version 0
    // without `owner`.
    stack.oob("owner-strip");
    as_written_before_owners(&w);
    for piece in ["key", "bucket", "queue", "trail", "policy", "role"] {
        assert!(tags(&stack)[piece].get("expel:owner").is_none());
    }

    // The plan records the owner; the apply puts it on every piece; then nothing to do.
    let plan = w.tf_expect(PLAN, 2);
    assert!(
        plan.all().contains("+ owner") && plan.all().contains(&owner),
        "{}",
        plan.all()
    );
    w.tf_expect(APPLY, 0);
    let after = tags(&stack);
    for piece in ["key", "bucket", "queue", "trail", "policy", "role"] {
        assert_eq!(
            after[piece]["expel:owner"],
            owner.as_str(),
            "{piece}: {after}"
        );
        assert_eq!(after[piece]["team"], "platform", "{piece}: {after}");
    }
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
}

/// The ExternalId of our trust statement, as the role holds it.
fn trusted_external_id(stack: &Stack, role: &str) -> String {
    let doc: Json = serde_json::from_str(
        &stack.oob_with("policy-show", &["doc=trust", &format!("role={role}")]),
    )
    .expect("trust JSON");
    doc["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| s.pointer("/Condition/StringEquals/sts:ExternalId"))
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_member_roles_default_external_id_follows_the_workbench_organization() {
    let stack = Stack::local();
    let first = stack.var("EXPEL_ORGANIZATION_ID");
    let hcl = format!(
        r#"{TF_HEADER}
resource "expel_aws_member_role" "default" {{}}
resource "expel_aws_member_role" "fixed" {{
  role_name   = "ExpelFixedRole"
  policy_name = "ExpelFixedPolicy"
  external_id = "{first}"
}}
"#
    );
    let mut w = Workdir::with_hcl(&hcl, &stack);
    w.tf_expect(APPLY, 0);
    assert_eq!(trusted_external_id(&stack, "ExpelServiceRole"), first);

    // The provider now points at another organization: the default follows it, in place and
    // said; a configured external id stays.
    let second = "8f14e45f-ceea-467f-a0e6-1b3c2f6e9d10";
    w.set_env("EXPEL_ORGANIZATION_ID", Some(second));
    let plan = w.tf_expect(PLAN, 2);
    let text = flat(&plan.all());
    assert!(
        text.contains("The role's external id follows the Workbench organization")
            && text.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{text}"
    );
    w.tf_expect(APPLY, 0);
    assert_eq!(trusted_external_id(&stack, "ExpelServiceRole"), second);
    assert_eq!(trusted_external_id(&stack, "ExpelFixedRole"), first);
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
}

/// The descriptions of the SentinelOne emulator's objects of `kind` (custom_roles, service_users).
fn descriptions(stack: &Stack, kind: &str) -> Vec<String> {
    let st = stack.sandbox_state();
    let all: Vec<&Json> = match &st["sentinelone"][kind] {
        Json::Object(m) => m.values().collect(),
        Json::Array(a) => a.iter().collect(),
        _ => Vec::new(),
    };
    all.iter()
        .filter_map(|o| o["description"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_second_sentinelone_device_in_one_scope_is_refused_and_leaves_the_first_whole() {
    let stack = Stack::local();
    let first = format!(
        "{TF_HEADER}{}",
        sentinelone_device(&stack, "first", "Acme - S1 EDR")
    );
    let w = Workdir::with_hcl(&first, &stack);
    w.tf_expect(APPLY, 0);
    let owner = w.state_of("expel_sentinelone_device")["owner"]
        .as_str()
        .expect("owner")
        .to_string();

    // A second device in the same account wants "Viewer - Expel" and "Expel API" too: it is
    // refused, naming the first's owner.
    let second = sentinelone_device(&stack, "second", "Acme - S1 EDR (lab)");
    w.write("main.tf", &format!("{first}{second}"));
    let out = w.tf_expect(APPLY, 1);
    let text = flat(&out.all());
    assert!(
        text.contains("belongs to another resource instance")
            && text.contains(&format!("expel:owner={owner}"))
            && text.contains("this instance is expel:owner=expel_sentinelone_device/"),
        "{text}"
    );
    let roles = descriptions(&stack, "custom_roles");
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert!(
        roles[0].contains(&format!(
            "managed-by: terraform-provider-expel; owner: {owner}"
        )),
        "{roles:?}"
    );

    // The refused create recorded nothing of its own.
    let refused = w
        .tf_expect(
            &[
                "state",
                "show",
                "-no-color",
                "expel_sentinelone_device.second",
            ],
            0,
        )
        .stdout;
    assert!(!refused.contains("role_id "), "{refused}");

    // (Other names would not make two devices in one scope work: the shared console user
    // holds one role per scope. The scope belongs to one device.) Removing the refused one
    // (refresh finds nothing of it) changes nothing of the first: its plan stays empty.
    w.write("main.tf", &first);
    let out = w.tf_expect(APPLY, 0);
    let text = flat(&out.all());
    assert!(text.contains("0 added, 0 changed, 0 destroyed"), "{text}");
    w.tf_expect(PLAN, 0);
    let roles = descriptions(&stack, "custom_roles");
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert!(
        roles[0].contains(&owner),
        "the role is the remaining device's: {roles:?}"
    );
    w.tf_expect(DESTROY, 0);
    assert!(descriptions(&stack, "custom_roles").is_empty());
    assert!(descriptions(&stack, "service_users").is_empty());
}

#[test]
fn sentinelone_and_wiz_objects_from_before_owners_are_re_marked_after_the_upgrade() {
    let stack = Stack::local();
    let hcl = format!(
        "{TF_HEADER}{}\nresource \"expel_wiz_device\" \"w\" {{\n  name = \"Acme Wiz\"\n}}\n",
        sentinelone_device(&stack, "edr", "Acme - S1 EDR")
    );
    let w = Workdir::with_hcl(&hcl, &stack);
    w.tf_expect(APPLY, 0);
    let s1 = w.state_of("expel_sentinelone_device");
    let wiz = w.state_of("expel_wiz_device");
    let (s1_owner, wiz_owner) = (
        s1["owner"].as_str().expect("S1 owner").to_string(),
        wiz["owner"].as_str().expect("Wiz owner").to_string(),
    );

    // As an earlier release left them: the service user and the rule carry the marker only
    // (the rule the old marker text), and the state is version 0 without `owner`.
    let auth = format!("ApiToken {}", stack.var("SENTINELONE_API_TOKEN"));
    let su = s1["service_user_id"].as_str().expect("service user id");
    let (code, body) = expel_e2e::http(
        &stack.var("SENTINELONE_CONSOLE_URL"),
        "PUT",
        &format!("/web/api/v2.1/service-users/{su}"),
        Some(
            &serde_json::json!({"data": {"description": "API Service user for Expel integration (managed-by: terraform-provider-expel)"}}),
        ),
        &[("Authorization", &auth)],
    );
    assert_eq!(code, 200, "{body}");
    let rule = wiz["automation_rule_id"].as_str().expect("rule id");
    let answer = stack.wiz(
        "mutation($input: UpdateAutomationRuleInput!) { updateAutomationRule(input: $input) { automationRule { id } } }",
        serde_json::json!({"input": {"id": rule, "patch": {"description": "Managed by terraform-provider-expel (expel_wiz_device)."}}}),
    );
    assert!(answer.get("errors").is_none(), "{answer}");
    as_written_before_owners(&w);

    let plan = w.tf_expect(PLAN, 2);
    let text = plan.all();
    assert!(
        text.contains(&s1_owner) && text.contains(&wiz_owner),
        "the plan records both owners again:\n{text}"
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let st = stack.sandbox_state();
    let su_desc = descriptions(&stack, "service_users");
    assert!(
        su_desc
            .iter()
            .any(|d| d.contains(&format!("owner: {s1_owner}"))),
        "{su_desc:?}"
    );
    let rules = serde_json::to_string(&st["wiz"]).expect("JSON");
    assert!(
        rules.contains(&format!("owner: {wiz_owner}")),
        "the rule's description names its owner: {rules}"
    );
    w.tf_expect(DESTROY, 0);
}
