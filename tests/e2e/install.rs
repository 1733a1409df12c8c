//! Installed as a user installs a released provider: `scripts/release` packs the provider
//! (the debug binary the suite already built: no second build; the published artifacts are the
//! release profile's), and `terraform init` from a clean directory installs it with a version
//! constraint and no dev_overrides: from a filesystem mirror, and from a provider registry
//! served over HTTPS (tests/harness/registry.py) that gives Terraform the signed SHA256SUMS.
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// `scripts/release` packing the suite's binary as linux_amd64 and building `cross` beside it
/// (dev profile, with the toolchain already present: never an install from a test).
fn release(out: &Path, gnupg: Option<(&Path, &str)>, cross: &[&str]) -> String {
    let mut cmd = Command::new(repo_root().join("scripts/release"));
    cmd.arg("--binary")
        .arg(provider_dir().join(NAME))
        .arg("--out")
        .arg(out)
        .env_remove("EXPEL_RELEASE_GPG_KEY_ID");
    if !cross.is_empty() {
        cmd.args([
            "--profile",
            "dev",
            "--no-install",
            "--platforms",
            &cross.join(","),
        ]);
    }
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

/// The lock file's hashes of our provider.
fn lock_hashes(lock: &str) -> BTreeSet<String> {
    lock.lines()
        .map(|l| l.trim().trim_end_matches(',').trim_matches('"'))
        .filter(|h| h.starts_with("h1:") || h.starts_with("zh:"))
        .map(str::to_string)
        .collect()
}

/// Whether scripts/release can cross-build `platform` with what this machine has.
fn can_build(platform: &str) -> Result<(), String> {
    let out = Command::new(repo_root().join("scripts/release"))
        .args(["--can-build", platform])
        .output()
        .expect("run scripts/release --can-build");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(())
    } else {
        Err(said)
    }
}

/// tests/harness/registry.py serving `dist` over HTTPS on a free loopback port; stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Registry {
    fn start(dir: &Path, dist: &Path, public_key: &Path, key_id: &str) -> (Registry, PathBuf) {
        // A certificate for 127.0.0.1, made here and trusted through SSL_CERT_FILE (which Go's
        // crypto/x509, and so Terraform, reads on Linux).
        let tls = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("a certificate for 127.0.0.1");
        let cert = dir.join("registry-cert.pem");
        let key = dir.join("registry-key.pem");
        std::fs::write(&cert, tls.cert.pem()).expect("write the certificate");
        std::fs::write(&key, tls.signing_key.serialize_pem()).expect("write its key");
        let log = dir.join("registry.log");
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/harness/registry.py"))
            .arg("--dist")
            .arg(dist)
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--public-key")
            .arg(public_key)
            .args(["--key-id", key_id])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("registry log"))
            .spawn()
            .expect("start tests/harness/registry.py");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("registry stdout"))
            .read_line(&mut first)
            .expect("read the registry's port");
        let port = first
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "registry.py said {first:?}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        (Registry { child, port, log }, cert)
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).expect("registry log")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn released_zip_installs_from_a_filesystem_mirror_without_dev_overrides() {
    let stack = Stack::up();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dist = tmp.path().join("dist");
    let key = throwaway_key(&tmp.path().join("gnupg"));
    let log = release(&dist, Some((&tmp.path().join("gnupg"), &key)), &[]);
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
    release(&again, None, &[]);
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
    assert!(!lock.contains("zh:"), "{lock}");

    // The mirrored provider runs (the apply cycle is the registry test's, with the same zip).
    w.tf_expect(PLAN, 2);
}

