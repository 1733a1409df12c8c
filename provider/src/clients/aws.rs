//! AWS through aws-sdk-rust: one set of service clients built from the provider's `aws`
//! settings (region, profile, assume_role, per-service endpoints), the caller's location
//! (partition and account, from STS), and errors classified for the engine's retries and
//! worded for a person: one sentence with the call, AWS's code, message and request id; a
//! network failure said to be one, with its endpoint; a credentials failure with what the
//! chain tried.
use std::fmt;
use std::sync::RwLock;

use aws_config::BehaviorVersion;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use url::Url;

use super::retry::{RetryKind, Retryable};
use super::sts::{AssumeRoleSpec, RoleSession, WebIdentitySpec};

/// Where AWS calls land: read from STS, pinned in state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsLocation {
    pub partition: String,
    pub account_id: String,
    pub region: String,
}

/// Settings the clients are built from.
#[derive(Clone, Debug, Default)]
pub struct AwsClientSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// A role session opened with the credentials of the chain (or of `web_identity`).
    pub assume_role: Option<AssumeRoleSpec>,
    /// A role session opened with a web identity token: the source credentials.
    pub web_identity: Option<WebIdentitySpec>,
    /// Shared config and credentials files read instead of the default ones
    /// (`~/.aws/config`, `~/.aws/credentials`, or AWS_CONFIG_FILE and
    /// AWS_SHARED_CREDENTIALS_FILE); an empty list keeps the default of its kind.
    pub config_files: Vec<std::path::PathBuf>,
    pub credentials_files: Vec<std::path::PathBuf>,
    pub endpoints: Vec<(String, Url)>,
    /// How long one attempt of a call may take (the provider's `request_timeout`); the
    /// SDK's defaults when unset.
    pub request_timeout: Option<std::time::Duration>,
}

#[derive(Clone)]
pub struct AwsClients {
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sts: aws_sdk_sts::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub organizations: aws_sdk_organizations::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub region: Option<String>,
    /// Why the configured profile cannot work (it is in neither shared file), if it cannot.
    profile_problem: Option<String>,
}

/// Where each service's calls go, as errors name it: set when the clients are built (one
/// provider configuration per process, as Terraform runs them).
static ENDPOINTS: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

const SERVICES: &[&str] = &[
    "iam",
    "kms",
    "s3",
    "sqs",
    "sts",
    "cloudtrail",
    "organizations",
    "sns",
    "cloudformation",
];

fn endpoint_of(service: &str) -> String {
    ENDPOINTS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(s, _)| s == service)
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| format!("the AWS {service} endpoint"))
}

/// The shared files the SDK reads: the default ones (or AWS_CONFIG_FILE and
/// AWS_SHARED_CREDENTIALS_FILE) unless `config` or `credentials` lists others.
fn profile_files(
    config: &[std::path::PathBuf],
    credentials: &[std::path::PathBuf],
) -> aws_runtime::env_config::file::EnvConfigFiles {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    let mut b = EnvConfigFiles::builder()
        .include_default_config_file(config.is_empty())
        .include_default_credentials_file(credentials.is_empty());
    for f in config {
        b = b.with_file(EnvConfigFileKind::Config, f);
    }
    for f in credentials {
        b = b.with_file(EnvConfigFileKind::Credentials, f);
    }
    b.build()
}

