//! The provider's `aws` settings named as hashicorp/aws names them, each through the real
//! terraform CLI against the local stack: assume_role_with_web_identity through moto's STS,
//! assume_role's session parameters, shared config and credentials files with a profile,
//! max_retries with the AWS proxy's fault injection. The AWS proxy records what each STS
//! role call asked for (`session` in `/_proxy/calls`), since moto keeps only part of it.
//!
//! What moto does not verify (so these tests prove what is sent, not that AWS would accept
//! it): a web identity token is any string (no signature, issuer, audience or expiry check,
//! and no OIDC provider need exist in IAM); the role need not exist nor trust the caller; the
//! session duration is not held against the role's maximum; session tags, transitive keys,
//! policy ARNs and source identity are ignored; the session policy does not restrict the
//! session. moto does switch accounts: a session's credentials act in the account of the
//! role's ARN, which is what `allowed_account_ids` checks below.
use expel_e2e::{Stack, Workdir, APPLY, DESTROY, TF_REQUIRED};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

/// The STS role calls made since the proxy's log was last cleared: what each asked for.
fn sessions(stack: &Stack) -> Vec<Json> {
    let (_, calls) = stack.aws_proxy("GET", "/_proxy/calls", None);
    calls["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| {
            e.get("session").map(|s| {
                let mut s = s.clone();
                s["operation"] = e["operation"].clone();
                s
            })
        })
        .collect()
}

/// A configuration with `aws { <aws> }` and one expel_aws_member_role.
fn member_role_with(aws: &str) -> String {
    format!(
        "{TF_REQUIRED}provider \"expel\" {{\n  aws {{\n{aws}\n  }}\n}}\n\nresource \"expel_aws_member_role\" \"this\" {{}}\n\noutput \"account_id\" {{\n  value = expel_aws_member_role.this.account_id\n}}\n"
    )
}

#[test]
fn web_identity_opens_the_session_in_the_roles_account_and_the_token_is_never_logged() {
    let stack = Stack::local();
    // A CI token as GitHub Actions writes it (moto checks nothing of it).
    let token =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNpIn0.eyJzdWIiOiJyZXBvOmFjbWUvaW5mcmEifQ.c2lnbmF0dXJl";
    let mut w = Workdir::with_hcl("", &stack);
    let token_file = w.dir.path().join("web-identity-token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    w.write(
        "main.tf",
        &member_role_with(&format!(
            r#"    allowed_account_ids = ["111111111111"]
    assume_role_with_web_identity {{
      role_arn                = "arn:aws:iam::111111111111:role/GitHubActions"
      web_identity_token_file = "{}"
      session_name            = "gh-run-42"
      duration                = "30m"
      policy_arns             = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    }}"#,
            token_file.display()
        )),
    );
    stack.aws_proxy("DELETE", "/_proxy/calls", None);
    w.tf_expect(APPLY, 0);
    // allowed_account_ids lets only 111111111111 through: the objects are there.
    assert_eq!(
        w.outputs()["account_id"]["value"],
        json!("111111111111"),
        "the web identity session's account"
    );
    let roles = stack.aws_listing_in("111111111111");
    assert!(
        roles.to_string().contains("ExpelServiceRole"),
        "the role was made with the session's credentials: {roles}"
    );
    let s = sessions(&stack);
    let web: Vec<&Json> = s
        .iter()
        .filter(|s| s["operation"] == "AssumeRoleWithWebIdentity")
        .collect();
    assert!(!web.is_empty(), "STS AssumeRoleWithWebIdentity: {s:?}");
    let sha: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        web[0]["WebIdentityTokenSha256"],
        json!(sha),
        "the file's token, trimmed"
    );
    assert_eq!(web[0]["RoleSessionName"], "gh-run-42");
    assert_eq!(web[0]["DurationSeconds"], "1800");
    assert_eq!(
        web[0]["PolicyArns"],
        json!(["arn:aws:iam::aws:policy/AdministratorAccess"])
    );

    // The token given inline instead (a sensitive variable's value): never in a log line.
    w.edit_main(|m| {
        m.replace(
            &format!("web_identity_token_file = \"{}\"", token_file.display()),
            &format!("web_identity_token      = \"{token}\""),
        )
    });
    let log = w.dir.path().join("trace.log");
    w.set_env("TF_LOG_PATH", Some(&log.display().to_string()));
    w.set_env("TF_LOG", Some("trace"));
    let out = w.tf_expect(&["plan", "-no-color", "-refresh=true"], 0);
    let trace = std::fs::read_to_string(&log).unwrap_or_default() + &out.all();
    assert!(
        trace.contains("aws call"),
        "the provider logged its AWS calls"
    );
    assert!(
        !trace.contains(token) && !trace.contains(&token[..40]),
        "the web identity token leaked into TF_LOG=trace output"
    );
    w.set_env("TF_LOG", None);
    w.tf_expect(DESTROY, 0);
}

