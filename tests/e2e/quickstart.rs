//! The real `terraform` CLI against the built provider and the local stack.
use expel_e2e::{Stack, Workdir, APPLY, PLAN, TF_REQUIRED};
use serde_json::json;

#[test]
fn quickstart_validates_plans_and_applies() {
    let stack = Stack::up();
    let w = Workdir::from_example("quickstart", &stack);
    w.tf_expect(&["validate", "-no-color"], 0);
    let plan = w.tf_expect(PLAN, 2);
    assert!(
        plan.stdout.contains("soc+acme_corp@expel.io"),
        "{}",
        plan.stdout
    );
    w.tf_expect(APPLY, 0);

    let out = w.outputs();
    assert_eq!(out["organization"]["value"], json!("Acme Corp"));
    assert_eq!(out["soc_email"]["value"], json!("soc+acme_corp@expel.io"));
    let plugins = out["plugins"]["value"].as_object().expect("plugins map");
    for slug in ["aws", "sentinelone", "wiz"] {
        assert!(
            plugins.contains_key(slug),
            "catalogue lacks {slug}: {plugins:?}"
        );
    }
    // Nothing changed remotely: the next plan is empty.
    w.tf_expect(PLAN, 0);
}

#[test]
fn plugin_catalogue_filters_and_exposes_device_spec_schema() {
    let stack = Stack::up();
    let hcl = format!(
        r#"{TF_REQUIRED}
provider "expel" {{}}
data "expel_plugins" "aws" {{ slug = "aws" }}
output "schema" {{ value = jsondecode(data.expel_plugins.aws.plugins[0].device_spec_schema) }}
output "count" {{ value = length(data.expel_plugins.aws.plugins) }}
"#
    );
    let w = Workdir::with_hcl(&hcl, &stack);
    w.tf_expect(APPLY, 0);
    let out = w.outputs();
    assert_eq!(out["count"]["value"], json!(1));
    assert_eq!(out["schema"]["value"]["type"], json!("object"), "{out}");

    w.write(
        "main.tf",
        &format!("{TF_REQUIRED}\nprovider \"expel\" {{}}\ndata \"expel_plugins\" \"x\" {{ slug = \"nope\" }}\n"),
    );
    let bad = w.tf_expect(&["plan", "-no-color"], 1);
    assert!(bad.stderr.contains("Unknown plugin"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("aws"),
        "lists the known slugs: {}",
        bad.stderr
    );
}

#[test]
fn bad_provider_config_names_the_attribute() {
    let stack = Stack::up();
    let hcl = format!(
        "{TF_REQUIRED}\nprovider \"expel\" {{\n  organization_id = \"not-a-guid\"\n  workbench_url = \"ftp://workbench\"\n}}\ndata \"expel_organization\" \"this\" {{}}\n"
    );
    let w = Workdir::with_hcl(&hcl, &stack);
    let out = w.tf_expect(&["plan", "-no-color"], 1);
    let err = out.stderr;
    assert!(err.contains("Malformed organization id"), "{err}");
    assert!(err.contains("organization_id"), "{err}");
    assert!(err.contains("Unsupported URL scheme"), "{err}");
    assert!(err.contains("workbench_url"), "{err}");

    // No key anywhere: the diagnostic names the attribute and the variable.
    let mut w = Workdir::with_hcl(
        &format!(
            "{TF_REQUIRED}\nprovider \"expel\" {{}}\ndata \"expel_organization\" \"this\" {{}}\n"
        ),
        &stack,
    );
    w.set_env("EXPEL_API_KEY", None);
    let out = w.tf_expect(&["plan", "-no-color"], 1);
    assert!(
        out.stderr.contains("Missing Workbench API key"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("EXPEL_API_KEY"), "{}", out.stderr);
}

#[test]
fn unknown_organization_and_wrong_key_are_clear_errors() {
    let stack = Stack::up();
    let hcl = format!(
        "{TF_REQUIRED}\nprovider \"expel\" {{}}\ndata \"expel_organization\" \"other\" {{ id = \"00000000-0000-4000-8000-000000000000\" }}\n"
    );
    let mut w = Workdir::with_hcl(&hcl, &stack);
    let out = w.tf_expect(&["plan", "-no-color"], 1);
    assert!(
        out.stderr.contains("Unknown organization"),
        "{}",
        out.stderr
    );

    w.set_env("EXPEL_API_KEY", Some("wrong-key"));
    let out = w.tf_expect(&["plan", "-no-color"], 1);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    assert!(
        !out.all().contains("wrong-key"),
        "the key must not be echoed"
    );
}

#[test]
fn workbench_faults_are_retried() {
    let stack = Stack::local();
    let w = Workdir::from_example("quickstart", &stack);
    let (code, _) = stack.admin(
        "POST",
        "/_admin/faults",
        Some(&json!({"route": "GET /api/v2/organizations", "nth": 1, "status": 503})),
    );
    assert!(code < 300, "fault accepted");
    let (code, _) = stack.admin(
        "POST",
        "/_admin/faults",
        Some(&json!({"route": "GET /api/v2/plugins", "nth": 1, "status": 429, "retry_after": 1})),
    );
    assert!(code < 300, "fault accepted");
    w.tf_expect(APPLY, 0);
    assert_eq!(w.outputs()["organization"]["value"], json!("Acme Corp"));
}

#[test]
fn api_key_never_appears_in_trace_logs() {
    let stack = Stack::up();
    let mut w = Workdir::from_example("quickstart", &stack);
    let log = w.dir.path().join("trace.log");
    w.set_env("TF_LOG_PATH", Some(&log.display().to_string()));
    let mut out = w.terraform(APPLY);
    // TF_LOG must be set for this one command only.
    if out.code == 0 {
        std::fs::remove_file(&log).ok();
        // Throttled once: the retry is a warning line with its reason and wait.
        let fault =
            json!({"route": "GET /api/v2/plugins", "nth": 1, "status": 429, "retry_after": 1});
        assert!(stack.admin("POST", "/_admin/faults", Some(&fault)).0 < 300);
        w.set_env("TF_LOG", Some("trace"));
        out = w.terraform(&["plan", "-no-color"]);
    }
    assert_eq!(out.code, 0, "{}", out.all());
    let key = stack.var("EXPEL_API_KEY");
    let trace = std::fs::read_to_string(&log).unwrap_or_default() + &out.all();
    assert!(
        trace.contains("provider.terraform-provider-expel"),
        "the provider logged through TF_LOG"
    );
    assert!(
        !trace.contains(&key),
        "the API key leaked into TF_LOG=trace output"
    );
    // Each remote call (service, operation or method and path, status, milliseconds) and each
    // step (start, end, outcome) is a line of its own.
    let line = |needles: &[&str]| trace.lines().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        line(&["aws call", "service=", "operation=", "status=200", "ms="]),
        "no AWS call lines:\n{trace}"
    );
    assert!(
        line(&["call=\"Workbench GET ", "status=200", "attempt=1", "ms="]),
        "no Workbench call lines:\n{trace}"
    );
    assert!(
        line(&[
            "[WARN]",
            "retrying",
            "reason=\"HTTP 429\"",
            "wait_ms=",
            "Workbench GET "
        ]),
        "no retry line:\n{trace}"
    );
    assert!(line(&["step started", "op=observe"]), "no step lines");
    assert!(line(&["step done", "op=observe", "ms="]), "no step lines");
}
