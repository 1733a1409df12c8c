//! Every example under examples/ (the docs include them) is valid against the provider's
//! schema: `terraform validate` through the real CLI and the plugin. A schema change that
//! breaks an example fails here, not in a user's hands.
use std::path::{Path, PathBuf};

use expel_e2e::{repo_root, Stack, Workdir, TF_REQUIRED};

/// The .tf files under `dir`, sorted.
fn tf_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    out.sort();
    out
}

fn validate(w: &Workdir, what: &str) {
    let out = w.terraform(&["validate", "-no-color"]);
    assert_eq!(out.code, 0, "{what} does not validate:\n{}", out.all());
}

#[test]
fn every_example_validates() {
    let stack = Stack::local();
    let examples = repo_root().join("examples");
    let mut checked = 0;
    // Whole configurations: examples/<name>/main.tf (and their local modules).
    for entry in std::fs::read_dir(&examples).expect("examples/") {
        let dir = entry.expect("dir entry").path();
        if !dir.join("main.tf").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let w = Workdir::from_example(&name, &stack);
        if dir.join("modules").exists() {
            w.tf_expect(&["get", "-no-color"], 0);
        }
        validate(&w, &format!("examples/{name}"));
        checked += 1;
    }
    // The snippets the generated docs show: each file on its own (several declare the same
    // resource name), with the `terraform` block when it has none.
    for kind in ["provider", "resources", "data-sources", "functions"] {
        let root = examples.join(kind);
        let mut dirs = vec![root.clone()];
        dirs.extend(
            std::fs::read_dir(&root)
                .expect("examples/<kind>")
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.is_dir()),
        );
        for dir in dirs {
            for file in tf_files(&dir) {
                let text = std::fs::read_to_string(&file).expect("read example");
                let hcl = if text.contains("terraform {") {
                    text
                } else {
                    format!("{TF_REQUIRED}{text}")
                };
                let w = Workdir::with_hcl(&hcl, &stack);
                validate(&w, &file.display().to_string());
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "only {checked} examples found");
}