#[test]
fn assume_role_sends_duration_tags_policy_and_source_identity() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(
        &member_role_with(
            r#"    allowed_account_ids = ["222222222222"]
    assume_role {
      role_arn            = "arn:aws:iam::222222222222:role/Deploy"
      session_name        = "deploy"
      duration            = "15m"
      policy              = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })
      policy_arns         = ["arn:aws:iam::aws:policy/IAMFullAccess"]
      tags                = { team = "secops", run = "42" }
      transitive_tag_keys = ["team"]
      source_identity     = "ci-bot"
    }"#,
        ),
        &stack,
    );
    stack.aws_proxy("DELETE", "/_proxy/calls", None);
    // The plan asks STS who the caller is with the session: allowed_account_ids refuses
    // any account but the role's.
    w.tf_expect(&["plan", "-no-color"], 0);
    let s = sessions(&stack);
    let a = s
        .iter()
        .find(|s| s["operation"] == "AssumeRole")
        .unwrap_or_else(|| panic!("STS AssumeRole: {s:?}"));
    assert_eq!(a["RoleArn"], "arn:aws:iam::222222222222:role/Deploy");
    assert_eq!(a["RoleSessionName"], "deploy");
    assert_eq!(a["DurationSeconds"], "900");
    assert_eq!(a["Tags"], json!({"team": "secops", "run": "42"}));
    assert_eq!(a["TransitiveTagKeys"], json!(["team"]));
    assert_eq!(
        a["PolicyArns"],
        json!(["arn:aws:iam::aws:policy/IAMFullAccess"])
    );
    assert_eq!(a["SourceIdentity"], "ci-bot");
    let policy: Json = serde_json::from_str(a["Policy"].as_str().expect("policy")).expect("JSON");
    assert_eq!(policy["Statement"][0]["Action"], "*");

    // A duration STS would refuse fails validation, naming the attribute.
    w.edit_main(|m| {
        m.replace(
            "duration            = \"15m\"",
            "duration            = \"5m\"",
        )
    });
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    assert!(
        out.contains("Bad session duration") && out.contains("aws.assume_role.duration"),
        "{out}"
    );
}

