//! The go-plugin handshake and AutoMTLS, checked against the real binary launched the way
//! Terraform launches it: magic cookie, PLUGIN_PROTOCOL_VERSIONS and a go-plugin-shaped
//! client certificate (ECDSA P-521/SHA-512, self-signed CA) in PLUGIN_CLIENT_CERT.
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::{endpoint, plaintext_channel, Handshake, Plugin, DEADLINE};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};
use tfplugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use tfplugin::proto::plugin::Empty;
use tfplugin::proto::tfplugin6::provider_client::ProviderClient;
use tfplugin::proto::tfplugin6::{get_provider_schema, Schema};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

// ---------------------------------------------------------------------------------------
// A go-plugin client: its certificate, and a rustls client trusting only the server's.

/// A certificate made like go-plugin's `generateCert` (mtls.go): ECDSA P-521 signed with
/// SHA-512, self-signed, IsCA, CN/SAN localhost, O HashiCorp, EKU client+server auth.
struct GoCert {
    pem: String,
    der: CertificateDer<'static>,
    key: Vec<u8>,
}

fn go_plugin_cert() -> GoCert {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("P-521 key");
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    p.distinguished_name
        .push(DnType::OrganizationName, "HashiCorp");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = p.self_signed(&key).expect("self-signed");
    GoCert {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: key.serialize_der(),
    }
}

/// The client certificate really has the shape that trips webpki (pitfall 1b), so the
/// tests below exercise what Terraform sends.
fn assert_go_plugin_shape(c: &GoCert) {
    let (_, x) = X509Certificate::from_der(&c.der).expect("parse client cert");
    assert_eq!(
        x.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512"
    );
    let curve = x
        .public_key()
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    assert_eq!(curve.as_deref(), Some("1.3.132.0.35"), "secp521r1");
    assert!(x.is_ca(), "go-plugin's client certificate is a CA");
    assert_eq!(x.subject(), x.issuer(), "self-signed");
}