/// Why `profile` cannot be used, when it is in neither the shared config nor the
/// credentials files (read as the SDK reads them: `config` and `credentials`, else
/// AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE in `env`, else the defaults).
async fn missing_profile(
    profile: &str,
    config: &[std::path::PathBuf],
    credentials: &[std::path::PathBuf],
    env: &aws_types::os_shim_internal::Env,
) -> Option<String> {
    let files = profile_files(config, credentials);
    let set = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        env,
        &files,
        Some(profile.to_string().into()),
    )
    .await;
    let found = set.as_ref().is_ok_and(|s| s.get_profile(profile).is_some());
    if found {
        return None;
    }
    let path = |listed: &[std::path::PathBuf], var: &str, default: &str| match listed {
        [] => env.get(var).unwrap_or_else(|_| default.into()),
        l => l
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    Some(format!(
        "AWS profile `{profile}` (from `aws.profile` or AWS_PROFILE) not found in {} or {}{}: check its spelling against the profiles there (`aws configure list-profiles`), or unset it to use the default credential chain",
        path(config, "AWS_CONFIG_FILE", "~/.aws/config"),
        path(credentials, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        match set {
            Err(e) => format!(" (they cannot be read: {e})"),
            Ok(_) => String::new(),
        }
    ))
}

/// Logs every AWS call at debug: service, operation, HTTP status (none when no answer came)
/// and milliseconds. Retries are the engine's, which logs them at warn.
#[derive(Debug)]
struct CallLog;

/// When the attempt being logged started.
#[derive(Debug, Clone)]
struct Started(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for Started {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(Started(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let meta = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>();
        let ms = cfg
            .load::<Started>()
            .map(|s| s.0.elapsed().as_millis() as u64);
        tracing::debug!(
            service = meta.map(|m| m.service()),
            operation = meta.map(|m| m.name()),
            status = context.response().map(|r| r.status().as_u16()),
            ms,
            "aws call"
        );
        Ok(())
    }
}

/// This provider and its version in the User-Agent of every AWS call
/// (`app/terraform-provider-expel-<version>`).
fn app_name() -> Option<aws_types::app_name::AppName> {
    aws_types::app_name::AppName::new(format!("terraform-provider-expel-{}", crate::VERSION)).ok()
}

impl AwsClients {
    pub async fn new(s: &AwsClientSettings) -> AwsClients {
        // One retry layer: the engine's (engine::retry) knows which answers to retry and for
        // how long; the SDK's standard retries would stack under it.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(a) = app_name() {
            loader = loader.app_name(a);
        }
        if let Some(r) = &s.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(p) = &s.profile {
            loader = loader.profile_name(p);
        }
        if !s.config_files.is_empty() || !s.credentials_files.is_empty() {
            loader = loader.profile_files(profile_files(&s.config_files, &s.credentials_files));
        }
        if let Some(t) = s.request_timeout {
            loader = loader.timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(t.min(std::time::Duration::from_secs(10)))
                    .operation_attempt_timeout(t)
                    .build(),
            );
        }
        let profile_problem = match &s.profile {
            Some(p) => {
                missing_profile(
                    p,
                    &s.config_files,
                    &s.credentials_files,
                    &aws_types::os_shim_internal::Env::real(),
                )
                .await
            }
            None => None,
        };
        let mut shared = loader.load().await;
        // The role sessions call the configured STS endpoint too (an emulator, a private
        // one). A web identity session gives the credentials an assume_role session starts
        // from, as in hashicorp/aws.
        let sts_of = |conf: &aws_types::SdkConfig| {
            let mut b = aws_sdk_sts::config::Builder::from(conf).interceptor(CallLog);
            if let Some((_, u)) = s.endpoints.iter().find(|(n, _)| n == "sts") {
                b = b.endpoint_url(u.as_str().trim_end_matches('/'));
            }
            aws_sdk_sts::Client::from_conf(b.build())
        };
        let with_session = |conf: aws_types::SdkConfig, session: RoleSession| {
            conf.into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(session),
                )
                .build()
        };
        if let Some(w) = &s.web_identity {
            let session = RoleSession::web_identity(sts_of(&shared), w.clone());
            shared = with_session(shared, session);
        }
        if let Some(a) = &s.assume_role {
            let session = RoleSession::assume(sts_of(&shared), a.clone());
            shared = with_session(shared, session);
        }
        let endpoint = |svc: &str| {
            s.endpoints
                .iter()
                .find(|(n, _)| n == svc)
                .map(|(_, u)| u.as_str().trim_end_matches('/').to_string())
        };
        *ENDPOINTS.write().unwrap_or_else(|e| e.into_inner()) = SERVICES
            .iter()
            .map(|svc| {
                let at = endpoint(svc).unwrap_or_else(|| match shared.region() {
                    Some(r) => format!("the AWS {svc} endpoint of {r}"),
                    None => format!("the AWS {svc} endpoint"),
                });
                (svc.to_string(), at)
            })
            .collect();
        macro_rules! client {
            ($krate:ident, $svc:literal) => {{
                let mut b = $krate::config::Builder::from(&shared).interceptor(CallLog);
                if let Some(u) = endpoint($svc) {
                    b = b.endpoint_url(u);
                }
                $krate::Client::from_conf(b.build())
            }};
        }
        let s3 = {
            // Path-style addressing whenever an endpoint is overridden (emulators, private endpoints).
            let mut b = aws_sdk_s3::config::Builder::from(&shared).interceptor(CallLog);
            if let Some(u) = endpoint("s3") {
                b = b.endpoint_url(u).force_path_style(true);
            }
            aws_sdk_s3::Client::from_conf(b.build())
        };
        AwsClients {
            iam: client!(aws_sdk_iam, "iam"),
            kms: client!(aws_sdk_kms, "kms"),
            s3,
            sqs: client!(aws_sdk_sqs, "sqs"),
            sts: client!(aws_sdk_sts, "sts"),
            cloudtrail: client!(aws_sdk_cloudtrail, "cloudtrail"),
            organizations: client!(aws_sdk_organizations, "organizations"),
            sns: client!(aws_sdk_sns, "sns"),
            cloudformation: client!(aws_sdk_cloudformation, "cloudformation"),
            region: shared.region().map(|r| r.to_string()),
            profile_problem,
        }
    }

    /// The caller's partition and account (STS GetCallerIdentity) and the region in use.
    pub async fn location(&self) -> Result<AwsLocation, AwsError> {
        let Some(region) = self.region.clone() else {
            return Err(AwsError::user(
                "sts",
                "GetCallerIdentity",
                "NoRegion",
                "no AWS region is configured: set `aws.region` in the provider block or AWS_REGION",
            ));
        };
        if let Some(problem) = &self.profile_problem {
            return Err(AwsError::user(
                "sts",
                "GetCallerIdentity",
                "ProfileNotFound",
                problem,
            ));
        }
        let id = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                let mut e = AwsError::from_sdk("sts", "GetCallerIdentity", e);
                if e.kind == AwsErrorKind::User && e.status.is_some() {
                    // AWS answered and refused: the credentials the chain found are wrong.
                    e.message = format!("{}; AWS refused the credentials the chain found: configure others (provider `aws` block, AWS_PROFILE or the AWS environment variables)", e.message.trim_end_matches('.'));
                }
                e
            })?;
        let arn = id.arn().unwrap_or_default();
        let partition = arn
            .split(':')
            .nth(1)
            .filter(|p| p.starts_with("aws"))
            .unwrap_or("aws");
        Ok(AwsLocation {
            partition: partition.to_string(),
            account_id: id.account().unwrap_or_default().to_string(),
            region,
        })
    }
}

