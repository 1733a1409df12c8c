//! Role sessions: the credentials of the provider's `aws.assume_role` and
//! `aws.assume_role_with_web_identity`, from STS AssumeRole and AssumeRoleWithWebIdentity
//! with every parameter hashicorp/aws passes (duration, session policy and policy ARNs,
//! session tags and transitive keys, source identity). The SDK's own `AssumeRoleProvider`
//! has no transitive tag keys nor source identity, and its web identity provider reads a
//! file only, so both calls are made here. The SDK caches what they return until shortly
//! before it expires (the identity cache every client has), so STS is asked once per
//! session, not per call.
//!
//! AssumeRoleWithWebIdentity is not signed (STS API reference: "Calling
//! AssumeRoleWithWebIdentity does not require the use of AWS security credentials"), so no
//! other credentials are needed for it. The token is a secret: it is held as [`Secret`] (so
//! redaction blanks it in every log line and error), read again from its file for each new
//! session (CI systems and Kubernetes rotate the file), and never logged.
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;

use super::Secret;

/// What both calls may restrict a session by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionLimits {
    /// DurationSeconds; STS's default (1 h) when unset.
    pub duration: Option<Duration>,
    /// An inline session policy (JSON).
    pub policy: Option<String>,
    /// Managed session policies.
    pub policy_arns: Vec<String>,
}

/// `aws.assume_role`.
#[derive(Clone, Debug, PartialEq)]
pub struct AssumeRoleSpec {
    pub role_arn: String,
    pub external_id: Option<Secret>,
    pub session_name: String,
    pub limits: SessionLimits,
    /// Session tags, sorted by key.
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<String>,
}

/// Where the web identity token comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum WebToken {
    Value(Secret),
    File(PathBuf),
}

/// `aws.assume_role_with_web_identity`.
#[derive(Clone, Debug, PartialEq)]
pub struct WebIdentitySpec {
    pub role_arn: String,
    pub token: WebToken,
    pub session_name: String,
    pub limits: SessionLimits,
}

/// Which call makes the session.
#[derive(Debug)]
enum Call {
    Assume(AssumeRoleSpec),
    WebIdentity(WebIdentitySpec),
}

/// A credentials provider that opens a role session. For AssumeRole, `sts` signs with the
/// source credentials (the default chain, or a web identity session).
#[derive(Debug)]
pub struct RoleSession {
    sts: aws_sdk_sts::Client,
    call: Call,
}

const PROVIDER: &str = "terraform-provider-expel role session";

impl RoleSession {
    pub fn assume(sts: aws_sdk_sts::Client, spec: AssumeRoleSpec) -> Self {
        RoleSession {
            sts,
            call: Call::Assume(spec),
        }
    }

    pub fn web_identity(sts: aws_sdk_sts::Client, spec: WebIdentitySpec) -> Self {
        RoleSession {
            sts,
            call: Call::WebIdentity(spec),
        }
    }

    async fn open(&self) -> Result<Credentials, CredentialsError> {
        let creds = match &self.call {
            Call::Assume(s) => {
                let mut req = self
                    .sts
                    .assume_role()
                    .role_arn(&s.role_arn)
                    .role_session_name(&s.session_name)
                    .set_duration_seconds(seconds(&s.limits))
                    .set_policy(s.limits.policy.clone())
                    .set_policy_arns(policy_arns(&s.limits))
                    .set_external_id(s.external_id.as_ref().map(|x| x.expose().to_string()))
                    .set_source_identity(s.source_identity.clone());
                for (k, v) in &s.tags {
                    let tag = aws_sdk_sts::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(CredentialsError::invalid_configuration)?;
                    req = req.tags(tag);
                }
                for k in &s.transitive_tag_keys {
                    req = req.transitive_tag_keys(k);
                }
                req.send()
                    .await
                    .map_err(|e| failed("AssumeRole", &s.role_arn, e))?
                    .credentials
            }
            Call::WebIdentity(s) => {
                let token = match &s.token {
                    WebToken::Value(t) => t.clone(),
                    WebToken::File(path) => read_token(path)?,
                };
                self.sts
                    .assume_role_with_web_identity()
                    .role_arn(&s.role_arn)
                    .role_session_name(&s.session_name)
                    .web_identity_token(token.expose())
                    .set_duration_seconds(seconds(&s.limits))
                    .set_policy(s.limits.policy.clone())
                    .set_policy_arns(policy_arns(&s.limits))
                    .send()
                    .await
                    .map_err(|e| failed("AssumeRoleWithWebIdentity", &s.role_arn, e))?
                    .credentials
            }
        };
        let c = creds.ok_or_else(|| {
            CredentialsError::unhandled("STS answered without credentials".to_string())
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            PROVIDER,
        ))
    }
}

impl ProvideCredentials for RoleSession {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.open())
    }
}

fn seconds(l: &SessionLimits) -> Option<i32> {
    l.duration
        .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
}

fn policy_arns(l: &SessionLimits) -> Option<Vec<aws_sdk_sts::types::PolicyDescriptorType>> {
    (!l.policy_arns.is_empty()).then(|| {
        l.policy_arns
            .iter()
            .map(|a| {
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(a)
                    .build()
            })
            .collect()
    })
}

/// The token in `path`, without surrounding whitespace (files written by CI end in a newline).
fn read_token(path: &std::path::Path) -> Result<Secret, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok(Secret::new(t.trim())),
        Ok(_) => Err(CredentialsError::invalid_configuration(format!(
            "the web identity token file {} (`aws.assume_role_with_web_identity.web_identity_token_file`) is empty",
            path.display()
        ))),
        Err(e) => Err(CredentialsError::invalid_configuration(format!(
            "cannot read the web identity token file {} (`aws.assume_role_with_web_identity.web_identity_token_file`): {e}",
            path.display()
        ))),
    }
}

/// STS's refusal as a credentials error naming the call and the role; its text passes
/// through redaction (an echoed token would be blanked).
fn failed<E>(
    call: &str,
    role: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> CredentialsError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    let why = match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_string(),
        _ => aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
    };
    CredentialsError::provider_error(super::secret::redact(&format!(
        "STS {call} of {role} failed: {why}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_the_call_parameters() {
        let l = SessionLimits {
            duration: Some(Duration::from_secs(900)),
            policy: None,
            policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        };
        assert_eq!(seconds(&l), Some(900));
        assert_eq!(
            policy_arns(&l).expect("one")[0].arn(),
            Some("arn:aws:iam::aws:policy/ReadOnlyAccess")
        );
        assert_eq!(policy_arns(&SessionLimits::default()), None);
    }

    #[test]
    fn a_token_file_is_read_trimmed_and_an_empty_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "eyJhbGciOiJSUzI1NiJ9.token-value\n").unwrap();
        assert_eq!(
            read_token(&path).expect("read").expose(),
            "eyJhbGciOiJSUzI1NiJ9.token-value"
        );
        std::fs::write(&path, "\n").unwrap();
        let e = aws_smithy_types::error::display::DisplayErrorContext(
            read_token(&path).expect_err("empty"),
        )
        .to_string();
        assert!(e.contains("web_identity_token_file"), "{e}");
    }
}
