//! expel_aws_organization_member_roles through the real terraform CLI, against moto's
//! Organizations and CloudFormation with the StackSets emulation of the local stack
//! (tests/sandbox/sandbox/motoext.py: nested OUs, account filters, delete by OU, automatic
//! deployment, organizations access, as AWS documents them). An organization with nested OUs
//! and 22 member accounts, someone else's stack set beside ours.
use expel_e2e::{cfn_lint, tf_config, Stack, Workdir, APPLY, DESTROY, PLAN, TF_REQUIRED};
use serde_json::Value;

struct Org {
    root: String,
    ous: Value,
    accounts: Value,
}

impl Org {
    fn ou(&self, name: &str) -> String {
        self.ous[name].as_str().expect("ou id").to_string()
    }
    fn accounts(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .flat_map(|n| self.accounts[*n].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    }
}

fn organization(stack: &Stack) -> Org {
    let v: Value = serde_json::from_str(&stack.oob_with("stacksets-org", &["members=22"]))
        .expect("stacksets-org JSON");
    Org {
        root: v["root"].as_str().expect("root").to_string(),
        ous: v["ous"].clone(),
        accounts: v["accounts"].clone(),
    }
}

/// Every account of the organization -> its role names.
fn roles(stack: &Stack) -> Value {
    serde_json::from_str(&stack.oob("roles-everywhere")).expect("roles-everywhere JSON")
}

fn has_role(roles: &Value, account: &str, role: &str) -> bool {
    roles[account]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x == role))
}