/// How the engine should treat a failed AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The object does not exist.
    NotFound,
    /// Throttling, 5xx, network: retry with backoff.
    Transient,
    /// AWS has not yet propagated a change we just made (a policy, a new role): retry.
    Propagation,
    /// Anything else: the request is wrong; report it, do not retry.
    User,
}

#[derive(Clone, Debug)]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    pub kind: AwsErrorKind,
    /// AWS's id of the request, for AWS support.
    pub request_id: Option<String>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} failed", self.service, self.operation)?;
        if !self.code.is_empty() {
            write!(f, ": {}", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

impl Retryable for AwsError {
    fn retry_kind(&self) -> RetryKind {
        match self.kind {
            AwsErrorKind::Transient => RetryKind::Retry,
            AwsErrorKind::Propagation => RetryKind::Propagation,
            AwsErrorKind::NotFound | AwsErrorKind::User => RetryKind::Fail,
        }
    }
    fn counts_toward_retry_limit(&self) -> bool {
        true
    }
    fn outlasted_propagation(self, waited: std::time::Duration) -> Self {
        self.with_likely_causes(waited)
    }
}

const NOT_FOUND: &[&str] = &[
    "NoSuchEntity",
    "NotFoundException",
    "NoSuchBucket",
    "NoSuchBucketPolicy",
    "NoSuchKey",
    "NotFound",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "TrailNotFoundException",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchTagSet",
    "NoSuchPublicAccessBlockConfiguration",
    "StackSetNotFoundException",
    "StackInstanceNotFoundException",
];

const TRANSIENT: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "ConcurrentModificationException",
    "OperationAbortedException",
    "OperationAborted",
    // The stack set's one operation slot is taken (managed execution queues most of these).
    "OperationInProgressException",
];

const PROPAGATION: &[&str] = &[
    "KmsKeyNotFoundException",
    "InsufficientEncryptionPolicyException",
    "InsufficientS3BucketPolicyException",
    "InsufficientSnsTopicPolicyException",
    "AWS.SimpleQueueService.QueueDeletedRecently",
    "QueueDeletedRecently",
];

impl AwsError {
    pub fn user(service: &'static str, operation: &'static str, code: &str, message: &str) -> Self {
        AwsError {
            service,
            operation,
            code: code.to_string(),
            message: message.to_string(),
            status: None,
            kind: AwsErrorKind::User,
            request_id: None,
        }
    }

    /// An error AWS reports for one item inside a successful answer (S3 DeleteObjects'
    /// `Errors`), classified by its code as a whole answer with that code would be.
    pub fn per_item(
        service: &'static str,
        operation: &'static str,
        code: &str,
        message: String,
    ) -> Self {
        AwsError {
            service,
            operation,
            code: code.to_string(),
            kind: Self::classify(code, &message, None, false),
            message,
            status: None,
            request_id: None,
        }
    }

    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let request_id = err
            .meta()
            .extra("aws_request_id")
            .map(str::to_string)
            .or_else(|| {
                let headers = err.raw_response()?.headers();
                ["x-amzn-requestid", "x-amz-request-id"]
                    .iter()
                    .find_map(|h| headers.get(*h))
                    .map(str::to_string)
            });
        if let SdkError::ServiceError(_) = err {
            let code = err.code().unwrap_or_default().to_string();
            let message = err.message().unwrap_or_default().to_string();
            return AwsError {
                service,
                operation,
                kind: Self::classify(&code, &message, status, false),
                code,
                message,
                status,
                request_id,
            };
        }
        let timed_out = matches!(err, SdkError::TimeoutError(_));
        let (code, message, kind) = match failure(&err, timed_out) {
            Failure::Network(cause) => (
                "NetworkFailure",
                format!("network failure reaching {} ({cause}); this is not a credentials problem: check that the endpoint is right and reachable from here (proxy, firewall, VPC endpoint)", endpoint_of(service)),
                AwsErrorKind::Transient,
            ),
            Failure::Credentials(why) => (
                "NoCredentials",
                format!("no usable AWS credentials: {}. Set `aws.profile` or AWS_PROFILE to a profile with credentials, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", tried(&why)),
                AwsErrorKind::User,
            ),
            Failure::Other(text) => ("", text, Self::classify("", "", status, false)),
        };
        AwsError {
            service,
            operation,
            code: code.to_string(),
            message,
            status,
            kind,
            request_id,
        }
    }

    fn classify(code: &str, message: &str, status: Option<u16>, network: bool) -> AwsErrorKind {
        if NOT_FOUND.contains(&code) || (status == Some(404) && code.is_empty()) {
            AwsErrorKind::NotFound
        } else if PROPAGATION.contains(&code)
            || (code == "InvalidArgument"
                && message.contains("Unable to validate the following destination configurations"))
            || (code == "MalformedPolicyDocument" && message.contains("Invalid principal"))
            || (code == "MalformedPolicyDocumentException"
                && message.contains("invalid principals"))
        {
            AwsErrorKind::Propagation
        } else if network
            || TRANSIENT.contains(&code)
            || status.is_some_and(|s| s == 429 || s >= 500)
        {
            AwsErrorKind::Transient
        } else {
            AwsErrorKind::User
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == AwsErrorKind::NotFound
    }

    /// For a call on an object this run made or the state recorded: "not found" means AWS
    /// has not propagated it yet (real AWS answers NoSuchBucket, KMS NotFoundException or
    /// IAM NoSuchEntity for seconds after the create), so it is retried within the
    /// propagation window. Missing sub-resources (no bucket policy, no tag set) stay "not
    /// found".
    pub fn expecting_existence(mut self) -> Self {
        if self.kind == AwsErrorKind::NotFound && OBJECT_NOT_FOUND.contains(&self.code.as_str()) {
            self.kind = AwsErrorKind::Propagation;
        }
        self
    }

    /// The error after its propagation window ran out, with what usually causes it.
    pub fn with_likely_causes(mut self, waited: std::time::Duration) -> Self {
        let cause = likely_cause(&self.code, &self.message);
        self.message = format!(
            "{} (still refused after {} s of retries; the window is the provider's `aws.propagation_timeout`, default 2m). Likely cause: {cause}",
            self.message,
            waited.as_secs()
        );
        self
    }
}

/// Why a call that got no answer from AWS failed.
enum Failure {
    /// No connection, or no answer in time: the cause.
    Network(String),
    /// The credential chain found nothing usable: what it said.
    Credentials(String),
    /// Anything else: the error chain in one line.
    Other(String),
}

/// The credential chain's report on one line: what each source said, or the sources it tries
/// when the report does not list them.
fn tried(why: &str) -> String {
    const OFF: &str = "the credential provider was not enabled";
    if !why.contains("Attempted:") {
        return format!("{why}; the chain tries, in order: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the profile of `aws.profile` or AWS_PROFILE (else `default`) in ~/.aws/config and ~/.aws/credentials, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container and the EC2 instance metadata");
    }
    why.lines()
        .map(|l| {
            l.trim()
                .replace(&format!("{OFF}: "), "")
                .replace(OFF, "not configured")
        })
        .filter(|l| !l.is_empty() && l != "not configured")
        .collect::<Vec<_>>()
        .join("; ")
        .replace(". Attempted:;", "; tried")
}

/// Reads the error chain (`source()`): a connection or timeout failure anywhere in it is a
/// network failure, even under a credentials error (an unreachable STS in an AssumeRole).
fn failure(err: &(dyn std::error::Error + 'static), timed_out: bool) -> Failure {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    let mut messages: Vec<String> = Vec::new();
    let mut network = timed_out;
    let mut credentials = false;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<ConnectorError>() {
            network |= c.is_io() || c.is_timeout();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            network |= matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionReset
            );
        }
        credentials |= e.downcast_ref::<CredentialsError>().is_some();
        let text = e.to_string();
        if !text.is_empty() && !messages.iter().any(|m| m == &text) {
            messages.push(text);
        }
        next = e.source();
    }
    if messages.len() > 1 {
        // The outer layers ("dispatch failure", "other") say nothing the inner ones do not.
        messages.retain(|m| {
            !matches!(
                m.as_str(),
                "dispatch failure" | "other" | "io" | "io error" | "timeout" | "timeout error"
            )
        });
    }
    let chain = messages.join(": ");
    if network {
        Failure::Network(chain)
    } else if credentials {
        Failure::Credentials(chain)
    } else {
        Failure::Other(chain)
    }
}

