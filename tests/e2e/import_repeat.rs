//! The plan after an import is empty, every time: refresh observes each piece after the
//! pieces it reads from, so no comparison reads a value not observed yet (before, the
//! CloudTrail device was compared with a queue URL not yet read in 10 of 11 tries). Each
//! resource is imported 20 times in a row, alternating `terraform import` and an `import {}`
//! block with `-generate-config-out`.
use expel_e2e::{sentinelone_device, Stack, Workdir, APPLY, PLAN, TF_HEADER};
use serde_json::Value as Json;

const ROUNDS: usize = 20;

fn state_of(w: &Workdir) -> Json {
    let out = w.tf_expect(&["show", "-json", "-no-color"], 0);
    let doc: Json = serde_json::from_str(&out.stdout).expect("show -json");
    doc["values"]["root_module"]["resources"][0]["values"].clone()
}

/// Applies `body`, then imports the resource at `address` by the id `import_id` picks from
/// its state, ROUNDS times, half by command and half by import block; every plan after an
/// import must be empty.
fn import_repeatedly(stack: &Stack, body: &str, address: &str, import_id: fn(&Json) -> String) {
    let w = Workdir::with_hcl(&format!("{TF_HEADER}{body}"), stack);
    w.tf_expect(APPLY, 0);
    let id = import_id(&state_of(&w));
    for round in 0..ROUNDS {
        w.tf_expect(&["state", "rm", "-no-color", address], 0);
        if round % 2 == 0 {
            w.tf_expect(&["import", "-no-color", address, &id], 0);
            let plan = w.terraform(PLAN);
            assert_eq!(
                plan.code,
                0,
                "round {round}: the plan after `terraform import` is not empty:\n{}",
                plan.all()
            );
        } else {
            // An import block: the plan imports and must show nothing else to do.
            w.write(
                "import.tf",
                &format!("import {{\n  to = {address}\n  id = \"{id}\"\n}}\n"),
            );
            let plan = w.tf_expect(&["plan", "-no-color"], 0);
            let text = plan.all();
            assert!(
                text.contains("1 to import, 0 to add, 0 to change, 0 to destroy"),
                "round {round}: the plan with an import block changes something:\n{text}"
            );
            w.tf_expect(APPLY, 0);
            std::fs::remove_file(w.dir.path().join("import.tf")).expect("remove import.tf");
            let plan = w.terraform(PLAN);
            assert_eq!(plan.code, 0, "round {round}:\n{}", plan.all());
        }
    }

    // -generate-config-out writes a configuration that plans to import and nothing else.
    let g = Workdir::with_hcl(
        &format!("{TF_HEADER}import {{\n  to = {address}\n  id = \"{id}\"\n}}\n"),
        stack,
    );
    let out = g.terraform(&["plan", "-no-color", "-generate-config-out=generated.tf"]);
    assert!(
        g.dir.path().join("generated.tf").exists(),
        "no configuration generated:\n{}",
        out.all()
    );
    let plan = g.tf_expect(&["plan", "-no-color"], 0);
    assert!(
        plan.all()
            .contains("1 to import, 0 to add, 0 to change, 0 to destroy"),
        "the generated configuration plans a change:\n{}",
        plan.all()
    );
}

fn string(s: &Json, k: &str) -> String {
    s[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {s}"))
        .to_string()
}

#[test]
fn cloudtrail_integration_imports_to_an_empty_plan_every_time() {
    let stack = Stack::up();
    import_repeatedly(
        &stack,
        "resource \"expel_cloudtrail_integration\" \"this\" {\n  name = \"Acme - AWS CloudTrail\"\n}\n",
        "expel_cloudtrail_integration.this",
        |s| string(s, "id"),
    );
}

#[test]
fn member_role_imports_to_an_empty_plan_every_time() {
    let stack = Stack::up();
    import_repeatedly(
        &stack,
        "resource \"expel_aws_member_role\" \"this\" {}\n",
        "expel_aws_member_role.this",
        |s| string(s, "role_arn"),
    );
}

#[test]
fn sentinelone_device_imports_to_an_empty_plan_every_time() {
    let stack = Stack::up();
    let body = sentinelone_device(&stack, "edr", "Acme - S1 EDR");
    import_repeatedly(&stack, &body, "expel_sentinelone_device.edr", |s| {
        string(s, "id")
    });
}

#[test]
fn wiz_device_imports_to_an_empty_plan_every_time() {
    let stack = Stack::up();
    import_repeatedly(
        &stack,
        "resource \"expel_wiz_device\" \"w\" {\n  name = \"Acme Wiz\"\n}\n",
        "expel_wiz_device.w",
        |s| string(s, "id"),
    );
}
