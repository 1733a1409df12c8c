//! `docgen [--check] [ROOT]`: writes `ROOT/docs` from the provider's schema and `ROOT/templates`
//! (ROOT: the repository, by default the one this binary was built from). With `--check`,
//! writes nothing and fails listing the pages that differ from what it would write.
use std::path::PathBuf;
use std::process::ExitCode;

use expel_provider::docgen;
use expel_provider::resources::ExpelProvider;

fn main() -> ExitCode {
    let mut check = false;
    let mut root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: docgen [--check] [REPOSITORY ROOT]");
                return ExitCode::SUCCESS;
            }
            a if a.starts_with('-') => {
                eprintln!("docgen: unknown option {a}; usage: docgen [--check] [REPOSITORY ROOT]");
                return ExitCode::from(2);
            }
            a => root = PathBuf::from(a),
        }
    }
    let pages = match docgen::render(&ExpelProvider, &root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("docgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let docs = root.join("docs");
    if check {
        match docgen::differences(&pages, &docs) {
            Ok(diff) if diff.is_empty() => ExitCode::SUCCESS,
            Ok(diff) => {
                eprintln!("docgen: these pages differ from what the schema and templates/ generate (run scripts/docs):");
                for d in diff {
                    eprintln!("  docs/{}", d.display());
                }
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("docgen: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match docgen::write(&pages, &docs) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("docgen: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
