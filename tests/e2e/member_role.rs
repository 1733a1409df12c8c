//! expel_aws_member_role across the accounts of an AWS Organization (examples/org): provider
//! aliases that assume OrganizationAccountAccessRole in each member account, the real
//! terraform CLI, moto (one organization, two member accounts) and the Workbench emulator.
use expel_e2e::{names, tf_config, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER, TF_REQUIRED};
use serde_json::Value;

/// An organization with CloudTrail trusted access and two member accounts; their ids.
fn organization(stack: &Stack) -> Vec<String> {
    let ids: Vec<String> = stack
        .oob("org-setup")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 2, "org-setup prints two account ids: {ids:?}");
    ids
}

fn org_workdir(stack: &Stack, ids: &[String]) -> Workdir {
    let w = Workdir::from_example("org", stack);
    w.write(
        "terraform.tfvars",
        &format!("member_account_ids = [\"{}\", \"{}\"]\n", ids[0], ids[1]),
    );
    // Local modules are linked by `terraform get` (the provider comes from dev_overrides).
    w.tf_expect(&["get", "-no-color"], 0);
    w
}

fn in_account(id: &str) -> String {
    format!("account={id}")
}

#[test]
fn org_example_applies_detects_member_drift_repairs_and_destroys() {
    let stack = Stack::local();
    let ids = organization(&stack);
    let w = org_workdir(&stack, &ids);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);

    // Each member account has the role (same name everywhere) with the read-only policy.
    let out = w.outputs();
    let arns = names(&out["member_role_arns"]["value"]);
    assert_eq!(
        arns,
        vec![
            format!("arn:aws:iam::{}:role/ExpelServiceRole", ids[0]),
            format!("arn:aws:iam::{}:role/ExpelServiceRole", ids[1]),
        ]
    );
    for id in &ids {
        let l = stack.aws_listing_in(id);
        assert!(
            names(&l["roles"]).contains(&"ExpelServiceRole".to_string()),
            "{id}: {l}"
        );
        assert_eq!(names(&l["policies"]), vec!["ExpelAPIPolicy"], "{id}: {l}");
        // Nothing of the trail's own objects in a member account.
        assert!(names(&l["trails"]).is_empty(), "{id}: {l}");
        assert!(names(&l["buckets"]).is_empty(), "{id}: {l}");
    }
    let mgmt = stack.aws_listing();
    assert_eq!(names(&mgmt["trails"]), vec!["GlobalCloudTrail"], "{mgmt}");
    // The management account's trail logs the whole organization, into AWSLogs/<org id>/.
    let trail: Value = serde_json::from_str(&stack.oob("org-trail")).expect("org-trail JSON");
    assert_eq!(trail["is_organization_trail"], Value::Bool(true), "{trail}");
    let org_id = trail["org_id"].as_str().expect("organization id");
    assert!(
        trail["bucket_policy"]
            .to_string()
            .contains(&format!("AWSLogs/{org_id}/")),
        "{trail}"
    );

    // Drift in the member accounts: the trust changed in one, the policy detached in the other.
    stack.oob_with("role-trust-change", &[&in_account(&ids[0])]);
    stack.oob_with("policy-detach", &[&in_account(&ids[1])]);
    let plan = w.tf_expect(PLAN, 2);
    let text = plan.all();
    for words in [
        "module.member_a.expel_aws_member_role.this",
        "module.member_b.expel_aws_member_role.this",
        "trust policy",
        "ExpelAPIPolicy is detached from the role",
        &format!("account {}", ids[0]),
        &format!("account {}", ids[1]),
    ] {
        assert!(
            text.contains(words),
            "plan does not name {words:?}:\n{text}"
        );
    }
    assert!(
        !text.contains("expel_cloudtrail_integration.org will be updated"),
        "the management account did not drift:\n{text}"
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);

    // The policy document edited, then the role deleted.
    stack.oob_with("policy-edit", &[&in_account(&ids[0])]);
    w.drift_repaired("policy edited", &["ExpelAPIPolicy statement"]);
    stack.oob_with("role-delete", &[&in_account(&ids[1])]);
    w.drift_repaired("role deleted", &["deleted outside Terraform"]);

    // Tags changed in the configuration are applied to the role (the ownership tag stays).
    w.edit_main(|main| {
        main.replacen(
            "tags      = { team = \"platform\" }",
            "tags      = { owner = \"security\" }",
            1,
        )
    });
    w.tf_expect(PLAN, 2);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let tags = &stack.aws_listing_in(&ids[0])["role_tags"]["ExpelServiceRole"];
    assert_eq!(tags["owner"], "security", "{tags}");
    assert!(
        tags.get("team").is_none(),
        "a tag removed from the configuration: {tags}"
    );
    assert_eq!(
        tags["expel:managed-by"], "terraform-provider-expel",
        "{tags}"
    );

    // The state pins each member's account: aliases swapped to the other account are an
    // error naming both, never "gone" (nothing is re-created in the wrong account).
    w.write(
        "terraform.tfvars",
        &format!("member_account_ids = [\"{}\", \"{}\"]\n", ids[1], ids[0]),
    );
    let plan = w.tf_expect(PLAN, 1);
    let text = plan.all();
    assert!(
        text.contains("The provider points at another AWS account")
            && text.contains(&ids[0])
            && text.contains(&ids[1]),
        "{text}"
    );
    w.write(
        "terraform.tfvars",
        &format!("member_account_ids = [\"{}\", \"{}\"]\n", ids[0], ids[1]),
    );
    w.tf_expect(PLAN, 0);

    // Destroy leaves no role or policy of ours in any member account.
    w.tf_expect(DESTROY, 0);
    for id in &ids {
        let l = stack.aws_listing_in(id);
        assert!(
            !names(&l["roles"]).contains(&"ExpelServiceRole".to_string()),
            "{id}: {l}"
        );
        assert!(names(&l["policies"]).is_empty(), "{id}: {l}");
        // The access role the organization made is not ours and stays.
        assert!(
            names(&l["roles"]).contains(&"OrganizationAccountAccessRole".to_string()),
            "{id}: {l}"
        );
    }
}

