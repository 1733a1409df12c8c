//! The tfplugin6 service driven the way Terraform drives it, over the real binary's socket
//! (plaintext: no PLUGIN_CLIENT_CERT), with DynamicValues in MessagePack.
mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{plaintext_channel, Plugin};
use expel_provider::resources::config;
use pb::attribute_path::step::Selector;
use pb::provider_client::ProviderClient;
use tfplugin::proto::tfplugin6 as pb;
use tfplugin::value::{decode_msgpack, encode_msgpack, Type, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::transport::Channel;

const ORG: &str = "2a0a5e3c-6a4e-4b59-9d0c-2a8c8c8f2e10";

// ---------------------------------------------------------------------------------------
// Helpers

struct Session {
    plugin: Plugin,
    client: ProviderClient<Channel>,
}

/// Launches the provider as Terraform does (no AutoMTLS) with `env`, and connects.
async fn session(env: &[(&str, &str)]) -> Session {
    let (plugin, hs) = Plugin::start(env).await;
    hs.assert_terraform_shape();
    assert_eq!(hs.cert, "", "plaintext");
    let channel = plaintext_channel(&hs.addr).await.expect("connect");
    Session {
        plugin,
        client: ProviderClient::new(channel),
    }
}

fn dv(v: &Value, ty: &Type) -> pb::DynamicValue {
    pb::DynamicValue {
        msgpack: encode_msgpack(v, ty).expect("encode"),
        json: vec![],
    }
}

/// A value of an object type with every attribute present: null unless given in `set`
/// (nested single blocks are null too, as Terraform sends absent blocks).
fn object(ty: &Type, set: &[(&str, &str)]) -> Value {
    let Type::Object(attrs) = ty else {
        panic!("not an object type: {ty}")
    };
    for (k, _) in set {
        assert!(attrs.contains_key(*k), "no attribute {k} in {ty}");
    }
    Value::Object(
        attrs
            .keys()
            .map(|k| {
                let v = set
                    .iter()
                    .find(|(n, _)| n == k)
                    .map_or(Value::Null, |(_, v)| Value::string(*v));
                (k.clone(), v)
            })
            .collect(),
    )
}

fn provider_config(set: &[(&str, &str)]) -> pb::DynamicValue {
    let ty = config::schema().ty();
    dv(&object(&ty, set), &ty)
}

/// The type the server decodes `expel_organization` with (id, name, and whatever is added).
fn org_ty() -> Type {
    use tfplugin::provider::DataSource;
    expel_provider::resources::data_sources::organization::OrganizationDataSource
        .schema()
        .ty()
}

fn path(d: &pb::Diagnostic) -> Vec<String> {
    d.attribute
        .iter()
        .flat_map(|p| &p.steps)
        .map(|s| match &s.selector {
            Some(Selector::AttributeName(a)) => a.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn is_error(d: &pb::Diagnostic) -> bool {
    d.severity == pb::diagnostic::Severity::Error as i32
}

fn errors(ds: &[pb::Diagnostic]) -> Vec<&pb::Diagnostic> {
    ds.iter().filter(|d| is_error(d)).collect()
}

/// The object type of a schema block as Terraform sees it on the wire.
fn wire_type(b: &pb::schema::Block) -> Type {
    let mut attrs: Vec<(String, Type)> = b
        .attributes
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                Type::from_json_bytes(&a.r#type).expect("type JSON"),
            )
        })
        .collect();
    for n in &b.block_types {
        let inner = wire_type(n.block.as_ref().expect("nested block"));
        let ty = match pb::schema::nested_block::NestingMode::try_from(n.nesting) {
            Ok(pb::schema::nested_block::NestingMode::Single) => inner,
            Ok(pb::schema::nested_block::NestingMode::List) => Type::list(inner),
            Ok(pb::schema::nested_block::NestingMode::Set) => Type::set(inner),
            other => panic!("nesting {other:?}"),
        };
        attrs.push((n.type_name.clone(), ty));
    }
    Type::object(attrs)
}

async fn call_soc_email(
    client: &mut ProviderClient<Channel>,
    name: &str,
) -> pb::call_function::Response {
    client
        .call_function(pb::call_function::Request {
            name: "soc_email".into(),
            arguments: vec![dv(&Value::string(name), &Type::String)],
        })
        .await
        .expect("CallFunction")
        .into_inner()
}

fn function_result(r: &pb::call_function::Response) -> String {
    assert!(r.error.is_none(), "{:?}", r.error);
    let v = decode_msgpack(&r.result.as_ref().expect("result").msgpack, &Type::String)
        .expect("a msgpack string");
    v.as_str().expect("string").to_string()
}

/// (request line, Authorization header, User-Agent header)
type Seen = (String, Option<String>, Option<String>);

/// A tiny Workbench: `GET /api/v2/organizations/<ORG>` with `Authorization: Bearer k`
/// answers the organization; a wrong key gets a JSON:API 401; anything else 404.
struct FakeWorkbench {
    url: String,
    /// Every request.
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn fake_workbench() -> FakeWorkbench {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 2048];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).into_owned();
                let mut lines = text.split("\r\n");
                let line = lines.next().unwrap_or_default().to_string();
                let headers: Vec<(&str, &str)> = lines.filter_map(|h| h.split_once(':')).collect();
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_string())
                };
                let auth = header("authorization");
                log.lock()
                    .unwrap()
                    .push((line.clone(), auth.clone(), header("user-agent")));
                let target = line.split(' ').nth(1).unwrap_or_default();
                let path = target.split('?').next().unwrap_or_default();
                let (status, body) = if line.starts_with("GET ")
                    && path == format!("/api/v2/organizations/{ORG}")
                {
                    if auth.as_deref() == Some("Bearer k") {
                        let doc = serde_json::json!({"data": {"type": "organizations", "id": ORG, "attributes": {"name": "Acme Corp"}}});
                        ("200 OK", doc)
                    } else {
                        let doc = serde_json::json!({"errors": [{"status": "401", "title": "Unauthorized", "detail": "invalid API key"}]});
                        ("401 Unauthorized", doc)
                    }
                } else {
                    let doc =
                        serde_json::json!({"errors": [{"status": "404", "title": "Not Found"}]});
                    ("404 Not Found", doc)
                };
                let body = body.to_string();
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/vnd.api+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    FakeWorkbench { url, seen }
}