/// Terraform's side of the trust: the server certificate from the handshake is the only
/// root, and the name must be `localhost` (go-plugin sets ServerName "localhost").
///
/// Go's x509 accepts a root that is also the leaf; webpki refuses a CA certificate as an
/// end entity (CaUsedAsEndEntity), so this compares the DER and checks the name itself,
/// and verifies the handshake signatures properly.
#[derive(Debug)]
struct ExactServerCert {
    expected: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ExactServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() != self.expected.as_ref() || !intermediates.is_empty() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ));
        }
        let name_ok = matches!(server_name, ServerName::DnsName(n) if n.as_ref() == "localhost")
            && dns_names(end_entity).iter().any(|n| n == "localhost");
        if !name_ok {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok((_, x)) = X509Certificate::from_der(der) else {
        return vec![];
    };
    let Ok(Some(san)) = x.subject_alternative_name() else {
        return vec![];
    };
    san.value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

fn client_config(
    server_der: &[u8],
    client: Option<&GoCert>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(ExactServerCert {
        expected: CertificateDer::from(server_der.to_vec()),
        provider: provider.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                vec![c.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key.clone())),
            )
            .expect("client auth cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

async fn tls_connect(
    socket: &Path,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<UnixStream>> {
    let stream = UnixStream::connect(socket).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
}

/// A tonic channel over TLS on the unix socket, as go-plugin's client dials it.
async fn tls_channel(
    socket: &Path,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    endpoint()
        .connect_with_connector(tower::service_fn(move |_| {
            let (socket, config) = (socket.clone(), config.clone());
            async move { Ok::<_, std::io::Error>(TokioIo::new(tls_connect(&socket, config).await?)) }
        }))
        .await
}

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    let r = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await?;
    Ok(r.into_inner().status)
}

/// Health/Check over a fresh TLS channel; Err(text) if connecting or the call fails.
async fn tls_health(socket: &Path, config: Arc<rustls::ClientConfig>) -> Result<i32, String> {
    let ch = tls_channel(socket, config)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    health(ch).await.map_err(|e| format!("rpc: {e:?}"))
}

/// The alert the server sends a TLS 1.3 client whose certificate it refuses. In TLS 1.3 the
/// client finishes its handshake before the server has judged its certificate, so the
/// refusal arrives on the first read.
async fn tls13_refusal(socket: &Path, config: Arc<rustls::ClientConfig>) -> rustls::Error {
    let mut s = match tls_connect(socket, config).await {
        Ok(s) => s,
        Err(e) => return rustls_error(e),
    };
    let mut buf = [0u8; 64];
    match tokio::time::timeout(DEADLINE, s.read(&mut buf))
        .await
        .expect("the server answers or closes")
    {
        Ok(n) => panic!("server accepted the connection (read {n} bytes instead of an alert)"),
        Err(e) => rustls_error(e),
    }
}

fn rustls_error(e: std::io::Error) -> rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
        .unwrap_or_else(|| panic!("not a TLS error: {e:?}"))
}

fn server_der(hs: &Handshake) -> Vec<u8> {
    assert!(!hs.cert.contains('='), "RawStdEncoding has no padding");
    assert!(
        hs.cert.len() > 50,
        "go-plugin ignores a cert field of <= 50 chars"
    );
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&hs.cert)
        .expect("the cert field is base64 (standard alphabet, no padding)")
}

/// What Go's client needs of the server certificate when it is the only root.
fn assert_server_cert_usable_by_go(der: &[u8]) {
    let (rest, x) = X509Certificate::from_der(der).expect("the cert field is a DER certificate");
    assert!(rest.is_empty(), "trailing bytes after the certificate");
    assert!(x.validity().is_valid(), "server certificate valid now");
    assert_eq!(x.subject(), x.issuer(), "self-signed");
    assert!(
        dns_names(der).iter().any(|n| n == "localhost"),
        "SAN localhost"
    );
    let eku = x
        .extended_key_usage()
        .expect("EKU parses")
        .map(|e| e.value.server_auth || e.value.any);
    assert_ne!(eku, Some(false), "EKU allows server auth");
}

async fn start_with_cert(cert: &GoCert) -> (Plugin, Handshake, Vec<u8>) {
    let (plugin, hs) = Plugin::start(&[("PLUGIN_CLIENT_CERT", cert.pem.as_str())]).await;
    hs.assert_terraform_shape();
    let der = server_der(&hs);
    (plugin, hs, der)
}

fn assert_expel_schema(r: &get_provider_schema::Response) {
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let provider: &Schema = r.provider.as_ref().expect("provider schema");
    let attrs: Vec<&str> = provider
        .block
        .as_ref()
        .expect("provider block")
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    for a in ["workbench_url", "api_key", "organization_id"] {
        assert!(attrs.contains(&a), "provider attribute {a} in {attrs:?}");
    }
    // Others may be added over time; these must stay.
    for d in ["expel_organization", "expel_plugins"] {
        assert!(r.data_source_schemas.contains_key(d), "data source {d}");
    }
    let f = r.functions.get("soc_email").expect("function soc_email");
    assert_eq!(f.parameters.len(), 1, "soc_email(org_name)");
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn terraform_client_cert_is_accepted_and_shutdown_exits_cleanly() {
    let cert = go_plugin_cert();
    assert_go_plugin_shape(&cert);
    let (mut plugin, hs, server) = start_with_cert(&cert).await;
    assert_server_cert_usable_by_go(&server);

    // TLS 1.2: the server judges the client certificate before its Finished, so a completed
    // handshake means accepted (and exercises the TLS 1.2 signature check of P-521).
    let s12 = tls_connect(&hs.addr, client_config(&server, Some(&cert), TLS12))
        .await
        .expect("TLS 1.2 handshake with Terraform's certificate");
    assert_eq!(s12.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
    drop(s12);

    // TLS 1.3 (what Go negotiates) through tonic, as go-plugin dials.
    let config = client_config(&server, Some(&cert), TLS13);
    let channel = tls_channel(&hs.addr, config)
        .await
        .expect("connect with Terraform's certificate");
    let status = health(channel.clone()).await.expect("Health/Check");
    assert_eq!(status, ServingStatus::Serving as i32, "service \"plugin\"");

    let schema = ProviderClient::new(channel.clone())
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner();
    assert_expel_schema(&schema);

    // go-plugin's Kill: Shutdown, close the connection, give the process 2 s to exit.
    GrpcControllerClient::new(channel.clone())
        .shutdown(Empty {})
        .await
        .expect("GRPCController/Shutdown");
    drop(channel);
    let status = plugin
        .wait_exit(Duration::from_secs(2))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no exit within 2 s of Shutdown; stderr: {}",
                plugin.stderr()
            )
        });
    assert_eq!(status.code(), Some(0), "stderr: {}", plugin.stderr());
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let cert = go_plugin_cert();
    let (plugin, hs, server) = start_with_cert(&cert).await;

    let r = tls_health(&hs.addr, client_config(&server, None, TLS13)).await;
    assert!(r.is_err(), "served a client with no certificate: {r:?}");

    let e = tls13_refusal(&hs.addr, client_config(&server, None, TLS13)).await;
    assert_eq!(
        e,
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        "TLS 1.3"
    );
    let e12 = tls_connect(&hs.addr, client_config(&server, None, TLS12))
        .await
        .map(|_| ())
        .expect_err("TLS 1.2 handshake without a certificate");
    assert_eq!(
        rustls_error(e12),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        "TLS 1.2"
    );

    // The refused clients did not take the server down.
    let ok = tls_health(&hs.addr, client_config(&server, Some(&cert), TLS13)).await;
    assert_eq!(ok, Ok(ServingStatus::Serving as i32), "{}", plugin.stderr());
}

