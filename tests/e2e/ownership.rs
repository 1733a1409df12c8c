//! Ownership names the resource instance. `expel_cloudtrail_integration` and
//! `expel_aws_member_role` both default to ExpelServiceRole / ExpelAPIPolicy: in one account
//! the second is refused, naming the owner; destroying it deletes nothing of the first; with
//! distinct names both converge. State and objects from releases before per-instance owners
//! are adopted once and re-marked.
use expel_e2e::{Stack, Workdir, TF_HEADER};
use serde_json::Value as Json;

const PLAN: &[&str] = &["plan", "-detailed-exitcode", "-no-color"];
const APPLY: &[&str] = &["apply", "-auto-approve", "-no-color"];
const DESTROY: &[&str] = &["destroy", "-auto-approve", "-no-color"];

const INTEGRATION: &str = r#"
resource "expel_cloudtrail_integration" "this" {
  name = "Acme - AWS CloudTrail"
}
"#;

fn tags(stack: &Stack) -> Json {
    serde_json::from_str(&stack.oob("tags")).expect("tags JSON")
}

/// Terraform wraps long diagnostics: compare with single spaces.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

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