#[test]
fn organization_trail_needs_cloudtrail_trusted_access() {
    let stack = Stack::local();
    organization(&stack);
    stack.oob("org-trust-off");
    let w = Workdir::with_hcl(
        &tf_config(
            r#"
resource "expel_cloudtrail_integration" "org" {
  name               = "Org trail"
  organization_trail = true
}
"#,
        ),
        &stack,
    );
    let out = w.tf_expect(APPLY, 1);
    let text = out.all();
    for words in [
        "CloudTrail trusted access is not enabled",
        "organization_trail",
        "enable-aws-service-access",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{text}");
    }
    // Nothing was made.
    let l = stack.aws_listing();
    assert!(names(&l["trails"]).is_empty(), "{l}");
    assert!(names(&l["policies"]).is_empty(), "{l}");

    // Enabled: the organization trail is made. Disabled again later: refresh warns, and an
    // update stops before touching anything, naming the attribute.
    stack.oob("org-trust-on");
    w.tf_expect(APPLY, 0);
    stack.oob("org-trust-off");
    let plan = w.tf_expect(PLAN, 0);
    assert!(
        plan.all()
            .contains("CloudTrail trusted access is not enabled"),
        "{}",
        plan.all()
    );
    w.edit_main(|main| main.replace("\"Org trail\"", "\"Org trail 2\""));
    let out = w.tf_expect(APPLY, 1);
    assert!(out.all().contains("organization_trail"), "{}", out.all());
    let d = stack.workbench_devices();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0]["attributes"]["name"], "Org trail",
        "the device was not touched"
    );
    stack.oob("org-trust-on");
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
}