#[test]
fn shared_files_in_a_temp_dir_give_the_profile() {
    let stack = Stack::local();
    let mut w = Workdir::with_hcl("", &stack);
    let files = tempfile::tempdir().expect("tempdir");
    let config = files.path().join("config");
    let credentials = files.path().join("credentials");
    // The profile assumes a role in another account with the base profile's keys; the
    // endpoint is the stack's (the SDK reads `endpoint_url` from the profile).
    std::fs::write(
        &config,
        format!(
            "[profile ci]\nregion = us-east-1\nrole_arn = arn:aws:iam::333333333333:role/FromProfile\nsource_profile = base\nendpoint_url = {}\n\n[profile base]\nregion = us-east-1\n",
            stack.var("AWS_ENDPOINT_URL")
        ),
    )
    .expect("config");
    std::fs::write(
        &credentials,
        "[base]\naws_access_key_id = AKIAFROMTHEFILE00001\naws_secret_access_key = from-the-credentials-file\n",
    )
    .expect("credentials");
    // Nothing else to find credentials in: no keys in the environment, no default files.
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        w.set_env(var, None);
    }
    w.set_env("AWS_CONFIG_FILE", Some("/nonexistent/config"));
    w.set_env(
        "AWS_SHARED_CREDENTIALS_FILE",
        Some("/nonexistent/credentials"),
    );
    let hcl = |profile: &str| {
        member_role_with(&format!(
            r#"    allowed_account_ids      = ["333333333333"]
    profile                  = "{profile}"
    shared_config_files      = ["{}"]
    shared_credentials_files = ["{}"]"#,
            config.display(),
            credentials.display()
        ))
    };
    w.write("main.tf", &hcl("ci"));
    stack.aws_proxy("DELETE", "/_proxy/calls", None);
    w.tf_expect(&["plan", "-no-color"], 0);
    let s = sessions(&stack);
    assert!(
        s.iter()
            .any(|s| s["RoleArn"] == "arn:aws:iam::333333333333:role/FromProfile"),
        "the profile's role was assumed: {s:?}"
    );

    // A profile in neither listed file: the error names the files.
    w.write("main.tf", &hcl("cii"));
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    assert!(
        out.contains("`cii`") && out.contains(&config.display().to_string()),
        "{out}"
    );
    // A listed file that does not exist: the attribute is named.
    w.write(
        "main.tf",
        &hcl("ci").replace(&config.display().to_string(), "/nonexistent/ci-config"),
    );
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    assert!(
        out.contains("Shared file not found") && out.contains("aws.shared_config_files"),
        "{out}"
    );
}

#[test]
fn max_retries_bounds_the_attempts_of_a_throttled_call() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&member_role_with("    max_retries = 2"), &stack);
    // Every CreatePolicy is throttled (the member role's first write).
    let (code, fault) = stack.aws_proxy(
        "POST",
        "/_proxy/faults",
        Some(
            &json!({"service": "iam", "operation": "CreatePolicy", "count": -1,
                     "kind": "status", "status": 400, "code": "Throttling"}),
        ),
    );
    assert_eq!(code, 201, "{fault}");
    stack.aws_proxy("DELETE", "/_proxy/calls", None);
    let out = w.tf_expect(APPLY, 1);
    assert!(out.stderr.contains("Throttling"), "{}", out.all());
    let (_, calls) = stack.aws_proxy("GET", "/_proxy/calls", None);
    assert_eq!(
        calls["operations"]["iam.CreatePolicy"],
        json!(3),
        "the first attempt and max_retries = 2 retries: {calls}"
    );
    // Without the fault the next apply finishes the job.
    stack.aws_proxy("DELETE", "/_proxy/faults", None);
    w.tf_expect(APPLY, 0);
    w.tf_expect(DESTROY, 0);
}

/// The tags of the pieces (`oob.py tags`), with `names` overriding the default names.
fn tags_of(stack: &Stack, names: &[&str]) -> Json {
    serde_json::from_str(&stack.oob_with("tags", names)).expect("tags JSON")
}

const MEMBER: &[&str] = &["role=ExpelMemberRole", "policy=ExpelMemberPolicy"];

fn default_tags_config(defaults: &str) -> String {
    format!(
        r#"{TF_REQUIRED}provider "expel" {{
  aws {{
    default_tags {{
      tags = {defaults}
    }}
  }}
}}

resource "expel_cloudtrail_integration" "ct" {{
  name          = "Acme - AWS CloudTrail"
  force_destroy = true
  tags          = {{ env = "dev" }}
}}

resource "expel_aws_member_role" "member" {{
  role_name   = "ExpelMemberRole"
  policy_name = "ExpelMemberPolicy"
  tags        = {{ env = "dev" }}
}}