async fn configured_session(wb: &FakeWorkbench, key: &str) -> Session {
    let mut s = session(&[
        ("EXPEL_WORKBENCH_URL", wb.url.as_str()),
        ("EXPEL_API_KEY", key),
        ("EXPEL_ORGANIZATION_ID", ORG),
    ])
    .await;
    let r = s
        .client
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.11.0".into(),
            config: Some(provider_config(&[])),
            client_capabilities: None,
        })
        .await
        .expect("ConfigureProvider")
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    s
}

async fn read_organization(s: &mut Session) -> pb::read_data_source::Response {
    s.client
        .read_data_source(pb::read_data_source::Request {
            type_name: "expel_organization".into(),
            config: Some(dv(&object(&org_ty(), &[]), &org_ty())),
            ..Default::default()
        })
        .await
        .expect("ReadDataSource")
        .into_inner()
}

// ---------------------------------------------------------------------------------------
// Tests

/// GetProviderSchema -> ValidateProviderConfig -> ConfigureProvider ->
/// ValidateDataResourceConfig -> ReadDataSource -> CallFunction, as `terraform plan` does.
#[tokio::test]
async fn terraform_sequence_reads_the_organization_and_calls_soc_email() {
    let wb = fake_workbench().await;
    let mut s = session(&[
        ("EXPEL_WORKBENCH_URL", wb.url.as_str()),
        ("EXPEL_API_KEY", "k"),
        ("EXPEL_ORGANIZATION_ID", ORG),
    ])
    .await;
    let c = &mut s.client;

    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner();
    let provider_block = schema
        .provider
        .as_ref()
        .and_then(|p| p.block.as_ref())
        .unwrap();
    assert_eq!(
        wire_type(provider_block),
        config::schema().ty(),
        "the announced provider schema is the type the server decodes with"
    );
    let org_block = schema.data_source_schemas["expel_organization"]
        .block
        .as_ref()
        .unwrap();
    assert_eq!(wire_type(org_block), org_ty());
    let Type::Object(org_attrs) = org_ty() else {
        unreachable!()
    };
    assert!(org_attrs.contains_key("id") && org_attrs.contains_key("name"));

    let v = c
        .validate_provider_config(pb::validate_provider_config::Request {
            config: Some(provider_config(&[])),
        })
        .await
        .expect("ValidateProviderConfig")
        .into_inner();
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);

    let r = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.11.0".into(),
            config: Some(provider_config(&[])),
            client_capabilities: None,
        })
        .await
        .expect("ConfigureProvider")
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);

    let v = c
        .validate_data_resource_config(pb::validate_data_resource_config::Request {
            type_name: "expel_organization".into(),
            config: Some(dv(&object(&org_ty(), &[]), &org_ty())),
        })
        .await
        .expect("ValidateDataResourceConfig")
        .into_inner();
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);

    let r = read_organization(&mut s).await;
    assert!(
        r.diagnostics.is_empty(),
        "{:?}; stderr: {}",
        r.diagnostics,
        s.plugin.stderr()
    );
    let state = decode_msgpack(&r.state.expect("state").msgpack, &org_ty()).expect("decode state");
    assert_eq!(state.get("id").and_then(Value::as_str), Some(ORG));
    let name = state.get("name").and_then(Value::as_str).expect("name");
    assert_eq!(name, "Acme Corp");
    assert_eq!(
        wb.seen.lock().unwrap().as_slice(),
        [(
            format!("GET /api/v2/organizations/{ORG} HTTP/1.1"),
            Some("Bearer k".to_string()),
            Some(format!(
                "terraform-provider-expel/{}",
                env!("CARGO_PKG_VERSION")
            ))
        )],
        "one authenticated request for the configured organization, naming this release"
    );

    let f = call_soc_email(&mut s.client, name).await;
    assert_eq!(function_result(&f), "soc+acme_corp@expel.io");
}