fn config(ous: &[String], exclude: &[String], auto: bool) -> String {
    let list = |v: &[String]| {
        v.iter()
            .map(|x| format!("\"{x}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    tf_config(&format!(
        r#"
resource "expel_aws_organization_member_roles" "all" {{
  organizational_unit_ids = [{}]
  exclude_account_ids     = [{}]
  auto_deployment         = {auto}
}}

output "accounts" {{
  value = keys(expel_aws_organization_member_roles.all.accounts)
}}
"#,
        list(ous),
        list(exclude)
    ))
}

#[test]
fn rollout_to_an_organization_follows_its_ous_and_leaves_others_stack_sets() {
    let stack = Stack::local();
    let org = organization(&stack);
    let (workloads, sandbox) = (org.ou("workloads"), org.ou("sandbox"));
    // Someone else's stack set, deploying ForeignRole to the Sandbox OU.
    stack.oob_with("stackset-foreign", &[&format!("ou={sandbox}")]);
    let excluded = org.accounts(&["prod"])[0].clone();

    // Bad input, each on its attribute: trusted access off, an OU of another organization.
    let w = Workdir::with_hcl(
        &config(
            &[workloads.clone(), sandbox.clone()],
            std::slice::from_ref(&excluded),
            false,
        ),
        &stack,
    );
    let text = w.tf_expect(PLAN, 1).all();
    for words in [
        "StackSets trusted access is off",
        "organizational_unit_ids",
        "activate-organizations-access",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{text}");
    }
    stack.oob("stacksets-access-on");
    let stranger = Workdir::with_hcl(
        &config(&[workloads.clone(), "ou-zzzz-zzzzzzzz".into()], &[], false),
        &stack,
    );
    let text = stranger.tf_expect(PLAN, 1).all();
    assert!(
        text.contains("Not an organizational unit of this organization")
            && text.contains("ou-zzzz-zzzzzzzz")
            && text.contains(&org.root),
        "{text}"
    );

    // Apply: every account below Workloads (at any depth) and Sandbox has the role, but the
    // excluded one, the one directly under the root, and the management account.
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let r = roles(&stack);
    let covered = org.accounts(&["workloads", "prod", "deep", "sandbox"]);
    assert_eq!(covered.len(), 21, "{r}");
    for a in &covered {
        assert_eq!(
            has_role(&r, a, "ExpelServiceRole"),
            *a != excluded,
            "{a}: {r}"
        );
    }
    for a in org.accounts(&["root"]).iter().chain([&stack.aws_account()]) {
        assert!(!has_role(&r, a, "ExpelServiceRole"), "{a}: {r}");
    }
    // Assumed into a member account: the role trusts Expel with the organization's id.
    let member = &org.accounts(&["deep"])[0];
    let trust = stack.policy_show("trust", &[&format!("account={member}")]);
    let text = trust.to_string();
    assert!(
        text.contains("arn:aws:iam::012205512454:root")
            && text.contains(&stack.var("EXPEL_ORGANIZATION_ID")),
        "{text}"
    );
    let outputs = w.outputs();
    assert_eq!(
        outputs["accounts"]["value"].as_array().map(Vec::len),
        Some(20),
        "{outputs}"
    );

    // The template the provider emitted, as the stack set holds it, passes cfn-lint.
    let sets: Value = serde_json::from_str(&stack.oob("stacksets")).expect("stacksets JSON");
    cfn_lint(
        sets["ExpelMemberRoles"]["template"]
            .as_str()
            .expect("template"),
    );

    // An account joins Prod with automatic deployment off: refresh reports it uncovered,
    // apply covers it.
    let joiner = stack
        .oob_with(
            "account-join",
            &[&format!("ou={}", org.ou("prod")), "name=joiner"],
        )
        .trim()
        .to_string();
    let text = w.tf_expect(PLAN, 2).all();
    for words in ["stack_instances", "have no stack instance", joiner.as_str()] {
        assert!(text.contains(words), "no {words:?} in:\n{text}");
    }
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert!(has_role(&roles(&stack), &joiner, "ExpelServiceRole"));

    // The role deleted in one member account: the next apply (here a change of concurrency)
    // starts drift detection, the refresh after it reports the account, apply makes its
    // stack instance again.
    let victim = org.accounts(&["deep"])[1].clone();
    stack.oob_with("role-delete", &[&format!("account={victim}")]);
    w.edit_main(|m| {
        m.replace(
            "auto_deployment         = false",
            "auto_deployment         = false\n  max_concurrent_percentage = 50",
        )
    });
    w.tf_expect(APPLY, 0);
    let text = w.tf_expect(PLAN, 2).all();
    for words in [
        "Drift in stack_instances",
        "role was deleted or changed there",
        victim.as_str(),
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{text}");
    }
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert!(has_role(&roles(&stack), &victim, "ExpelServiceRole"));

    // Sandbox removed from the list: its instances go (ours only), the stack set stays.
    w.write(
        "main.tf",
        &config(
            std::slice::from_ref(&workloads),
            std::slice::from_ref(&excluded),
            true,
        ),
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let r = roles(&stack);
    for a in org.accounts(&["sandbox"]) {
        assert!(!has_role(&r, &a, "ExpelServiceRole"), "{a}: {r}");
        assert!(
            has_role(&r, &a, "ForeignRole"),
            "someone else's stack set is untouched: {a}: {r}"
        );
    }
    // Automatic deployment on: an account that joins later is covered without an apply.
    let late = stack
        .oob_with(
            "account-join",
            &[&format!("ou={}", org.ou("deep")), "name=late"],
        )
        .trim()
        .to_string();
    assert!(has_role(&roles(&stack), &late, "ExpelServiceRole"));
    // Refresh sees it in `accounts` (so the output changes), and no drift to repair.
    let text = w.tf_expect(PLAN, 2).all();
    assert!(
        text.contains(&late)
            && text.contains("without changing any real infrastructure")
            && !text.contains("will be updated in-place"),
        "{text}"
    );

    // Destroy: no ExpelServiceRole anywhere; the foreign stack set and its roles stay.
    w.tf_expect(DESTROY, 0);
    let r = roles(&stack);
    for (a, list) in r.as_object().expect("accounts") {
        assert!(
            !list
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == "ExpelServiceRole")),
            "{a}: {r}"
        );
    }
    let sets: Value = serde_json::from_str(&stack.oob("stacksets")).expect("stacksets JSON");
    assert!(sets.get("ExpelMemberRoles").is_none(), "{sets}");
    assert_eq!(
        sets["Foreign"]["accounts"].as_array().map(Vec::len),
        Some(org.accounts(&["sandbox"]).len()),
        "{sets}"
    );
}