#[test]
fn signed_release_installs_from_a_local_registry_with_zh_hashes_for_every_platform() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gnupg = tmp.path().join("gnupg");
    let key = throwaway_key(&gnupg);
    // linux_arm64 is cross-built only where the cross toolchain already is (scripts/release
    // installs it for a release; CI's fresh machine lacks it): then the lock covers both
    // platforms, else linux_amd64 alone, and the test says why.
    let cross: &[&str] = match can_build("linux_arm64") {
        Ok(()) => &["linux_arm64"],
        Err(why) => {
            eprintln!("locking linux_amd64 only: {why}");
            &[]
        }
    };
    let dist = tmp.path().join("dist");
    release(&dist, Some((&gnupg, &key)), cross);
    let mut platforms = vec!["linux_amd64"];
    platforms.extend_from_slice(cross);
    if cross.contains(&"linux_arm64") {
        let zip = dist.join(format!("{NAME}_{VERSION}_linux_arm64.zip"));
        let bin = tmp.path().join("arm64");
        run(Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&bin));
        let elf = std::fs::read(bin.join(format!("{NAME}_v{VERSION}"))).expect("arm64 binary");
        // ELF, 64-bit, little-endian, e_machine EM_AARCH64 (183).
        assert_eq!(
            &elf[..6],
            b"\x7fELF\x02\x01",
            "not a 64-bit little-endian ELF"
        );
        assert_eq!(
            u16::from_le_bytes([elf[18], elf[19]]),
            183,
            "not an aarch64 binary"
        );
    }

    let public_key = tmp.path().join("release-key.asc");
    let exported = Command::new("gpg")
        .env("GNUPGHOME", &gnupg)
        .args(["--armor", "--export", &key])
        .output()
        .expect("gpg --export");
    assert!(exported.status.success(), "gpg --export failed");
    std::fs::write(&public_key, exported.stdout).expect("write the public key");
    // Terraform names a key by its 64-bit id: the fingerprint's last 16 hex digits.
    let key_id = &key[key.len() - 16..];
    let (registry, cert) = Registry::start(tmp.path(), &dist, &public_key, key_id);

    let stack = Stack::up();
    let mut w = Workdir::from_example("quickstart", &stack);
    // The `host` block replaces service discovery of registry.terraform.io (the provider's
    // source host) with our registry; no provider_installation block: direct installation.
    w.use_cli_config(&format!(
        "host \"registry.terraform.io\" {{\n  services = {{\n    \"providers.v1\" = \"https://127.0.0.1:{}/v1/providers/\"\n  }}\n}}\n",
        registry.port
    ));
    w.set_env("SSL_CERT_FILE", Some(&cert.display().to_string()));
    let started = Instant::now();
    let init = w.tf_expect(&["init", "-no-color", "-input=false"], 0);
    eprintln!(
        "terraform init from the local registry: {} ms",
        started.elapsed().as_millis()
    );
    // Terraform checked the SHA256SUMS signature against the key the registry gave it.
    assert!(
        init.stdout.contains(&format!(
            "Installed expel-io/expel v{VERSION} (self-signed, key ID {key_id})"
        )),
        "{}",
        init.stdout
    );
    assert!(!init.all().contains("unauthenticated"), "{}", init.all());

    let mut lock_args = vec!["providers", "lock", "-no-color"];
    let flags: Vec<String> = platforms.iter().map(|p| format!("-platform={p}")).collect();
    lock_args.extend(flags.iter().map(String::as_str));
    let locked = w.tf_expect(&lock_args, 0);
    for p in &platforms {
        assert!(
            locked.stdout.contains(&format!(
                "Retrieved expel-io/expel {VERSION} for {p} (self-signed, key ID {key_id})"
            )),
            "{}",
            locked.stdout
        );
        assert!(
            registry
                .requests()
                .contains(&format!("GET /files/{NAME}_{VERSION}_{p}.zip 200")),
            "{}",
            registry.requests()
        );
    }

    // zh: hashes are the signed SHA256SUMS lines, all of them (Terraform records every line
    // of a verified checksums file); h1: hashes are of each locked platform's package.
    let lock = std::fs::read_to_string(w.dir.path().join(".terraform.lock.hcl")).expect("lock");
    assert!(
        lock.contains(&format!("version     = \"{VERSION}\"")),
        "{lock}"
    );
    let hashes = lock_hashes(&lock);
    let sums = std::fs::read_to_string(dist.join(format!("{NAME}_{VERSION}_SHA256SUMS")))
        .expect("SHA256SUMS");
    let zh: BTreeSet<String> = hashes
        .iter()
        .filter(|h| h.starts_with("zh:"))
        .cloned()
        .collect();
    let signed: BTreeSet<String> = sums
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|h| format!("zh:{h}"))
        .collect();
    assert_eq!(zh, signed, "lock:\n{lock}\nSHA256SUMS:\n{sums}");
    for p in &platforms {
        let zip_name = format!("{NAME}_{VERSION}_{p}.zip");
        assert!(
            sums.contains(&zip_name),
            "SHA256SUMS lacks {zip_name}:\n{sums}"
        );
        let h1 = h1_of_zip(&dist.join(&zip_name));
        assert!(hashes.contains(&h1), "lock lacks {p}'s {h1}:\n{lock}");
    }

    w.tf_expect(PLAN, 2);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
}