#[tokio::test]
async fn validate_provider_config_points_at_the_bad_attributes() {
    let mut s = session(&[]).await;
    let r = s
        .client
        .validate_provider_config(pb::validate_provider_config::Request {
            config: Some(provider_config(&[
                ("workbench_url", "ftp://x"),
                ("organization_id", "nope"),
            ])),
        })
        .await
        .expect("ValidateProviderConfig")
        .into_inner();
    assert!(r.diagnostics.iter().all(is_error), "{:?}", r.diagnostics);
    let paths: BTreeSet<Vec<String>> = r.diagnostics.iter().map(path).collect();
    let want: BTreeSet<Vec<String>> =
        [vec!["workbench_url".into()], vec!["organization_id".into()]].into();
    assert_eq!(paths, want, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics.len(), 2, "{:?}", r.diagnostics);

    let ok = s
        .client
        .validate_provider_config(pb::validate_provider_config::Request {
            config: Some(provider_config(&[
                ("workbench_url", "https://workbench.example.com"),
                ("organization_id", ORG),
                ("api_key", "k"),
            ])),
        })
        .await
        .expect("ValidateProviderConfig")
        .into_inner();
    assert!(ok.diagnostics.is_empty(), "{:?}", ok.diagnostics);
}

#[tokio::test]
async fn configure_without_api_key_names_the_attribute_and_the_variable() {
    let mut s = session(&[]).await;
    let r = s
        .client
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.11.0".into(),
            config: Some(provider_config(&[])),
            client_capabilities: None,
        })
        .await
        .expect("ConfigureProvider")
        .into_inner();
    let errs = errors(&r.diagnostics);
    assert_eq!(errs.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(path(errs[0]), ["api_key"]);
    assert!(errs[0].detail.contains("EXPEL_API_KEY"), "{:?}", errs[0]);

    // Not configured: data sources answer with a diagnostic, not a crash or gRPC error.
    let r = read_organization(&mut s).await;
    assert!(r.state.is_none());
    assert_eq!(errors(&r.diagnostics).len(), 1, "{:?}", r.diagnostics);
    assert!(
        r.diagnostics[0].summary.contains("not configured"),
        "{:?}",
        r.diagnostics
    );
}

#[tokio::test]
async fn soc_email_result_and_argument_error() {
    let mut s = session(&[]).await;
    let ok = call_soc_email(&mut s.client, "Acme Corp").await;
    assert_eq!(function_result(&ok), "soc+acme_corp@expel.io");

    let bad = call_soc_email(&mut s.client, " -- ").await;
    assert!(bad.result.is_none(), "{bad:?}");
    let e = bad.error.expect("FunctionError");
    assert_eq!(e.function_argument, Some(0), "{e:?}");
    assert!(!e.text.is_empty());
}