#[test]
fn malformed_assume_role_arn_in_an_alias_names_the_attribute() {
    let stack = Stack::up();
    let w = Workdir::with_hcl(
        &[
            TF_REQUIRED,
            r#"
provider "expel" {
  alias = "member"
  aws {
    assume_role {
      role_arn = "arn:aws:iam::12345:OrganizationAccountAccessRole"
    }
  }
}
resource "expel_aws_member_role" "this" {
  provider = expel.member
}
"#,
        ]
        .concat(),
        &stack,
    );
    let out = w.tf_expect(PLAN, 1);
    let text = out.all();
    assert!(text.contains("Malformed role ARN"), "{text}");
    assert!(text.contains("role_arn"), "{text}");
}

#[test]
fn malformed_principal_names_the_attribute() {
    let stack = Stack::up();
    let w = Workdir::with_hcl(
        &tf_config(
            r#"
resource "expel_aws_member_role" "this" {
  expel_principals = ["arn:aws:s3:::not-a-principal"]
}
"#,
        ),
        &stack,
    );
    let out = w.tf_expect(PLAN, 1);
    let text = out.all();
    assert!(text.contains("Malformed principal"), "{text}");
    assert!(text.contains("expel_principals"), "{text}");
}

#[test]
fn an_unmarked_role_in_a_member_account_is_not_adopted() {
    let stack = Stack::local();
    let ids = organization(&stack);
    stack.oob_with("role-foreign", &[&in_account(&ids[0])]);
    let w = org_workdir(&stack, &ids);
    let out = w.tf_expect(APPLY, 1);
    // Terraform wraps long diagnostics.
    let text = out.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("does not carry the tag expel:managed-by"),
        "{text}"
    );
    // Destroy removes what we made and leaves the foreign role, saying so.
    let out = w.tf_expect(DESTROY, 0);
    assert!(
        out.all()
            .contains("Left in place: not made by this resource"),
        "{}",
        out.all()
    );
    let l = stack.aws_listing_in(&ids[0]);
    assert!(
        names(&l["roles"]).contains(&"ExpelServiceRole".to_string()),
        "{l}"
    );
    for id in &ids {
        assert!(
            names(&stack.aws_listing_in(id)["policies"]).is_empty(),
            "{id}"
        );
    }
}