#[tokio::test]
async fn client_with_another_certificate_is_refused() {
    let cert = go_plugin_cert();
    let other = go_plugin_cert();
    assert_go_plugin_shape(&other);
    assert_ne!(cert.der, other.der);
    let (plugin, hs, server) = start_with_cert(&cert).await;

    let r = tls_health(&hs.addr, client_config(&server, Some(&other), TLS13)).await;
    assert!(
        r.is_err(),
        "served a client with another certificate: {r:?}"
    );

    // ApplicationVerificationFailure from the server's verifier goes out as access_denied.
    let e = tls13_refusal(&hs.addr, client_config(&server, Some(&other), TLS13)).await;
    assert_eq!(
        e,
        rustls::Error::AlertReceived(AlertDescription::AccessDenied),
        "TLS 1.3"
    );
    let e12 = tls_connect(&hs.addr, client_config(&server, Some(&other), TLS12))
        .await
        .map(|_| ())
        .expect_err("TLS 1.2 handshake with another certificate");
    assert_eq!(
        rustls_error(e12),
        rustls::Error::AlertReceived(AlertDescription::AccessDenied),
        "TLS 1.2"
    );

    let ok = tls_health(&hs.addr, client_config(&server, Some(&cert), TLS13)).await;
    assert_eq!(ok, Ok(ServingStatus::Serving as i32), "{}", plugin.stderr());
}

#[tokio::test]
async fn without_client_cert_the_handshake_has_no_cert_and_serves_plaintext() {
    let (plugin, hs) = Plugin::start(&[]).await;
    hs.assert_terraform_shape();
    assert_eq!(hs.cert, "", "no PLUGIN_CLIENT_CERT: empty sixth field");

    let channel = plaintext_channel(&hs.addr)
        .await
        .expect("plaintext connect");
    let status = health(channel.clone()).await.expect("Health/Check");
    assert_eq!(status, ServingStatus::Serving as i32);
    let schema = ProviderClient::new(channel)
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .unwrap_or_else(|e| panic!("GetProviderSchema: {e}; stderr: {}", plugin.stderr()))
        .into_inner();
    assert_expel_schema(&schema);
}

#[tokio::test]
async fn without_magic_cookie_it_exits_1_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::command(dir.path());
    c.env("PLUGIN_PROTOCOL_VERSIONS", "5,6");
    let out = tokio::time::timeout(DEADLINE, c.output())
        .await
        .expect("exits promptly")
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("plugin"), "stderr: {stderr}");
    assert!(
        !stderr.trim_start().starts_with('{'),
        "a human message, not a log line: {stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no socket was created"
    );
}

#[tokio::test]
async fn debug_mode_prints_reattach_config_and_serves() {
    let mut plugin = Plugin::spawn(&[], &["--debug"], false);
    let line = loop {
        let l = plugin.read_line().await;
        if l.contains("TF_REATTACH_PROVIDERS=") {
            break l;
        }
    };
    let json = line
        .split_once("TF_REATTACH_PROVIDERS=")
        .map(|(_, v)| v.trim().trim_matches('\''))
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    let p = &v["registry.terraform.io/expel-io/expel"];
    assert_eq!(p["Protocol"], "grpc", "{v}");
    assert_eq!(p["ProtocolVersion"], 6, "{v}");
    assert_eq!(p["Pid"], plugin.child.id().unwrap(), "{v}");
    assert_eq!(p["Addr"]["Network"], "unix", "{v}");
    let addr = p["Addr"]["String"].as_str().expect("Addr.String");
    assert!(
        Path::new(addr).starts_with(plugin.socket_dir.path()),
        "{addr} honours PLUGIN_UNIX_SOCKET_DIR"
    );

    let channel = plaintext_channel(Path::new(addr))
        .await
        .expect("plaintext connect in --debug mode");
    let schema = ProviderClient::new(channel)
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .unwrap_or_else(|e| panic!("GetProviderSchema: {e}; stderr: {}", plugin.stderr()))
        .into_inner();
    assert_expel_schema(&schema);

    plugin.child.kill().await.expect("kill the debug server");
    assert!(plugin.wait_exit(DEADLINE).await.is_some());
}