#[tokio::test]
async fn read_organization_with_a_wrong_key_reports_401() {
    let wb = fake_workbench().await;
    let mut s = configured_session(&wb, "wrong").await;
    let r = read_organization(&mut s).await;
    assert!(r.state.is_none(), "no state on error");
    let errs = errors(&r.diagnostics);
    assert_eq!(errs.len(), 1, "{:?}", r.diagnostics);
    assert!(
        errs[0].detail.contains("401") || errs[0].summary.contains("401"),
        "{:?}",
        errs[0]
    );
    assert!(
        !errs[0].detail.contains("wrong"),
        "the key must not leak: {:?}",
        errs[0]
    );
    assert_eq!(wb.seen.lock().unwrap().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn unknown_resource_types_get_error_diagnostics_not_grpc_errors() {
    let mut s = session(&[]).await;
    let ty = Type::object([("id", Type::String)]);
    let state = dv(&Value::object([("id", Value::string("x"))]), &ty);

    let r = s
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "expel_nonexistent".into(),
            current_state: Some(state.clone()),
            private: b"keep".to_vec(),
            ..Default::default()
        })
        .await
        .expect("ReadResource answers")
        .into_inner();
    assert_eq!(errors(&r.diagnostics).len(), 1, "{:?}", r.diagnostics);
    assert!(r.diagnostics[0].detail.contains("expel_nonexistent"));

    let r = s
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "expel_nonexistent".into(),
            prior_state: Some(state.clone()),
            proposed_new_state: Some(state.clone()),
            config: Some(state.clone()),
            ..Default::default()
        })
        .await
        .expect("PlanResourceChange answers")
        .into_inner();
    assert_eq!(errors(&r.diagnostics).len(), 1, "{:?}", r.diagnostics);

    let r = s
        .client
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: "expel_nonexistent".into(),
            version: 0,
            raw_state: Some(pb::RawState {
                json: br#"{"id":"x"}"#.to_vec(),
                flatmap: Default::default(),
            }),
        })
        .await
        .expect("UpgradeResourceState answers")
        .into_inner();
    assert!(r.upgraded_state.is_none());
    assert_eq!(errors(&r.diagnostics).len(), 1, "{:?}", r.diagnostics);

    let r = s
        .client
        .validate_data_resource_config(pb::validate_data_resource_config::Request {
            type_name: "expel_nonexistent".into(),
            config: Some(state),
        })
        .await
        .expect("ValidateDataResourceConfig answers")
        .into_inner();
    assert_eq!(errors(&r.diagnostics).len(), 1, "{:?}", r.diagnostics);
}

#[tokio::test]
async fn stop_provider_keeps_the_server_answering() {
    let mut s = session(&[]).await;
    let r = s
        .client
        .stop_provider(pb::stop_provider::Request {})
        .await
        .expect("StopProvider")
        .into_inner();
    assert_eq!(r.error, "");

    let schema = s
        .client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema after StopProvider")
        .into_inner();
    assert!(schema.provider.is_some());
    // Calls after the stop run normally (not cancelled by the old stop token).
    let f = call_soc_email(&mut s.client, "Acme Corp").await;
    assert_eq!(function_result(&f), "soc+acme_corp@expel.io");
    assert!(
        s.plugin.child.try_wait().unwrap().is_none(),
        "still running"
    );
}

#[tokio::test]
async fn concurrent_function_calls_all_succeed() {
    let s = session(&[]).await;
    // All 20 are in flight at once, on one connection (HTTP/2 streams), as Terraform does.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut c = s.client.clone();
        set.spawn(async move {
            let r = call_soc_email(&mut c, &format!("Org {i}")).await;
            (i, function_result(&r))
        });
    }
    let mut seen = BTreeSet::new();
    while let Some(r) = set.join_next().await {
        let (i, email) = r.expect("call task");
        assert_eq!(
            email,
            format!("soc+org_{i}@expel.io"),
            "each answer is its own"
        );
        seen.insert(i);
    }
    assert_eq!(seen.len(), 20);
}

#[tokio::test]
async fn the_version_is_printed_and_is_the_first_log_line() {
    let out = std::process::Command::new(common::BIN)
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "terraform-provider-expel {} (Terraform plugin protocol 6)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let (p, _hs) = Plugin::start(&[("TF_LOG", "info")]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !p.stderr().contains('\n') && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let log = p.stderr();
    let first: serde_json::Value =
        serde_json::from_str(log.lines().next().unwrap_or_default()).expect("an hclog JSON line");
    assert_eq!(
        first["@message"], "terraform-provider-expel starting",
        "{log}"
    );
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"), "{log}");
    assert_eq!(first["protocol"], "6", "{log}");
    drop(p);
}
