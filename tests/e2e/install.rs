//! Installed as a user installs a released provider: `scripts/release` packs the provider
//! (the debug binary the suite already built: no second build; the published artifacts are the
//! release profile's), the zips are laid out as a filesystem mirror, and `terraform init` from a
//! clean directory installs it with a version constraint and no dev_overrides.
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use expel_e2e::{provider_dir, repo_root, Stack, Workdir, APPLY, DESTROY, PLAN};
use serde_json::Value as Json;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const NAME: &str = "terraform-provider-expel";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("start command");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A throwaway signing key in its own GNUPGHOME; returns its fingerprint.
fn throwaway_key(home: &Path) -> String {
    std::fs::create_dir_all(home).expect("GNUPGHOME");
    let gpg = |args: &[&str]| run(Command::new("gpg").env("GNUPGHOME", home).args(args));
    gpg(&[
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Expel release test <release-test@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let listing = gpg(&["--list-keys", "--with-colons"]);
    listing
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .expect("the new key's fingerprint")
}

fn release(out: &Path, gnupg: Option<(&Path, &str)>) -> String {
    let mut cmd = Command::new(repo_root().join("scripts/release"));
    cmd.arg("--binary")
        .arg(provider_dir().join(NAME))
        .arg("--out")
        .arg(out)
        .env_remove("EXPEL_RELEASE_GPG_KEY_ID");
    if let Some((home, key)) = gnupg {
        cmd.env("GNUPGHOME", home)
            .env("EXPEL_RELEASE_GPG_KEY_ID", key);
    }
    run(&mut cmd)
}

/// Terraform's `h1:` hash (dirhash Hash1) of the files in a provider zip.
fn h1_of_zip(zip: &Path) -> String {
    let script = r#"
import base64, hashlib, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
lines = "".join("%s  %s\n" % (hashlib.sha256(z.read(n)).hexdigest(), n) for n in sorted(z.namelist()))
print("h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode())
"#;
    run(Command::new("python3").arg("-c").arg(script).arg(zip))
        .trim()
        .to_string()
}

#[test]
fn released_zip_installs_from_a_filesystem_mirror_without_dev_overrides() {
    let stack = Stack::up();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dist = tmp.path().join("dist");
    let key = throwaway_key(&tmp.path().join("gnupg"));
    let log = release(&dist, Some((&tmp.path().join("gnupg"), &key)));
    assert!(log.contains(&format!("signed by {key}")), "{log}");

    // The registry's file names, the binary inside the zip, the manifest.
    let zip_name = format!("{NAME}_{VERSION}_linux_amd64.zip");
    let sums_name = format!("{NAME}_{VERSION}_SHA256SUMS");
    for f in [
        zip_name.clone(),
        sums_name.clone(),
        format!("{sums_name}.sig"),
        format!("{NAME}_{VERSION}_manifest.json"),
    ] {
        assert!(dist.join(&f).is_file(), "dist/ lacks {f}");
    }
    let listing = run(Command::new("unzip").arg("-Z").arg(dist.join(&zip_name)));
    assert!(
        listing.contains("-rwxr-xr-x") && listing.contains(&format!("{NAME}_v{VERSION}")),
        "{listing}"
    );
    let manifest: Json = serde_json::from_str(
        &std::fs::read_to_string(dist.join(format!("{NAME}_{VERSION}_manifest.json")))
            .expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(
        manifest["metadata"]["protocol_versions"],
        serde_json::json!(["6.0"])
    );
    run(Command::new("sha256sum")
        .args(["--check", "--strict", &sums_name])
        .current_dir(&dist));
    run(Command::new("gpg")
        .env("GNUPGHOME", tmp.path().join("gnupg"))
        .arg("--verify")
        .arg(dist.join(format!("{sums_name}.sig")))
        .arg(dist.join(&sums_name)));

    // Reproducible: packing the same binary again gives the same checksums.
    let again = tmp.path().join("again");
    release(&again, None);
    let sums = std::fs::read_to_string(dist.join(&sums_name)).expect("SHA256SUMS");
    assert_eq!(
        sums,
        std::fs::read_to_string(again.join(&sums_name)).expect("SHA256SUMS"),
        "two packings of one binary differ"
    );

    // The packed layout of a filesystem mirror: HOSTNAME/NAMESPACE/TYPE/<zip>.
    let mirror = tmp.path().join("mirror");
    let provider = mirror.join("registry.terraform.io/expel-io/expel");
    std::fs::create_dir_all(&provider).expect("mirror dir");
    std::fs::copy(dist.join(&zip_name), provider.join(&zip_name)).expect("copy zip");

    let mut w = Workdir::from_example("quickstart", &stack);
    let main = std::fs::read_to_string(w.dir.path().join("main.tf")).expect("main.tf");
    assert!(main.contains("version = \"~> 0.1\""), "{main}");
    w.use_cli_config(&format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/expel-io/expel\"]\n  }}\n}}\n",
        mirror.display()
    ));
    let started = Instant::now();
    let init = w.tf_expect(&["init", "-no-color", "-input=false"], 0);
    eprintln!(
        "terraform init from the mirror: {} ms",
        started.elapsed().as_millis()
    );
    assert!(
        init.stdout
            .contains(&format!("Installed expel-io/expel v{VERSION}")),
        "{}",
        init.stdout
    );
    assert!(
        !init.all().contains("Provider development overrides"),
        "{}",
        init.all()
    );

    w.tf_expect(
        &[
            "providers",
            "lock",
            "-no-color",
            &format!("-fs-mirror={}", mirror.display()),
            "-platform=linux_amd64",
        ],
        0,
    );
    // A filesystem mirror gives Terraform no signed checksums, so the lock file holds the
    // package's h1: hash only (zh: hashes come from a registry's signed SHA256SUMS); it is the
    // hash of the zip that SHA256SUMS lists.
    let lock = std::fs::read_to_string(w.dir.path().join(".terraform.lock.hcl")).expect("lock");
    assert!(
        lock.contains(&format!("version     = \"{VERSION}\"")),
        "{lock}"
    );
    assert!(lock.contains("constraints = \"~> 0.1\""), "{lock}");
    let zip_sha = run(Command::new("sha256sum").arg(provider.join(&zip_name)));
    let zip_sha = zip_sha.split_whitespace().next().expect("sha256sum");
    assert!(sums.contains(&format!("{zip_sha}  {zip_name}")), "{sums}");
    let h1 = h1_of_zip(&provider.join(&zip_name));
    assert!(
        lock.contains(&format!("\"{h1}\"")),
        "lock lacks {h1}:\n{lock}"
    );

    w.tf_expect(PLAN, 2);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
}