output "tags_all" {{
  value = expel_cloudtrail_integration.ct.tags_all
}}
"#
    )
}

/// Every piece of both resources carries `want` (and the ownership tags).
fn assert_tagged(stack: &Stack, want: &Json, case: &str) {
    let want = want.as_object().expect("map");
    let ct = tags_of(stack, &[]);
    let member = tags_of(stack, MEMBER);
    let pieces = ["key", "bucket", "queue", "trail", "policy", "role"]
        .iter()
        .map(|p| (format!("cloudtrail {p}"), &ct[*p]))
        .chain(
            ["policy", "role"]
                .iter()
                .map(|p| (format!("member {p}"), &member[*p])),
        );
    for (piece, tags) in pieces {
        for (k, v) in want {
            assert_eq!(&tags[k], v, "{case}: {piece} tag {k}: {tags}");
        }
        assert_eq!(
            tags["expel:managed-by"], "terraform-provider-expel",
            "{case}: {piece}: the ownership tags stay: {tags}"
        );
    }
}

#[test]
fn default_tags_are_on_every_object_are_drift_and_update_in_place() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(
        &default_tags_config(r#"{ team = "secops", env = "prod" }"#),
        &stack,
    );
    w.tf_expect(APPLY, 0);
    // The resource's own tags win on equal keys.
    let want = json!({"team": "secops", "env": "dev"});
    assert_eq!(w.outputs()["tags_all"]["value"], want);
    assert_tagged(&stack, &want, "after apply");
    w.tf_expect(&["plan", "-detailed-exitcode", "-no-color"], 0);

    // Another party's tag is not drift; a default tag removed or changed is.
    stack.oob_with("tag-edit", &["tag=someone", "value=else", "pieces=bucket"]);
    w.tf_expect(&["plan", "-detailed-exitcode", "-no-color"], 0);
    stack.oob_with("tag-edit", &["tag=team", "pieces=key,queue"]);
    stack.oob_with("tag-edit", &["tag=team", "value=other", "pieces=role"]);
    let mut member = MEMBER.to_vec();
    member.extend(["tag=team", "pieces=policy"]);
    stack.oob_with("tag-edit", &member);
    w.drift_repaired(
        "default tag removed and changed",
        &[
            "tag team missing",
            "tag team is \\\"other\\\" instead of \\\"secops\\\"",
        ],
    );
    assert_tagged(&stack, &want, "after the repair");
    assert_eq!(
        tags_of(&stack, &[])["bucket"]["someone"],
        "else",
        "others' tags stay"
    );

    // A change of default_tags updates in place: new values, new keys, dropped keys removed.
    w.write(
        "main.tf",
        &default_tags_config(r#"{ team = "blue", cost-center = "1234" }"#),
    );
    let plan = w.tf_expect(&["plan", "-detailed-exitcode", "-no-color"], 2);
    assert!(
        plan.stdout.contains("updated in-place") && !plan.stdout.contains("must be replaced"),
        "{}",
        plan.stdout
    );
    w.tf_expect(APPLY, 0);
    let want = json!({"team": "blue", "cost-center": "1234", "env": "dev"});
    assert_eq!(w.outputs()["tags_all"]["value"], want);
    assert_tagged(&stack, &want, "after the change");
    w.write("main.tf", &default_tags_config(r#"{ team = "blue" }"#));
    w.tf_expect(APPLY, 0);
    for (piece, tags) in tags_of(&stack, &[]).as_object().expect("pieces") {
        assert!(
            tags.get("cost-center").is_none(),
            "{piece}: dropped key removed: {tags}"
        );
    }
    assert!(tags_of(&stack, MEMBER)["role"].get("cost-center").is_none());
    w.tf_expect(&["plan", "-detailed-exitcode", "-no-color"], 0);
    w.tf_expect(DESTROY, 0);
}