/// Codes that say the object itself (not a part of it) does not exist.
const OBJECT_NOT_FOUND: &[&str] = &[
    "NoSuchBucket",
    "NotFoundException",
    "NoSuchEntity",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "TrailNotFoundException",
];

fn likely_cause(code: &str, message: &str) -> &'static str {
    match code {
        "MalformedPolicyDocument" | "MalformedPolicyDocumentException" => "a principal in the policy does not exist: check `expel_principals` for a typo, or an account or partition (aws-us-gov, aws-cn) that has no such principal. A role made seconds ago is also refused until IAM propagates it.",
        "InsufficientS3BucketPolicyException" => "CloudTrail may not write to the log bucket: its policy lacks the guide's CloudTrail statements, or another statement (a Deny, a condition) defeats them.",
        "InsufficientEncryptionPolicyException" => "CloudTrail may not use the KMS key: the key policy lacks the guide's CloudTrail statements, or another statement defeats them.",
        "KmsKeyNotFoundException" => "the KMS key does not exist in this account and region, or was deleted or disabled.",
        "InvalidArgument" if message.contains("destination configurations") => "S3 cannot send to the queue: the queue policy does not allow s3.amazonaws.com from this bucket, or the KMS key policy does not let S3 use the key.",
        "AWS.SimpleQueueService.QueueDeletedRecently" | "QueueDeletedRecently" => "a queue of this name was deleted less than 60 seconds ago; AWS refuses the name until then.",
        "DeleteConflict" => "something is still attached to it: IAM had not yet propagated a detach, or someone attached a policy or added it to an instance profile meanwhile. Run destroy again: it names what others attached and keeps it.",
        c if OBJECT_NOT_FOUND.contains(&c) => "the object was made by this run or recorded in the state, yet AWS says it does not exist: someone deleted it meanwhile, or AWS has not propagated it.",
        _ => "AWS kept refusing a change it normally accepts within seconds.",
    }
}