#[test]
fn a_delegated_administrator_must_be_registered() {
    let stack = Stack::local();
    let org = organization(&stack);
    stack.oob("stacksets-access-on");
    let admin = &org.accounts(&["sandbox"])[0];
    let w = Workdir::with_hcl(
        &format!(
            r#"{}
provider "expel" {{
  aws {{
    assume_role {{
      role_arn = "arn:aws:iam::{admin}:role/OrganizationAccountAccessRole"
    }}
  }}
}}

resource "expel_aws_organization_member_roles" "all" {{
  organizational_unit_ids = ["{}"]
  call_as                 = "DELEGATED_ADMIN"
}}
"#,
            expel_e2e::TF_REQUIRED,
            org.ou("workloads")
        ),
        &stack,
    );
    let text = w.tf_expect(PLAN, 1).all();
    for words in [
        "Not a StackSets delegated administrator",
        "call_as",
        "register-delegated-administrator",
        admin.as_str(),
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{text}");
    }
}

#[test]
fn imports_by_stack_set_name_to_an_empty_plan() {
    let stack = Stack::local();
    let org = organization(&stack);
    stack.oob("stacksets-access-on");
    let w = Workdir::with_hcl(
        &tf_config(
            r#"
resource "expel_aws_organization_member_roles" "all" {}
"#,
        ),
        &stack,
    );
    w.tf_expect(APPLY, 0);
    let state = w.state_of("expel_aws_organization_member_roles");
    assert_eq!(
        state["organizational_unit_ids"][0],
        org.root.as_str(),
        "{state}"
    );
    w.tf_expect(
        &[
            "state",
            "rm",
            "-no-color",
            "expel_aws_organization_member_roles.all",
        ],
        0,
    );
    w.tf_expect(
        &[
            "import",
            "-no-color",
            "expel_aws_organization_member_roles.all",
            "ExpelMemberRoles",
        ],
        0,
    );
    w.tf_expect(PLAN, 0);
    // A stack set that is not ours is not imported as ours.
    stack.oob_with(
        "stackset-foreign",
        &[&format!("ou={}", org.ou("sandbox")), "name=Other"],
    );
    w.tf_expect(
        &[
            "state",
            "rm",
            "-no-color",
            "expel_aws_organization_member_roles.all",
        ],
        0,
    );
    let text = w
        .tf_expect(
            &[
                "import",
                "-no-color",
                "expel_aws_organization_member_roles.all",
                "Other",
            ],
            1,
        )
        .all();
    assert!(text.contains("was not made by this provider"), "{text}");
}

/// The provider's `aws.default_tags` reach the role in every member account (the template's
/// role tags, under the ownership tags); changing them rolls the new tags out in place.
#[test]
fn default_tags_reach_every_member_role_and_change_in_place() {
    let stack = Stack::local();
    let org = organization(&stack);
    stack.oob("stacksets-access-on");
    let hcl = |team: &str| {
        format!(
            r#"{TF_REQUIRED}
provider "expel" {{
  aws {{
    default_tags {{
      tags = {{ team = "{team}" }}
    }}
  }}
}}
resource "expel_aws_organization_member_roles" "all" {{}}
"#
        )
    };
    let w = Workdir::with_hcl(&hcl("platform"), &stack);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let member = org.accounts(&["deep"])[0].clone();
    let tags = |stack: &Stack| -> Value {
        serde_json::from_str(&stack.oob_with("tags", &[&format!("account={member}")]))
            .expect("tags JSON")
    };
    let t = tags(&stack);
    assert_eq!(t["role"]["team"], "platform", "{t}");
    assert!(t["role"]["expel:owner"].is_string(), "{t}");

    w.write("main.tf", &hcl("security"));
    let plan = w.tf_expect(PLAN, 2);
    assert!(
        plan.all().contains("0 to add, 1 to change, 0 to destroy"),
        "{}",
        plan.all()
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(tags(&stack)["role"]["team"], "security");
    w.tf_expect(DESTROY, 0);
}
