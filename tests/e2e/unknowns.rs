//! Values unknown at plan time, as in most real configurations (names from `random_id`,
//! module outputs, other resources): every Optional+Computed attribute of every resource is
//! fed from a `terraform_data` output, which is unknown until apply. Plan and apply succeed,
//! the value given (not a default) is what is made, and the next plan is empty. A second
//! round changes the values, so the update path also plans with unknowns.
use expel_e2e::{Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER};
use serde_json::Value as Json;

/// A configuration whose `resource` block takes each of `attrs` from
/// `terraform_data.given.output`, whose input is `values` (HCL object body).
fn hcl(resource: &str, fixed: &str, attrs: &[&str], values: &str) -> String {
    let fed: String = attrs
        .iter()
        .map(|a| format!("  {a} = terraform_data.given.output.{a}\n"))
        .collect();
    format!(
        r#"{TF_HEADER}
resource "terraform_data" "given" {{
  input = {{
{values}
  }}
}}

resource "{resource}" "this" {{
{fixed}
{fed}
}}
"#
    )
}

/// Plans with the values unknown (the plan says "known after apply" for them and carries no
/// default), applies, checks the state holds the values given, and that the next plan is
/// empty.
fn round(w: &Workdir, kind: &str, expect: &[(&str, Json)]) {
    let plan = w.tf_expect(&["plan", "-no-color"], 0);
    let text = plan.all();
    assert!(
        !text.contains("invalid plan") && !text.contains("Error"),
        "{text}"
    );
    assert!(text.contains("(known after apply)"), "{text}");
    w.tf_expect(APPLY, 0);
    let state = w.state_of(kind);
    for (k, v) in expect {
        assert_eq!(&state[*k], v, "{k} in the state of {kind}: {state}");
    }
    w.tf_expect(PLAN, 0);
}

#[test]
fn cloudtrail_integration_takes_every_name_from_another_resource() {
    let stack = Stack::local();
    let attrs = [
        "device_location",
        "trail_name",
        "bucket_name",
        "queue_name",
        "kms_alias",
        "policy_name",
        "role_name",
        "role_session_name",
        "external_id",
        "plugin_slug",
        "expel_principals",
    ];
    let values = |suffix: &str, location: &str| {
        format!(
            r#"
    device_location   = "{location}"
    trail_name        = "trail-{suffix}"
    bucket_name       = "logs-{suffix}"
    queue_name        = "queue-{suffix}"
    kms_alias         = "alias/expel-{suffix}"
    policy_name       = "ExpelAPIPolicy-{suffix}"
    role_name         = "ExpelServiceRole-{suffix}"
    role_session_name = "Expel-{suffix}"
    external_id       = "{org}"
    plugin_slug       = "aws"
    expel_principals  = ["arn:aws:iam::012205512454:root"]
"#,
            org = stack.var("EXPEL_ORGANIZATION_ID")
        )
    };
    let fixed = "  name = \"Acme - CloudTrail\"\n  verify = false";
    let w = Workdir::with_hcl(
        &hcl(
            "expel_cloudtrail_integration",
            fixed,
            &attrs,
            &values("a1", "us-east-1"),
        ),
        &stack,
    );
    round(
        &w,
        "expel_cloudtrail_integration",
        &[
            ("bucket_name", "logs-a1".into()),
            ("trail_name", "trail-a1".into()),
            ("role_name", "ExpelServiceRole-a1".into()),
            (
                "role_arn",
                "arn:aws:iam::123456789012:role/ExpelServiceRole-a1".into(),
            ),
        ],
    );
    let l = stack.aws_listing();
    assert!(
        l["buckets"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x == "logs-a1")),
        "the bucket given, not the default, was made: {l}"
    );

    // The update path: new values, unknown again at plan time; renamed in place.
    w.write(
        "main.tf",
        &hcl(
            "expel_cloudtrail_integration",
            fixed,
            &attrs,
            &values("b2", "us-east-1 (prod)"),
        ),
    );
    round(
        &w,
        "expel_cloudtrail_integration",
        &[
            ("bucket_name", "logs-b2".into()),
            ("queue_name", "queue-b2".into()),
            ("device_location", "us-east-1 (prod)".into()),
        ],
    );
    w.tf_expect(DESTROY, 0);
}