/// Shorthand for `map_err` on SDK calls.
pub fn err<E>(
    service: &'static str,
    operation: &'static str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| AwsError::from_sdk(service, operation, e)
}

/// IAM returns policy documents percent-encoded through the Rust SDK; decode when needed.
pub fn decode_policy_document(doc: &str) -> String {
    if doc.trim_start().starts_with('{') {
        return doc.to_string();
    }
    percent_encoding::percent_decode_str(doc)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let c = AwsError::classify;
        assert_eq!(
            c("NoSuchEntity", "", Some(404), false),
            AwsErrorKind::NotFound
        );
        assert_eq!(
            c("Throttling", "", Some(400), false),
            AwsErrorKind::Transient
        );
        assert_eq!(c("", "", Some(503), false), AwsErrorKind::Transient);
        assert_eq!(c("", "", None, true), AwsErrorKind::Transient);
        assert_eq!(
            c(
                "InsufficientEncryptionPolicyException",
                "",
                Some(400),
                false
            ),
            AwsErrorKind::Propagation
        );
        assert_eq!(
            c(
                "InvalidArgument",
                "Unable to validate the following destination configurations",
                Some(400),
                false
            ),
            AwsErrorKind::Propagation
        );
        assert_eq!(
            c(
                "MalformedPolicyDocument",
                "Invalid principal in policy",
                Some(400),
                false
            ),
            AwsErrorKind::Propagation
        );
        assert_eq!(
            c(
                "MalformedPolicyDocument",
                "Syntax errors in policy",
                Some(400),
                false
            ),
            AwsErrorKind::User
        );
        assert_eq!(c("AccessDenied", "", Some(403), false), AwsErrorKind::User);
    }

    #[test]
    fn per_item_errors_are_classified_by_their_code() {
        let e = AwsError::per_item("s3", "DeleteObjects", "SlowDown", "Please reduce".into());
        assert_eq!(e.kind, AwsErrorKind::Transient);
        let e = AwsError::per_item(
            "s3",
            "DeleteObjects",
            "AccessDenied",
            "Access Denied".into(),
        );
        assert_eq!(e.kind, AwsErrorKind::User);
        assert_eq!(
            e.to_string(),
            "s3 DeleteObjects failed: AccessDenied: Access Denied"
        );
    }

    fn sdk_failure(source: ConnectorErrorFor) -> AwsError {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let connector = match source {
            ConnectorErrorFor::Refused => ConnectorError::io(Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "tcp connect error: Connection refused (os error 111)",
            ))),
            ConnectorErrorFor::NoCredentials => ConnectorError::other(
                Box::new(
                    aws_credential_types::provider::error::CredentialsError::not_loaded(
                        "no providers in chain provided credentials",
                    ),
                ),
                None,
            ),
        };
        let e: SdkError<aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError, _> =
            SdkError::dispatch_failure(connector);
        AwsError::from_sdk("sts", "GetCallerIdentity", e)
    }

    enum ConnectorErrorFor {
        Refused,
        NoCredentials,
    }

    #[test]
    fn failures_without_an_answer_are_one_sentence_saying_what_failed() {
        let e = sdk_failure(ConnectorErrorFor::Refused);
        assert_eq!(e.kind, AwsErrorKind::Transient);
        let text = e.to_string();
        assert!(
            text.starts_with(
                "sts GetCallerIdentity failed: NetworkFailure: network failure reaching"
            ),
            "{text}"
        );
        assert!(text.contains("Connection refused"), "{text}");
        assert!(text.contains("not a credentials problem"), "{text}");
        assert!(
            !text.contains("DispatchFailure") && !text.contains('\n'),
            "{text}"
        );

        let e = sdk_failure(ConnectorErrorFor::NoCredentials);
        assert_eq!(e.kind, AwsErrorKind::User, "not retried");
        let text = e.to_string();
        assert!(text.contains("no usable AWS credentials"), "{text}");
        assert!(text.contains("AWS_PROFILE"), "{text}");
        assert!(!text.contains("network"), "{text}");
    }

    #[test]
    fn the_request_id_closes_the_sentence() {
        let e = AwsError {
            request_id: Some("4442587f-cafe".into()),
            ..AwsError::user("sqs", "CreateQueue", "InvalidParameterValue", "bad name")
        };
        assert_eq!(
            e.to_string(),
            "sqs CreateQueue failed: InvalidParameterValue: bad name (request id 4442587f-cafe)"
        );
    }

    #[tokio::test]
    async fn a_profile_in_neither_shared_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, "[profile prod]\nregion = eu-west-1\n").unwrap();
        let (config, credentials) = (
            config.display().to_string(),
            dir.path().join("credentials").display().to_string(),
        );
        let env = aws_types::os_shim_internal::Env::from_slice(&[
            ("AWS_CONFIG_FILE", config.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ]);
        let missing = missing_profile("prdo", &[], &[], &env)
            .await
            .expect("not found");
        assert!(missing.contains("`prdo`"), "{missing}");
        assert!(missing.contains(&config), "{missing}");
        assert!(missing.contains("AWS_PROFILE"), "{missing}");
        assert_eq!(missing_profile("prod", &[], &[], &env).await, None);
        // Listed files replace the variables' and are named instead.
        let other = dir.path().join("ci-config");
        std::fs::write(&other, "[profile ci]\nregion = eu-west-1\n").unwrap();
        let listed = [other.clone()];
        assert_eq!(missing_profile("ci", &listed, &[], &env).await, None);
        let missing = missing_profile("prod", &listed, &[], &env)
            .await
            .expect("not in the listed file");
        assert!(missing.contains(&other.display().to_string()), "{missing}");
    }

    #[test]
    fn decodes_iam_documents() {
        assert_eq!(decode_policy_document("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(decode_policy_document("{\"a\":1}"), "{\"a\":1}");
    }
}