#[test]
fn member_role_imports_by_name_or_arn_and_renames_in_place() {
    let stack = Stack::local();
    let hcl = |role: &str, extra: &str| {
        format!(
            r#"{TF_HEADER}resource "expel_aws_member_role" "this" {{
  role_name = "{role}"
  tags      = {{ team = "sec" }}
{extra}
}}
"#
        )
    };
    let w = Workdir::with_hcl(&hcl("ExpelServiceRole", ""), &stack);

    // A malformed timeout is named before anything is made.
    w.write(
        "main.tf",
        &hcl(
            "ExpelServiceRole",
            "  timeouts {\n    create = \"ten minutes\"\n  }",
        ),
    );
    let bad = w.tf_expect(PLAN, 1);
    assert!(
        bad.all().contains("Malformed duration") && bad.all().contains("timeouts"),
        "{}",
        bad.all()
    );
    w.write(
        "main.tf",
        &hcl("ExpelServiceRole", "  timeouts {\n    create = \"5m\"\n  }"),
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let arn = w.tf_expect(
        &["state", "show", "-no-color", "expel_aws_member_role.this"],
        0,
    );
    assert!(arn.stdout.contains("ExpelAPIPolicy"), "{}", arn.stdout);

    // Forgotten by Terraform, then imported by name and by ARN: the plan after is empty.
    // (Import cannot see the configuration: a `timeouts` block would show as a one-time
    // update that changes nothing, as with every Terraform provider.)
    w.write("main.tf", &hcl("ExpelServiceRole", ""));
    w.tf_expect(PLAN, 2);
    w.tf_expect(APPLY, 0);
    for id in [
        "ExpelServiceRole",
        "arn:aws:iam::123456789012:role/ExpelServiceRole",
    ] {
        w.tf_expect(&["state", "rm", "expel_aws_member_role.this"], 0);
        w.tf_expect(
            &["import", "-no-color", "expel_aws_member_role.this", id],
            0,
        );
        w.tf_expect(PLAN, 0);
    }
    // A role in another account, or one not made by this provider, is refused with a reason.
    w.tf_expect(&["state", "rm", "expel_aws_member_role.this"], 0);
    let other = w.tf_expect(
        &[
            "import",
            "-no-color",
            "expel_aws_member_role.this",
            "arn:aws:iam::210987654321:role/ExpelServiceRole",
        ],
        1,
    );
    assert!(
        other.all().contains("another AWS account"),
        "{}",
        other.all()
    );
    stack.oob_with("role-foreign", &["role=SomeoneElsesRole"]);
    let foreign = w.tf_expect(
        &[
            "import",
            "-no-color",
            "expel_aws_member_role.this",
            "SomeoneElsesRole",
        ],
        1,
    );
    assert!(
        foreign.all().contains("not made by this provider"),
        "{}",
        foreign.all()
    );
    w.tf_expect(
        &[
            "import",
            "-no-color",
            "expel_aws_member_role.this",
            "ExpelServiceRole",
        ],
        0,
    );

    // Renaming the role is an in-place update: the new role exists, the old one is gone.
    w.write("main.tf", &hcl("ExpelServiceRoleV2", ""));
    let plan = w.tf_expect(PLAN, 2);
    assert!(plan.all().contains("update in-place"), "{}", plan.all());
    assert!(!plan.all().contains("must be replaced"), "{}", plan.all());
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let roles = names(&stack.aws_listing()["roles"]);
    assert!(
        roles.contains(&"ExpelServiceRoleV2".to_string()),
        "{roles:?}"
    );
    assert!(
        !roles.contains(&"ExpelServiceRole".to_string()),
        "{roles:?}"
    );
    assert!(roles.contains(&"SomeoneElsesRole".to_string()), "{roles:?}");
    w.tf_expect(&["destroy", "-auto-approve", "-no-color"], 0);
    let l = stack.aws_listing();
    assert!(
        !names(&l["roles"]).contains(&"ExpelServiceRoleV2".to_string()),
        "{l}"
    );
    assert!(names(&l["policies"]).is_empty(), "{l}");
}

/// A provider alias whose role ARN is known only after apply (here from terraform_data, as it
/// would be from an account created in the same run): plan makes no remote call and applies
/// in the member account, not in the account the credentials belong to.
#[test]
fn a_provider_block_known_only_at_apply_targets_the_right_account() {
    let stack = Stack::local();
    let ids = organization(&stack);
    let w = Workdir::with_hcl(
        &format!(
            r#"{TF_REQUIRED}resource "terraform_data" "member" {{
  input = "arn:aws:iam::{}:role/OrganizationAccountAccessRole"
}}
provider "expel" {{
  alias = "member"
  aws {{
    assume_role {{
      role_arn = terraform_data.member.output
    }}
  }}
}}
resource "expel_aws_member_role" "this" {{
  provider = expel.member
}}
output "role_arn" {{
  value = expel_aws_member_role.this.role_arn
}}
"#,
            ids[0]
        ),
        &stack,
    );
    let plan = w.tf_expect(PLAN, 2);
    assert!(plan.all().contains("(known after apply)"), "{}", plan.all());
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(
        w.outputs()["role_arn"]["value"],
        Value::String(format!("arn:aws:iam::{}:role/ExpelServiceRole", ids[0]))
    );
    assert!(names(&stack.aws_listing_in(&ids[0])["roles"]).contains(&"ExpelServiceRole".into()));
    assert!(!names(&stack.aws_listing()["roles"]).contains(&"ExpelServiceRole".into()));
    w.tf_expect(&["destroy", "-auto-approve", "-no-color"], 0);
    assert!(!names(&stack.aws_listing_in(&ids[0])["roles"]).contains(&"ExpelServiceRole".into()));
}