#[test]
fn member_role_takes_every_name_from_another_resource() {
    let stack = Stack::up();
    let attrs = [
        "role_name",
        "policy_name",
        "external_id",
        "expel_principals",
    ];
    let values = |suffix: &str| {
        format!(
            r#"
    role_name        = "ExpelServiceRole-{suffix}"
    policy_name      = "ExpelAPIPolicy-{suffix}"
    external_id      = "{org}"
    expel_principals = ["arn:aws:iam::012205512454:root"]
"#,
            org = stack.var("EXPEL_ORGANIZATION_ID")
        )
    };
    let w = Workdir::with_hcl(
        &hcl("expel_aws_member_role", "", &attrs, &values("m1")),
        &stack,
    );
    round(
        &w,
        "expel_aws_member_role",
        &[
            (
                "role_arn",
                format!(
                    "arn:aws:iam::{}:role/ExpelServiceRole-m1",
                    stack.aws_account()
                )
                .into(),
            ),
            ("policy_name", "ExpelAPIPolicy-m1".into()),
        ],
    );
    w.write(
        "main.tf",
        &hcl("expel_aws_member_role", "", &attrs, &values("m2")),
    );
    round(
        &w,
        "expel_aws_member_role",
        &[("role_name", "ExpelServiceRole-m2".into())],
    );
    w.tf_expect(DESTROY, 0);
}

#[test]
fn sentinelone_device_takes_every_name_from_another_resource() {
    let stack = Stack::up();
    let attrs = [
        "role_name",
        "console_user_name",
        "service_user_name",
        "rotate_before",
        "status_syncing_user",
        "device_location",
        "plugin_slug",
        "extra_permissions",
    ];
    let values = |location: &str| {
        format!(
            r#"
    role_name           = "Viewer - Expel"
    console_user_name   = "Expel SOC"
    service_user_name   = "Expel API"
    rotate_before       = "30d"
    status_syncing_user = "api"
    device_location     = "{location}"
    plugin_slug         = "sentinelone"
    extra_permissions   = ["Endpoints: Initiate Scan"]
"#
        )
    };
    let fixed = format!(
        "  name = \"Acme - S1 EDR\"\n  console_url = \"{}\"\n  account_id = \"{}\"\n  organization_name = \"Acme Corp\"",
        stack.var("SENTINELONE_CONSOLE_URL"),
        stack.var("SENTINELONE_ACCOUNT_ID")
    );
    let w = Workdir::with_hcl(
        &hcl("expel_sentinelone_device", &fixed, &attrs, &values("cloud")),
        &stack,
    );
    round(
        &w,
        "expel_sentinelone_device",
        &[
            ("device_location", "cloud".into()),
            ("console_user_email", "soc+acme_corp@expel.io".into()),
        ],
    );
    w.write(
        "main.tf",
        &hcl(
            "expel_sentinelone_device",
            &fixed,
            &attrs,
            &values("on-prem"),
        ),
    );
    round(
        &w,
        "expel_sentinelone_device",
        &[("device_location", "on-prem".into())],
    );
    w.tf_expect(DESTROY, 0);
}

#[test]
fn wiz_device_takes_every_name_from_another_resource() {
    let stack = Stack::up();
    let attrs = [
        "device_location",
        "api_endpoint_url",
        "service_account_name",
        "scopes",
        "organization_name",
        "severities",
        "webhook_name",
        "rule_name",
    ];
    let values = |location: &str| {
        format!(
            r#"
    device_location      = "{location}"
    api_endpoint_url     = "{api}"
    service_account_name = "Expel Workbench"
    scopes               = ["read:issues", "read:projects"]
    organization_name    = "Acme Corp"
    severities           = ["HIGH", "CRITICAL"]
    webhook_name         = "Expel Webhook"
    rule_name            = "Expel Webhook Rule"
    console_role         = "Expel Analyst"
"#,
            api = stack.var("WIZ_API_URL")
        )
    };
    // `product` is a location (changing it replaces the device): given literally.
    let fixed = "  name = \"Acme Wiz\"\n  product = \"cloud\"\n  console_access {\n    role_name = terraform_data.given.output.console_role\n  }";
    let w = Workdir::with_hcl(
        &hcl("expel_wiz_device", fixed, &attrs, &values("cloud")),
        &stack,
    );
    round(
        &w,
        "expel_wiz_device",
        &[
            ("device_location", "cloud".into()),
            ("expel_user_email", "soc+acme_corp@expel.io".into()),
            ("severities", serde_json::json!(["HIGH", "CRITICAL"])),
        ],
    );
    w.write(
        "main.tf",
        &hcl("expel_wiz_device", fixed, &attrs, &values("eu")),
    );
    round(&w, "expel_wiz_device", &[("device_location", "eu".into())]);
    w.tf_expect(DESTROY, 0);
}
