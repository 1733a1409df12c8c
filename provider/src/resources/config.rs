//! The provider block: Workbench, AWS, SentinelOne and Wiz settings, each also from the
//! environment. Missing or malformed values name the attribute and the variable.
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::clients::aws::{AwsClientSettings, AwsClients, AwsError, AwsLocation};
use crate::clients::http::{self, Limits};
use crate::clients::sts::{AssumeRoleSpec, SessionLimits, WebIdentitySpec, WebToken};
use crate::clients::workbench::WorkbenchClient;
use crate::clients::Secret;
use crate::resources::support::aws_names::{self, AwsName};
use crate::resources::support::aws_regions;
use crate::resources::support::ownership::{MARKER_KEY, OWNER_KEY};
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::schema::{validators, Attribute, Block, NestedBlock, Schema};
use tfplugin::value::{Type, Value};

pub const DEFAULT_WORKBENCH_URL: &str = "https://workbench.expel.io";

/// Where configuration falls back to when the provider block leaves a value out.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

/// AWS settings; the AWS default credential chain applies to whatever is left unset.
#[derive(Clone, Debug, PartialEq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// `shared_config_files` / `shared_credentials_files`: read instead of the default files.
    pub shared_config_files: Vec<PathBuf>,
    pub shared_credentials_files: Vec<PathBuf>,
    pub assume_role: Option<AssumeRoleSpec>,
    /// `assume_role_with_web_identity`: the credentials `assume_role` (if any) starts from.
    pub web_identity: Option<WebIdentitySpec>,
    /// `default_tags.tags`: on every AWS object the resources make, under their own `tags`.
    pub default_tags: BTreeMap<String, String>,
    /// `max_retries`: at most this many retries of one AWS call's throttling, 5xx or network
    /// answers.
    pub max_retries: Option<u32>,
    /// Per-service endpoint overrides (service name -> URL), for moto and private endpoints.
    pub endpoints: Vec<(String, Url)>,
    /// How long one call keeps retrying AWS's "not propagated yet" answers.
    pub propagation_timeout: std::time::Duration,
    /// `allowed_account_ids`: when set, only these accounts may be written to.
    pub allowed_account_ids: Option<Vec<String>>,
    /// `forbidden_account_ids`: accounts never written to.
    pub forbidden_account_ids: Vec<String>,
}

impl AwsSettings {
    /// Whether the provider may work in `account`: an error naming the attribute that
    /// refuses it (`aws.allowed_account_ids` or `aws.forbidden_account_ids`) and saying why.
    pub fn refuses(&self, account: &str) -> Option<(AttrPath, String)> {
        let at = |a: &str| AttrPath::root("aws").attr(a);
        if self.forbidden_account_ids.iter().any(|a| a == account) {
            return Some((at("forbidden_account_ids"), format!("The AWS credentials point at account {account}, which `aws.forbidden_account_ids` lists: nothing is read or written there. Use credentials (or `aws.assume_role`, `aws.profile`) for another account.")));
        }
        match &self.allowed_account_ids {
            Some(allowed) if !allowed.iter().any(|a| a == account) => Some((at("allowed_account_ids"), format!("The AWS credentials point at account {account}, which is not in `aws.allowed_account_ids` ({}): nothing is read or written there. Use credentials (or `aws.assume_role`, `aws.profile`) for an allowed account, or add it to the list.", allowed.join(", ")))),
            _ => None,
        }
    }
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            profile: None,
            shared_config_files: Vec::new(),
            shared_credentials_files: Vec::new(),
            assume_role: None,
            web_identity: None,
            default_tags: BTreeMap::new(),
            max_retries: None,
            endpoints: Vec::new(),
            propagation_timeout: crate::engine::retry::DEFAULT_PROPAGATION,
            allowed_account_ids: None,
            forbidden_account_ids: Vec::new(),
        }
    }
}

/// A vendor the provider block gives access to: its nested block `<BLOCK> { ... }` and the
/// environment variables behind it. Each lives beside its resource and is registered once,
/// in [`vendors`].
pub trait Access: Sized + Send + Sync + 'static {
    /// The nested block's name, e.g. `wiz`.
    const BLOCK: &'static str;
    fn block() -> Block;
    /// Cross-attribute checks of the block that need no remote call (values may be unknown).
    fn validate(_block: &Value, _diags: &mut Diagnostics) {}
    /// Reads the block (null when absent) and the environment: `None` when the vendor is not
    /// configured, or when a value is wrong (then `diags` names it).
    fn configure(
        block: &Value,
        env: &dyn Env,
        limits: &Limits,
        diags: &mut Diagnostics,
    ) -> Option<Self>;
}

type Configured = Box<dyn Any + Send + Sync>;

/// A registered [`Access`], without its type.
struct Vendor {
    name: &'static str,
    block: fn() -> Block,
    validate: fn(&Value, &mut Diagnostics),
    configure: fn(&Value, &dyn Env, &Limits, &mut Diagnostics) -> Option<Configured>,
}

fn vendor<A: Access>() -> Vendor {
    Vendor {
        name: A::BLOCK,
        block: A::block,
        validate: A::validate,
        configure: |block, env, limits, diags| {
            A::configure(block, env, limits, diags).map(|a| Box::new(a) as Configured)
        },
    }
}

/// The vendors whose APIs the provider block gives access to: one line each.
fn vendors() -> [Vendor; 2] {
    [
        vendor::<crate::resources::sentinelone::SentinelOneAccess>(),
        vendor::<crate::resources::wiz::WizAccess>(),
    ]
}

/// What resources and data sources receive once the provider is configured.
pub struct ExpelData {
    pub workbench: WorkbenchClient,
    /// Time limits of every Workbench, SentinelOne and Wiz call.
    pub limits: Limits,
    pub organization_id: Option<String>,
    pub aws: AwsSettings,
    /// Each configured vendor's [`Access`], by type.
    vendors: HashMap<TypeId, Configured>,
    /// Built on first use: configurations that use no AWS resource need no AWS credentials.
    aws_clients: tokio::sync::OnceCell<AwsClients>,
    aws_location: tokio::sync::OnceCell<AwsLocation>,
}

impl ExpelData {
    /// The vendor's access, when the provider block (or the environment) configures it.
    pub fn access<A: Access>(&self) -> Option<&A> {
        self.vendors.get(&TypeId::of::<A>())?.downcast_ref()
    }

    pub async fn aws_clients(&self) -> &AwsClients {
        self.aws_clients
            .get_or_init(|| async {
                AwsClients::new(&AwsClientSettings {
                    region: self.aws.region.clone(),
                    profile: self.aws.profile.clone(),
                    assume_role: self.aws.assume_role.clone(),
                    web_identity: self.aws.web_identity.clone(),
                    config_files: self.aws.shared_config_files.clone(),
                    credentials_files: self.aws.shared_credentials_files.clone(),
                    endpoints: self.aws.endpoints.clone(),
                    request_timeout: Some(self.limits.request),
                })
                .await
            })
            .await
    }

    /// False, with an error naming the attribute, when `aws.allowed_account_ids` or
    /// `aws.forbidden_account_ids` keeps the provider out of `account`: checked before any
    /// write by every resource working in AWS.
    pub fn account_allowed(&self, account: &str, diags: &mut Diagnostics) -> bool {
        match self.aws.refuses(account) {
            Some((path, detail)) => {
                diags.attr_error(path, "AWS account not allowed", detail);
                false
            }
            None => true,
        }
    }

    /// The AWS partition, account and region the provider points at (one STS call, cached).
    pub async fn aws_location(&self) -> Result<AwsLocation, AwsError> {
        let clients = self.aws_clients().await;
        self.aws_location
            .get_or_try_init(|| clients.location())
            .await
            .cloned()
    }
}

const AWS_SERVICES: &[&str] = &[
    "iam",
    "kms",
    "s3",
    "sqs",
    "sts",
    "cloudtrail",
    "organizations",
    "cloudformation",
];

pub fn schema() -> Schema {
    let mut endpoints = Block::new(
        "Per-service endpoint URLs, for testing against an emulator or for private endpoints.",
    );
    for svc in AWS_SERVICES {
        endpoints = endpoints.attr(
            Attribute::string(svc)
                .optional()
                .description(&format!("Endpoint URL for {svc}. Default: `AWS_ENDPOINT_URL_{}`, else `AWS_ENDPOINT_URL`.", svc.to_uppercase()))
                .validator(validators::url(&["http", "https"])),
        );
    }
    let aws = Block::new("AWS account the CloudTrail resources are created in. Unset values come from the AWS default credential chain (environment, shared config, instance role).")
        .attr(Attribute::string("region").optional().description("AWS region. Default: `AWS_REGION` / `AWS_DEFAULT_REGION` or the shared config. Checked against the regions of AWS's partitions (aws, aws-cn, aws-us-gov, the isolated ones): a name no partition could have (`us-eats-1`) is an error naming the closest region; a well-formed name this provider does not know yet (regions are added over time) is a warning.").validator(region_validator()))
        .attr(Attribute::new("shared_config_files", Type::list(Type::String)).optional().description("Paths of AWS shared config files, read instead of `~/.aws/config` (as hashicorp/aws). Default: `AWS_CONFIG_FILE`, else `~/.aws/config`. `~/` is the home directory. A listed file that does not exist is an error naming it.").validator(validators_list_non_empty()))
        .attr(Attribute::new("shared_credentials_files", Type::list(Type::String)).optional().description("Paths of AWS shared credentials files, read instead of `~/.aws/credentials` (as hashicorp/aws). Default: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`. `~/` is the home directory. A listed file that does not exist is an error naming it.").validator(validators_list_non_empty()))
        .attr(Attribute::number("max_retries").optional().description("How many times one AWS call is retried after throttling, a 5xx answer or a network failure, waiting longer each time (as hashicorp/aws), within the resource's timeout. Default: `AWS_MAX_ATTEMPTS` less one, else no limit but the timeout. The AWS SDK's own retries stay off: this bounds the provider's retries, the only ones, so a call is tried at most `max_retries` + 1 times. Answers meaning \"not propagated yet\" are bounded by `propagation_timeout` instead.").validator(max_retries_validator()))
        .attr(Attribute::string("profile").optional().description("Shared config profile. Default: `AWS_PROFILE`. A profile in neither `~/.aws/config` nor `~/.aws/credentials` (or the files `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` name) stops the first AWS call with an error naming it and the files. AWS errors read as one sentence: the call, AWS's code and message, and the request id; a call that got no answer says it was a network failure and names the endpoint, and a credential chain that found nothing lists what it tried."))
        .attr(Attribute::new("allowed_account_ids", Type::list(Type::String)).optional().description("AWS account ids the provider may work in (as hashicorp/aws): with credentials for any other account, every AWS resource fails at plan, before its first write, naming the account. Conflicts with `forbidden_account_ids`.").validator(account_ids_validator()))
        .attr(Attribute::new("forbidden_account_ids", Type::list(Type::String)).optional().description("AWS account ids the provider must never work in (as hashicorp/aws): with credentials for one of them, every AWS resource fails at plan, before its first write. Conflicts with `allowed_account_ids`.").validator(account_ids_validator()))
        .attr(Attribute::string("propagation_timeout").optional().description("How long one call keeps retrying AWS answers that mean \"not propagated yet\" (a new bucket, key or role not visible yet, `Invalid principal` right after a role is made, `InsufficientEncryptionPolicy`, `InsufficientS3BucketPolicy`, \"Unable to validate the following destination configurations\" right after a policy changes; `QueueDeletedRecently`). They can also be permanent (a typo'd principal), so the wait is bounded; then the error names the likely causes. Default `2m` or `EXPEL_AWS_PROPAGATION_TIMEOUT`. Throttling and 5xx answers are retried until the resource's timeout; the AWS SDK's own retries are off, so nothing is retried twice over.").validator(duration_validator()))
        .block(
            NestedBlock::single(
                "assume_role",
                Block::new("Role to assume before any AWS call (STS AssumeRole), with the credentials of the default chain, or of `assume_role_with_web_identity` when set. Use one provider alias per account of an AWS Organization, each assuming a role there (see `expel_aws_member_role` and `examples/org/`); the AssumeRole call uses the `sts` endpoint when one is set.")
                    .attr(Attribute::string("role_arn").required().description("ARN of the role to assume.").validator(arn_validator()))
                    .attr(Attribute::string("external_id").optional().sensitive().description("External id the role's trust policy requires."))
                    .attr(Attribute::string("session_name").optional().description("Session name. Default: `terraform-provider-expel`.").validator(aws_names::validator(AwsName::RoleSession)))
                    .attr(session_duration("AssumeRole"))
                    .attr(session_policy())
                    .attr(session_policy_arns())
                    .attr(Attribute::new("tags", Type::map(Type::String)).optional().description("Session tags (STS AssumeRole `Tags`): at most 50, keys up to 128 characters, values up to 256. The role's trust policy must allow `sts:TagSession`.").validator(session_tags_validator()))
                    .attr(Attribute::new("transitive_tag_keys", Type::list(Type::String)).optional().description("Keys of `tags` that pass on to any session this one assumes in turn (STS `TransitiveTagKeys`); each must be a key of `tags`."))
                    .attr(Attribute::string("source_identity").optional().description("Source identity (STS `SourceIdentity`): 2 to 64 characters of letters, digits and `+=,.@-`; it stays with the session and any session it assumes.").validator(source_identity_validator())),
            ),
        )
        .block(
            NestedBlock::single(
                "assume_role_with_web_identity",
                Block::new("Credentials from a web identity token (STS AssumeRoleWithWebIdentity), for CI with OpenID Connect (GitHub Actions, GitLab, Kubernetes service accounts): the session's credentials are the provider's, or the ones `assume_role` starts from. The call uses the `sts` endpoint when one is set; it needs no other credentials. The token is a secret: never logged, never in an error.")
                    .attr(Attribute::string("role_arn").optional().description("ARN of the role to assume. Default: `AWS_ROLE_ARN`. Required in one of the two places.").validator(arn_validator()))
                    .attr(Attribute::string("session_name").optional().description("Session name. Default: `AWS_ROLE_SESSION_NAME`, else `terraform-provider-expel`.").validator(aws_names::validator(AwsName::RoleSession)))
                    .attr(Attribute::string("web_identity_token").optional().sensitive().description("The token (an OIDC ID token or OAuth 2.0 access token). Conflicts with `web_identity_token_file`; one of the two (or `AWS_WEB_IDENTITY_TOKEN_FILE`) is required."))
                    .attr(Attribute::string("web_identity_token_file").optional().description("File holding the token, read again for every new session (CI systems and Kubernetes rotate it). Default: `AWS_WEB_IDENTITY_TOKEN_FILE`. A file that does not exist is an error naming it. Conflicts with `web_identity_token`."))
                    .attr(session_duration("AssumeRoleWithWebIdentity"))
                    .attr(session_policy())
                    .attr(session_policy_arns()),
            ),
        )
        .block(NestedBlock::single(
            "default_tags",
            Block::new("Tags on every AWS object the resources make (KMS key, bucket, queue, trail, roles and policies of `expel_cloudtrail_integration` and `expel_aws_member_role`; the role in every member account of `expel_aws_organization_member_roles`, through its template, and its stack set when it is created), as hashicorp/aws: a resource's own `tags` win on equal keys, and the ownership tags `expel:managed-by` and `expel:owner` are always the provider's. The resources' `tags_all` shows the result. A default tag removed or changed outside Terraform is drift, repaired by apply; changing `default_tags` updates the objects in place (for the member roles: the new template rolled out to every account).")
                .attr(Attribute::new("tags", Type::map(Type::String)).optional().description("The tags: keys of 1 to 128 characters, not starting with `aws:` (AWS reserves it) and not the ownership tags; values up to 256 characters.").validator(default_tags_validator())),
        ))
        .block(NestedBlock::single("endpoints", endpoints));
    let mut block = Block::new("Configures access to Expel Workbench and to the tools the onboarding guides connect to it.")
            .attr(Attribute::string("workbench_url").optional().description("Workbench base URL. Default: `EXPEL_WORKBENCH_URL` or `https://workbench.expel.io`. Must be https (it carries the API key); plain http is refused at configuration, before any connection, unless the host is this machine (`localhost`, `127.0.0.0/8`, `::1`, e.g. the local stack).").validator(validators::url(&["https", "http"])))
            .attr(Attribute::string("api_key").optional().sensitive().description("Workbench API key of a service account (Organization Admin). Default: `EXPEL_API_KEY`. Required in one of the two places."))
            .attr(Attribute::string("request_timeout").optional().description(&format!("How long one HTTP request to Workbench, SentinelOne or Wiz may take (connecting, sending, reading the answer) before it counts as timed out and is retried; also the limit of one AWS call attempt. Default `{}s` or `EXPEL_REQUEST_TIMEOUT`.", Limits::default().request.as_secs())).validator(duration_validator()))
            .attr(Attribute::string("request_total_timeout").optional().description(&format!("How long one call to Workbench, SentinelOne or Wiz may take with all its retries; then it fails with the cause of the last attempt. Default `{}s` or `EXPEL_REQUEST_TOTAL_TIMEOUT`: a server that accepts connections and never answers fails `terraform plan` in about a minute. A failed call names its URL (never its credentials) and its cause: timed out (with the limits to raise if the server is only slow), connection refused, DNS lookup failed, or TLS handshake failed.", Limits::default().total.as_secs())).validator(duration_validator()))
            .attr(Attribute::string("organization_id").optional().description("Workbench organization id (a GUID); also the external id of `ExpelServiceRole`. Default: `EXPEL_ORGANIZATION_ID`.").validator(uuid_validator()))
            .block(NestedBlock::single("aws", aws));
    for v in vendors() {
        block = block.block(NestedBlock::single(v.name, (v.block)()));
    }
    Schema::new(0, block)
}

/// STS's range of DurationSeconds (AssumeRole, AssumeRoleWithWebIdentity: "Minimum value of
/// 900. Maximum value of 43200.", STS API reference), which a role's own maximum session
/// duration may narrow.
const SESSION_RANGE: (Duration, Duration) = (Duration::from_secs(900), Duration::from_secs(43_200));

fn session_duration(call: &str) -> Attribute {
    Attribute::string("duration").optional().description(&format!("How long the session lasts (STS {call} `DurationSeconds`), written as `1h`, `2h45m` or `30m15s`: from 15 minutes to 12 hours, and no longer than the role's maximum session duration. Default: STS's, 1 hour.")).validator(session_duration_validator())
}

fn session_policy() -> Attribute {
    Attribute::string("policy").optional().description("An IAM policy (JSON) that further restricts the session: it gets only what both this and the role's policies allow.").validator(policy_json_validator())
}

fn session_policy_arns() -> Attribute {
    Attribute::new("policy_arns", Type::list(Type::String))
        .optional()
        .description("ARNs of managed IAM policies that further restrict the session, at most 10.")
        .validator(policy_arns_validator())
}

fn session_duration_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            if let Some(problem) = session_duration_problem(s) {
                d.attr_error(
                    p.clone(),
                    "Bad session duration",
                    format!("`{p}` = {s:?} {problem}."),
                );
            }
        }
    })
}

/// Why `s` cannot be a session duration, if it cannot.
fn session_duration_problem(s: &str) -> Option<String> {
    match super::support::common::parse_duration(s) {
        None => Some("is not a duration such as \"1h\", \"2h45m\" or \"30m15s\"".into()),
        Some(d) if d < SESSION_RANGE.0 || d > SESSION_RANGE.1 => {
            Some("is outside what STS accepts: from 15m to 12h".into())
        }
        Some(_) => None,
    }
}

fn policy_json_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            let ok = serde_json::from_str::<serde_json::Value>(s)
                .is_ok_and(|j| j.get("Statement").is_some());
            if !ok {
                d.attr_error(p.clone(), "Malformed session policy", format!("`{p}` is not an IAM policy document (JSON with a `Statement`); write it with jsonencode() or an aws_iam_policy_document data source."));
            }
        }
    })
}

fn policy_arns_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        let arns = v.as_list().unwrap_or_default();
        if arns.len() > 10 {
            d.attr_error(
                p.clone(),
                "Too many session policies",
                format!("`{p}` lists {} policies; STS takes at most 10.", arns.len()),
            );
        }
        for a in arns {
            if let Some(s) = a.as_str() {
                if !is_policy_arn(s) {
                    d.attr_error(p.clone(), "Malformed policy ARN", format!("`{p}` holds {s:?}, which is not an IAM policy ARN such as \"arn:aws:iam::aws:policy/ReadOnlyAccess\"."));
                }
            }
        }
    })
}

/// Keys 1-128 characters, values at most 256: what STS takes for session tags and what
/// every service here takes for resource tags (IAM, KMS, S3, SQS, CloudTrail).
fn tag_problem(k: &str, v: &str) -> Option<&'static str> {
    if k.is_empty() || k.chars().count() > 128 {
        Some("a tag key has 1 to 128 characters")
    } else if v.chars().count() > 256 {
        Some("a tag value has at most 256 characters")
    } else {
        None
    }
}

fn session_tags_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        let Some(tags) = v.as_map() else { return };
        if tags.len() > 50 {
            d.attr_error(
                p.clone(),
                "Too many session tags",
                format!("`{p}` has {} tags; STS takes at most 50.", tags.len()),
            );
        }
        for (k, x) in tags {
            if let Some(problem) = x.as_str().and_then(|x| tag_problem(k, x)) {
                d.attr_error(
                    p.clone().key(k),
                    "Bad session tag",
                    format!("`{p}` key {k:?}: {problem}."),
                );
            }
        }
    })
}

fn default_tags_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        let Some(tags) = v.as_map() else { return };
        for (k, x) in tags {
            let at = p.clone().key(k);
            if k == MARKER_KEY || k == OWNER_KEY {
                d.attr_error(at, "Reserved tag", format!("`{p}` cannot set {k}: the provider sets it on every object it makes to know which objects are whose. Remove it."));
            } else if k.to_ascii_lowercase().starts_with("aws:") {
                d.attr_error(at, "Reserved tag", format!("`{p}` key {k:?} starts with `aws:`, which AWS reserves for its own tags. Choose another key."));
            } else if let Some(problem) = x.as_str().and_then(|x| tag_problem(k, x)) {
                d.attr_error(at, "Bad tag", format!("`{p}` key {k:?}: {problem}."));
            }
        }
    })
}

fn source_identity_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            let ok = (2..=64).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-".contains(c));
            if !ok {
                d.attr_error(p.clone(), "Bad source identity", format!("`{p}` = {s:?}: STS takes 2 to 64 characters of letters, digits and +=,.@-."));
            }
        }
    })
}

fn max_retries_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if v.is_known() && !v.is_null() && !v.as_i64().is_some_and(|n| (0..=1000).contains(&n)) {
            d.attr_error(p.clone(), "Bad max_retries", format!("`{p}` must be a whole number from 0 to 1000 (0: never retry a throttled call)."));
        }
    })
}

fn validators_list_non_empty() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        for f in v.as_list().unwrap_or_default() {
            if f.as_str().is_some_and(|s| s.trim().is_empty()) {
                d.attr_error(
                    p.clone(),
                    "Empty path",
                    format!("`{p}` holds an empty path; remove it or name a file."),
                );
            }
        }
    })
}

fn duration_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            if super::support::common::parse_duration(s).is_none() {
                d.attr_error(
                    p.clone(),
                    "Malformed duration",
                    format!("`{p}` = {s:?} is not a duration such as \"90s\", \"2m\" or \"1h\"."),
                );
            }
        }
    })
}

fn uuid_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            if !is_uuid(s) {
                d.attr_error(p.clone(), "Malformed organization id", format!("`{p}` = {s:?} is not a GUID such as \"2a0a5e3c-6a4e-4b59-9d0c-2a8c8c8f2e10\"; copy it from Workbench (Settings > Organization)."));
            }
        }
    })
}

fn account_ids_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        for a in v.as_list().unwrap_or_default() {
            if let Some(s) = a.as_str() {
                if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    d.attr_error(p.clone(), "Malformed AWS account id", format!("`{p}` holds {s:?}, which is not a 12-digit AWS account id such as \"123456789012\"."));
                }
            }
        }
    })
}

fn arn_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            if !is_role_arn(s) {
                d.attr_error(p.clone(), "Malformed role ARN", format!("`{p}` = {s:?} is not an IAM role ARN such as \"arn:aws:iam::123456789012:role/OrganizationAccountAccessRole\"."));
            }
        }
    })
}

fn region_validator() -> impl tfplugin::schema::Validator {
    tfplugin::schema::FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            aws_regions::diagnose(s, p, &format!("`{p}`"), d);
        }
    })
}

pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// An IAM managed policy ARN: `arn:<partition>:iam::<account or aws>:policy/<path and name>`.
pub fn is_policy_arn(s: &str) -> bool {
    let f: Vec<&str> = s.splitn(6, ':').collect();
    f.len() == 6
        && f[0] == "arn"
        && f[1].starts_with("aws")
        && f[2] == "iam"
        && f[3].is_empty()
        && (f[4] == "aws" || (f[4].len() == 12 && f[4].chars().all(|c| c.is_ascii_digit())))
        && f[5].strip_prefix("policy/").is_some_and(|n| !n.is_empty())
}

pub fn is_role_arn(s: &str) -> bool {
    let f: Vec<&str> = s.splitn(6, ':').collect();
    f.len() == 6
        && f[0] == "arn"
        && f[1].starts_with("aws")
        && f[2] == "iam"
        && f[3].is_empty()
        && f[4].len() == 12
        && f[4].chars().all(|c| c.is_ascii_digit())
        && f[5].strip_prefix("role/").is_some_and(|n| !n.is_empty())
}

/// Cross-attribute checks that need no remote call.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    let listed = |k: &str| {
        config
            .get("aws")
            .and_then(|a| a.get(k))
            .is_some_and(|v| !v.is_null())
    };
    if listed("allowed_account_ids") && listed("forbidden_account_ids") {
        diags.attr_error(
            AttrPath::root("aws").attr("forbidden_account_ids"),
            "Conflicting account lists",
            "Set `aws.allowed_account_ids` or `aws.forbidden_account_ids`, not both.",
        );
    }
    let aws = config.get("aws").cloned().unwrap_or(Value::Null);
    let set_in = |block: &str, attr: &str| {
        aws.get(block)
            .and_then(|b| b.get(attr))
            .is_some_and(|v| !v.is_null())
    };
    let web = "assume_role_with_web_identity";
    if set_in(web, "web_identity_token") && set_in(web, "web_identity_token_file") {
        diags.attr_error(
            AttrPath::root("aws").attr(web).attr("web_identity_token_file"),
            "Conflicting web identity tokens",
            "Set `aws.assume_role_with_web_identity.web_identity_token` or `web_identity_token_file`, not both.",
        );
    }
    if let Some(role) = aws.get("assume_role").filter(|r| !r.is_null()) {
        let tags = role.get("tags").and_then(Value::as_map);
        for k in role
            .get("transitive_tag_keys")
            .and_then(Value::as_list)
            .unwrap_or_default()
        {
            if let (Some(k), Some(tags)) = (k.as_str(), tags) {
                if !tags.contains_key(k) {
                    diags.attr_error(
                        AttrPath::root("aws").attr("assume_role").attr("transitive_tag_keys"),
                        "Transitive key without a tag",
                        format!("`aws.assume_role.transitive_tag_keys` holds {k:?}, which is not a key of `aws.assume_role.tags`: STS passes on only session tags. Add the tag or remove the key."),
                    );
                }
            }
        }
    }
    for v in vendors() {
        if let Some(block) = config.get(v.name).filter(|b| !b.is_null()) {
            (v.validate)(block, diags);
        }
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Resolves `attr` from config, else from `var`; records where the value came from.
pub fn setting(
    config: &Value,
    path: &[&str],
    var: &str,
    env: &dyn Env,
) -> Option<(String, String)> {
    if let Some(s) = get(config, path) {
        return Some((s.to_string(), format!("`{}`", path.join("."))));
    }
    env.var(var)
        .map(|s| (s, format!("the environment variable {var}")))
}

fn parse_url(value: &str, source: &str, path: AttrPath, diags: &mut Diagnostics) -> Option<Url> {
    match Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        _ => {
            diags.attr_error(
                path,
                "Malformed URL",
                format!("{source} = {value:?} is not an http(s) URL."),
            );
            None
        }
    }
}

/// A URL that carries `what` (a key, a secret): https, or http on this machine only. Checked
/// before any connection is made.
pub fn secure_url(
    value: &str,
    source: &str,
    path: AttrPath,
    var: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Url> {
    let url = parse_url(value, source, path.clone(), diags)?;
    if http::may_carry_secrets(&url) {
        return Some(url);
    }
    diags.attr_error(
        path.clone(),
        "Insecure URL",
        format!(
            "{source} = {:?} uses plain http to a host other than this machine: {what} would travel in clear text. Set `{path}` (or the environment variable {var}) to an https URL; http is accepted only for localhost, 127.0.0.0/8 and ::1.",
            http::display_url(&url)
        ),
    );
    None
}

/// A duration from the provider block or the environment; `default` when neither sets it.
fn duration_setting(
    config: &Value,
    attr: &str,
    var: &str,
    default: std::time::Duration,
    env: &dyn Env,
    diags: &mut Diagnostics,
) -> std::time::Duration {
    let Some((v, source)) = setting(config, &[attr], var, env) else {
        return default;
    };
    match super::support::common::parse_duration(&v).filter(|d| !d.is_zero()) {
        Some(d) => d,
        None => {
            diags.attr_error(
                AttrPath::root(attr),
                "Malformed duration",
                format!("{source} = {v:?} is not a duration such as \"30s\", \"2m\" or \"1h\"; set `{attr}` or {var} to one."),
            );
            default
        }
    }
}

/// Builds the provider data from the configuration and the environment.
pub fn configure(config: &Value, env: &dyn Env, diags: &mut Diagnostics) -> Option<ExpelData> {
    let url = setting(config, &["workbench_url"], "EXPEL_WORKBENCH_URL", env)
        .unwrap_or((DEFAULT_WORKBENCH_URL.to_string(), "the default".to_string()));
    let workbench_url = secure_url(
        &url.0,
        &url.1,
        AttrPath::root("workbench_url"),
        "EXPEL_WORKBENCH_URL",
        "the Workbench API key",
        diags,
    );
    let limits = Limits {
        request: duration_setting(
            config,
            "request_timeout",
            "EXPEL_REQUEST_TIMEOUT",
            Limits::default().request,
            env,
            diags,
        ),
        total: duration_setting(
            config,
            "request_total_timeout",
            "EXPEL_REQUEST_TOTAL_TIMEOUT",
            Limits::default().total,
            env,
            diags,
        ),
    };

    let api_key = setting(config, &["api_key"], "EXPEL_API_KEY", env).map(|(k, _)| Secret::new(k));
    if api_key.is_none() {
        diags.attr_error(
            AttrPath::root("api_key"),
            "Missing Workbench API key",
            "Set `api_key` in the provider block or the environment variable EXPEL_API_KEY to the API key of a Workbench service account (Settings > Service Accounts > Generate API Key).",
        );
    }

    let organization_id = setting(config, &["organization_id"], "EXPEL_ORGANIZATION_ID", env);
    if let Some((id, source)) = &organization_id {
        if !is_uuid(id) {
            diags.attr_error(
                AttrPath::root("organization_id"),
                "Malformed organization id",
                format!(
                    "{source} = {id:?} is not a GUID; copy the organization id from Workbench."
                ),
            );
        }
    }

    let aws = aws_settings(config, env, diags);
    let vendors: HashMap<TypeId, Configured> = vendors()
        .iter()
        .filter_map(|v| {
            let block = config.get(v.name).cloned().unwrap_or(Value::Null);
            (v.configure)(&block, env, &limits, diags).map(|a| ((*a).type_id(), a))
        })
        .collect();

    if diags.has_errors() {
        return None;
    }
    let (workbench_url, api_key) = (workbench_url?, api_key?);
    match WorkbenchClient::new(workbench_url, api_key).map(|c| c.with_limits(&limits)) {
        Ok(Ok(workbench)) => Some(ExpelData {
            workbench,
            limits,
            organization_id: organization_id.map(|(id, _)| id),
            aws,
            vendors,
            aws_clients: Default::default(),
            aws_location: Default::default(),
        }),
        Ok(Err(e)) | Err(e) => {
            diags.error("Cannot build the HTTP client", e.to_string());
            None
        }
    }
}

fn aws_settings(config: &Value, env: &dyn Env, diags: &mut Diagnostics) -> AwsSettings {
    let aws = config.get("aws").cloned().unwrap_or(Value::Null);
    let region = setting(&aws, &["region"], "AWS_REGION", env).or_else(|| {
        env.var("AWS_DEFAULT_REGION")
            .map(|r| (r, "the environment variable AWS_DEFAULT_REGION".into()))
    });
    // A region set in the provider block was checked by its validator (ValidateProviderConfig);
    // one from the environment is checked here.
    let in_block = get(&aws, &["region"]).is_some();
    if let Some((r, source)) = region.as_ref().filter(|_| !in_block) {
        aws_regions::diagnose(
            r,
            &AttrPath::root("aws").attr("region"),
            &format!("`aws.region` (from {source})"),
            diags,
        );
    }
    let assume_role = aws
        .get("assume_role")
        .filter(|a| !a.is_null())
        .and_then(|a| {
            let arn = get(a, &["role_arn"])?.to_string();
            let at = AttrPath::root("aws").attr("assume_role");
            if !is_role_arn(&arn) {
                diags.attr_error(
                    at.clone().attr("role_arn"),
                    "Malformed role ARN",
                    format!("{arn:?} is not an IAM role ARN."),
                );
            }
            Some(AssumeRoleSpec {
                role_arn: arn,
                external_id: get(a, &["external_id"]).map(Secret::new),
                session_name: get(a, &["session_name"])
                    .unwrap_or(DEFAULT_SESSION)
                    .to_string(),
                limits: session_limits(a, &at, diags),
                tags: string_map(a.get("tags")).into_iter().collect(),
                transitive_tag_keys: strings(a.get("transitive_tag_keys")),
                source_identity: get(a, &["source_identity"]).map(str::to_string),
            })
        });
    let web_identity = web_identity(&aws, env, diags);
    let home = env.var("HOME");
    let files = |attr: &str, diags: &mut Diagnostics| -> Vec<PathBuf> {
        let mut out = Vec::new();
        for f in strings(aws.get(attr)) {
            let path = expand_home(&f, home.as_deref());
            if !path.is_file() {
                diags.attr_error(
                    AttrPath::root("aws").attr(attr),
                    "Shared file not found",
                    format!("`aws.{attr}` lists {f:?}, which is not a file{}. Fix the path or remove it from the list.", if f.starts_with("~/") { format!(" ({})", path.display()) } else { String::new() }),
                );
            }
            out.push(path);
        }
        out
    };
    let shared_config_files = files("shared_config_files", diags);
    let shared_credentials_files = files("shared_credentials_files", diags);
    let max_retries = match aws.get("max_retries").and_then(Value::as_i64) {
        Some(n) => u32::try_from(n).ok(),
        None => env.var("AWS_MAX_ATTEMPTS").and_then(|v| match v.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Some(n - 1),
            _ => {
                diags.attr_error(
                    AttrPath::root("aws").attr("max_retries"),
                    "Bad AWS_MAX_ATTEMPTS",
                    format!("the environment variable AWS_MAX_ATTEMPTS = {v:?} is not a whole number of at least 1 (attempts, the first one included)."),
                );
                None
            }
        }),
    };
    let default_tags = string_map(aws.get("default_tags").and_then(|d| d.get("tags")));
    let mut endpoints = Vec::new();
    for svc in AWS_SERVICES {
        let var = format!("AWS_ENDPOINT_URL_{}", svc.to_ascii_uppercase());
        let found = setting(&aws, &["endpoints", svc], &var, env).or_else(|| {
            env.var("AWS_ENDPOINT_URL")
                .map(|u| (u, "the environment variable AWS_ENDPOINT_URL".into()))
        });
        if let Some((u, source)) = found {
            if let Some(url) = parse_url(
                &u,
                &source,
                AttrPath::root("aws").attr("endpoints").attr(*svc),
                diags,
            ) {
                endpoints.push((svc.to_string(), url));
            }
        }
    }
    let propagation_timeout = match setting(
        &aws,
        &["propagation_timeout"],
        "EXPEL_AWS_PROPAGATION_TIMEOUT",
        env,
    ) {
        None => crate::engine::retry::DEFAULT_PROPAGATION,
        Some((v, source)) => super::support::common::parse_duration(&v).unwrap_or_else(|| {
            diags.attr_error(
                AttrPath::root("aws").attr("propagation_timeout"),
                "Malformed duration",
                format!("{source} = {v:?} is not a duration such as \"90s\", \"2m\" or \"1h\"."),
            );
            crate::engine::retry::DEFAULT_PROPAGATION
        }),
    };
    let accounts = |k: &str| {
        aws.get(k).and_then(Value::as_list).map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };
    AwsSettings {
        region: region.map(|(r, _)| r),
        profile: setting(&aws, &["profile"], "AWS_PROFILE", env).map(|(p, _)| p),
        shared_config_files,
        shared_credentials_files,
        assume_role,
        web_identity,
        default_tags,
        max_retries,
        endpoints,
        propagation_timeout,
        allowed_account_ids: accounts("allowed_account_ids"),
        forbidden_account_ids: accounts("forbidden_account_ids").unwrap_or_default(),
    }
}

/// The session name when none is set.
const DEFAULT_SESSION: &str = "terraform-provider-expel";

/// The strings of a list attribute (nulls and unknowns left out).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The string entries of a map attribute.
fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| x.as_str().map(|x| (k.clone(), x.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `~/x` under the home directory; any other path as written.
fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// `duration`, `policy` and `policy_arns` of a role block (checked again here: a value that
/// was unknown at validation arrives known).
fn session_limits(block: &Value, at: &AttrPath, diags: &mut Diagnostics) -> SessionLimits {
    let duration = get(block, &["duration"]).and_then(|d| match session_duration_problem(d) {
        Some(problem) => {
            diags.attr_error(
                at.clone().attr("duration"),
                "Bad session duration",
                format!("`{}` = {d:?} {problem}.", at.clone().attr("duration")),
            );
            None
        }
        None => super::support::common::parse_duration(d),
    });
    SessionLimits {
        duration,
        policy: get(block, &["policy"]).map(str::to_string),
        policy_arns: strings(block.get("policy_arns")),
    }
}

/// `aws.assume_role_with_web_identity`, with AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME and
/// AWS_WEB_IDENTITY_TOKEN_FILE for what the block leaves out (as hashicorp/aws).
fn web_identity(aws: &Value, env: &dyn Env, diags: &mut Diagnostics) -> Option<WebIdentitySpec> {
    let block = aws
        .get("assume_role_with_web_identity")
        .filter(|b| !b.is_null())?;
    let at = AttrPath::root("aws").attr("assume_role_with_web_identity");
    let role_arn = match setting(block, &["role_arn"], "AWS_ROLE_ARN", env) {
        Some((arn, source)) => {
            if !is_role_arn(&arn) {
                diags.attr_error(
                    at.clone().attr("role_arn"),
                    "Malformed role ARN",
                    format!("{source} = {arn:?} is not an IAM role ARN."),
                );
            }
            arn
        }
        None => {
            diags.attr_error(at.clone().attr("role_arn"), "Missing role ARN", "Set `aws.assume_role_with_web_identity.role_arn` or the environment variable AWS_ROLE_ARN to the ARN of the role the token may assume.");
            String::new()
        }
    };
    // The block's token wins over AWS_WEB_IDENTITY_TOKEN_FILE; both in the block is the
    // conflict `validate` names.
    let file = setting(
        block,
        &["web_identity_token_file"],
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        env,
    );
    let token = match (get(block, &["web_identity_token"]), file) {
        (Some(_), Some(_)) if get(block, &["web_identity_token_file"]).is_some() => None,
        (Some(t), _) => Some(WebToken::Value(Secret::new(t))),
        (None, Some((file, source))) => {
            let path = expand_home(&file, env.var("HOME").as_deref());
            if !path.is_file() {
                diags.attr_error(at.clone().attr("web_identity_token_file"), "Web identity token file not found", format!("{source} = {file:?} is not a file. Point it at the file your CI writes the OIDC token to."));
            }
            Some(WebToken::File(path))
        }
        (None, None) => {
            diags.attr_error(at.clone().attr("web_identity_token"), "Missing web identity token", "Set `aws.assume_role_with_web_identity.web_identity_token` (e.g. from a variable marked sensitive) or `web_identity_token_file` (or the environment variable AWS_WEB_IDENTITY_TOKEN_FILE).");
            None
        }
    };
    let session_name = setting(block, &["session_name"], "AWS_ROLE_SESSION_NAME", env)
        .map(|(s, _)| s)
        .unwrap_or_else(|| DEFAULT_SESSION.to_string());
    Some(WebIdentitySpec {
        role_arn,
        token: token?,
        session_name,
        limits: session_limits(block, &at, diags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::wiz::WizAccess;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn null_config() -> Value {
        let mut v = Value::Object(Default::default());
        tfplugin::schema::normalize_blocks(&schema().block, &mut v);
        v
    }

    fn paths(d: &Diagnostics) -> Vec<String> {
        d.iter()
            .filter_map(|x| x.path.as_ref().map(|p| p.to_string()))
            .collect()
    }

    #[test]
    fn account_lists_refuse_by_name_of_the_list() {
        let allowed = AwsSettings {
            allowed_account_ids: Some(vec!["111111111111".into()]),
            ..Default::default()
        };
        assert_eq!(allowed.refuses("111111111111"), None);
        let (path, detail) = allowed.refuses("123456789012").expect("refused");
        assert_eq!(path.to_string(), "aws.allowed_account_ids");
        assert!(detail.contains("123456789012") && detail.contains("111111111111"));
        let forbidden = AwsSettings {
            forbidden_account_ids: vec!["123456789012".into()],
            ..Default::default()
        };
        assert_eq!(forbidden.refuses("111111111111"), None);
        let (path, _) = forbidden.refuses("123456789012").expect("refused");
        assert_eq!(path.to_string(), "aws.forbidden_account_ids");
        assert_eq!(AwsSettings::default().refuses("123456789012"), None);
    }

    #[test]
    fn missing_api_key_names_attribute_and_variable() {
        let mut d = Diagnostics::default();
        assert!(configure(&null_config(), &FakeEnv(HashMap::new()), &mut d).is_none());
        assert_eq!(paths(&d), vec!["api_key"]);
        assert!(d.0[0].detail.contains("EXPEL_API_KEY"));
    }

    #[test]
    fn environment_fills_in_and_is_checked() {
        let env = FakeEnv(HashMap::from([
            ("EXPEL_API_KEY", "k"),
            ("EXPEL_ORGANIZATION_ID", "not-a-guid"),
            ("AWS_REGION", "moon-1"),
        ]));
        let mut d = Diagnostics::default();
        assert!(configure(&null_config(), &env, &mut d).is_none());
        let p = paths(&d);
        assert!(p.contains(&"organization_id".to_string()), "{p:?}");
        assert!(p.contains(&"aws.region".to_string()), "{p:?}");
        assert!(d.iter().any(|x| x.detail.contains("EXPEL_ORGANIZATION_ID")));
    }

    #[test]
    fn valid_environment_configures() {
        let env = FakeEnv(HashMap::from([
            ("EXPEL_API_KEY", "k"),
            ("EXPEL_WORKBENCH_URL", "http://127.0.0.1:9"),
            (
                "EXPEL_ORGANIZATION_ID",
                "2a0a5e3c-6a4e-4b59-9d0c-2a8c8c8f2e10",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("WIZ_CLIENT_ID", "id"),
            ("WIZ_CLIENT_SECRET", "s"),
            ("WIZ_API_URL", "https://api.us17.app.wiz.io/graphql"),
        ]));
        let mut d = Diagnostics::default();
        let data = configure(&null_config(), &env, &mut d).expect("configures");
        assert!(!d.has_errors(), "{d:?}");
        assert_eq!(data.workbench.base_url().as_str(), "http://127.0.0.1:9/");
        assert_eq!(data.aws.endpoints.len(), AWS_SERVICES.len());
        assert_eq!(
            data.access::<WizAccess>()
                .map(|w| w.settings.client_secret.expose().to_string()),
            Some("s".into())
        );
    }

    #[test]
    fn the_wiz_token_endpoint_follows_the_api_host_unless_given() {
        let auth = |api: &'static str, auth: Option<&'static str>| {
            let mut env = HashMap::from([
                ("EXPEL_API_KEY", "k"),
                ("WIZ_CLIENT_ID", "id"),
                ("WIZ_CLIENT_SECRET", "s"),
                ("WIZ_API_URL", api),
            ]);
            if let Some(a) = auth {
                env.insert("WIZ_AUTH_URL", a);
            }
            let mut d = Diagnostics::default();
            let data = configure(&null_config(), &FakeEnv(env), &mut d).expect("configures");
            assert!(!d.has_errors(), "{d:?}");
            data.access::<WizAccess>()
                .map(|w| w.settings.auth_url.to_string())
                .unwrap_or_default()
        };
        for (api, want) in [
            (
                "https://api.us17.app.wiz.io/graphql",
                "https://auth.app.wiz.io/oauth/token",
            ),
            (
                "https://api.us1.gov.wiz.io/graphql",
                "https://auth.gov.wiz.io/oauth/token",
            ),
            (
                "https://api.us2.app.wiz.us/graphql",
                "https://auth.app.wiz.us/oauth/token",
            ),
            (
                "http://127.0.0.1:5000/wiz/graphql",
                "https://auth.app.wiz.io/oauth/token",
            ),
        ] {
            assert_eq!(auth(api, None), want, "{api}");
        }
        // The local stack stands in for a GovCloud tenant through WIZ_AUTH_URL.
        assert_eq!(
            auth(
                "https://api.us1.gov.wiz.io/graphql",
                Some("http://127.0.0.1:5000/wiz/oauth/token")
            ),
            "http://127.0.0.1:5000/wiz/oauth/token"
        );
    }

    #[test]
    fn a_url_that_carries_a_secret_must_be_https_unless_on_this_machine() {
        let base = [
            ("EXPEL_API_KEY", "k"),
            ("WIZ_CLIENT_ID", "id"),
            ("WIZ_CLIENT_SECRET", "s"),
            ("WIZ_API_URL", "https://api.us17.app.wiz.io/graphql"),
        ];
        for (var, attr, url) in [
            (
                "EXPEL_WORKBENCH_URL",
                "workbench_url",
                "http://workbench.example.com",
            ),
            (
                "WIZ_AUTH_URL",
                "wiz.auth_url",
                "http://auth.example.com/oauth/token",
            ),
            (
                "WIZ_API_URL",
                "wiz.api_url",
                "http://192.0.2.2:8080/graphql",
            ),
        ] {
            let mut env = HashMap::from(base);
            env.insert(var, url);
            let mut d = Diagnostics::default();
            assert!(configure(&null_config(), &FakeEnv(env), &mut d).is_none());
            assert_eq!(paths(&d), vec![attr], "{d:?}");
            assert!(d.0[0].detail.contains(var), "{}", d.0[0].detail);
            assert!(d.0[0].detail.contains("https"), "{}", d.0[0].detail);
        }
        for local in [
            "http://127.0.0.1:9",
            "http://127.8.9.1",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            let mut env = HashMap::from(base);
            env.insert("EXPEL_WORKBENCH_URL", local);
            let mut d = Diagnostics::default();
            assert!(
                configure(&null_config(), &FakeEnv(env), &mut d).is_some(),
                "{local}: {d:?}"
            );
        }
    }

    #[test]
    fn time_limits_come_from_the_block_or_the_environment() {
        let env = FakeEnv(HashMap::from([
            ("EXPEL_API_KEY", "k"),
            ("EXPEL_REQUEST_TOTAL_TIMEOUT", "2m"),
        ]));
        let mut config = null_config();
        if let Value::Object(m) = &mut config {
            m.insert("request_timeout".into(), Value::string("5s"));
        }
        let mut d = Diagnostics::default();
        let data = configure(&config, &env, &mut d).expect("configures");
        assert_eq!(
            data.limits,
            Limits {
                request: std::time::Duration::from_secs(5),
                total: std::time::Duration::from_secs(120),
            }
        );
        let defaults = configure(&null_config(), &env, &mut d).expect("configures");
        assert_eq!(defaults.limits.request, Limits::default().request);

        let env = FakeEnv(HashMap::from([
            ("EXPEL_API_KEY", "k"),
            ("EXPEL_REQUEST_TIMEOUT", "soon"),
        ]));
        let mut d = Diagnostics::default();
        assert!(configure(&null_config(), &env, &mut d).is_none());
        assert_eq!(paths(&d), vec!["request_timeout"]);
        assert!(d.0[0].detail.contains("EXPEL_REQUEST_TIMEOUT"));
    }

    /// What ValidateProviderConfig answers: the attribute validators, then `validate`.
    fn validated(config: &Value) -> Diagnostics {
        let mut d = Diagnostics::default();
        tfplugin::schema::run_validators(&schema().block, config, &AttrPath::default(), &mut d);
        validate(config, &mut d);
        d
    }

    fn aws_block(attrs: Vec<(&str, Value)>) -> Value {
        Value::object([("aws", Value::object(attrs))])
    }

    #[test]
    fn a_mistyped_region_is_an_error_and_a_new_one_a_warning() {
        use tfplugin::diag::Severity;
        let d = validated(&aws_block(vec![("region", Value::string("us-eats-1"))]));
        assert_eq!(paths(&d), vec!["aws.region"]);
        assert_eq!(d.0[0].severity, Severity::Error);
        assert!(d.0[0].detail.contains("\"us-east-1\""), "{}", d.0[0].detail);

        let d = validated(&aws_block(vec![(
            "region",
            Value::string("ap-southeast-9"),
        )]));
        assert_eq!(paths(&d), vec!["aws.region"]);
        assert_eq!(d.0[0].severity, Severity::Warning);
        assert!(d.0[0].detail.contains("not a region this provider knows"));

        for ok in [Value::string("eu-west-1"), Value::unknown(), Value::Null] {
            assert_eq!(validated(&aws_block(vec![("region", ok)])).0, vec![]);
        }
    }

    #[test]
    fn a_session_name_aws_would_refuse_is_an_error() {
        let role = |session: &str| {
            aws_block(vec![(
                "assume_role",
                Value::object([
                    (
                        "role_arn",
                        Value::string(
                            "arn:aws:iam::123456789012:role/OrganizationAccountAccessRole",
                        ),
                    ),
                    ("session_name", Value::string(session)),
                ]),
            )])
        };
        let d = validated(&role("terraform provider"));
        assert_eq!(paths(&d), vec!["aws.assume_role.session_name"]);
        assert!(d.0[0].detail.contains("\" \""), "{}", d.0[0].detail);
        assert_eq!(validated(&role("terraform-provider-expel")).0, vec![]);
    }

    fn role(attrs: Vec<(&str, Value)>) -> Value {
        let mut all = vec![(
            "role_arn",
            Value::string("arn:aws:iam::123456789012:role/Deploy"),
        )];
        all.extend(attrs);
        Value::object(all)
    }

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::string(*s)).collect())
    }

    fn map(items: &[(&str, &str)]) -> Value {
        Value::Map(
            items
                .iter()
                .map(|(k, v)| (k.to_string(), Value::string(*v)))
                .collect(),
        )
    }

    #[test]
    fn role_session_settings_are_checked_at_validation_naming_the_attribute() {
        for (block, attrs, path, summary) in [
            (
                "assume_role",
                vec![("duration", Value::string("5m"))],
                "aws.assume_role.duration",
                "Bad session duration",
            ),
            (
                "assume_role",
                vec![("duration", Value::string("13h"))],
                "aws.assume_role.duration",
                "Bad session duration",
            ),
            (
                "assume_role_with_web_identity",
                vec![("duration", Value::string("an hour"))],
                "aws.assume_role_with_web_identity.duration",
                "Bad session duration",
            ),
            (
                "assume_role",
                vec![("policy", Value::string("{not json"))],
                "aws.assume_role.policy",
                "Malformed session policy",
            ),
            (
                "assume_role",
                vec![("policy_arns", list(&["arn:aws:iam::aws:role/X"]))],
                "aws.assume_role.policy_arns",
                "Malformed policy ARN",
            ),
            (
                "assume_role",
                vec![("source_identity", Value::string("a b"))],
                "aws.assume_role.source_identity",
                "Bad source identity",
            ),
            (
                "assume_role",
                vec![("tags", map(&[("", "x")]))],
                "aws.assume_role.tags[\"\"]",
                "Bad session tag",
            ),
            (
                "assume_role",
                vec![
                    ("tags", map(&[("team", "sec")])),
                    ("transitive_tag_keys", list(&["project"])),
                ],
                "aws.assume_role.transitive_tag_keys",
                "Transitive key without a tag",
            ),
            (
                "assume_role_with_web_identity",
                vec![
                    ("web_identity_token", Value::string("eyJ-token")),
                    ("web_identity_token_file", Value::string("/tmp/t")),
                ],
                "aws.assume_role_with_web_identity.web_identity_token_file",
                "Conflicting web identity tokens",
            ),
        ] {
            let d = validated(&aws_block(vec![(block, role(attrs))]));
            assert_eq!(paths(&d), vec![path], "{d:?}");
            assert_eq!(d.0[0].summary, summary);
        }
        let good = role(vec![
            ("duration", Value::string("2h45m")),
            (
                "policy",
                Value::string(r#"{"Version":"2012-10-17","Statement":[]}"#),
            ),
            (
                "policy_arns",
                list(&[
                    "arn:aws:iam::aws:policy/ReadOnlyAccess",
                    "arn:aws-us-gov:iam::123456789012:policy/p/Mine",
                ]),
            ),
            ("tags", map(&[("team", "sec")])),
            ("transitive_tag_keys", list(&["team"])),
            ("source_identity", Value::string("ci@example.com")),
        ]);
        assert_eq!(validated(&aws_block(vec![("assume_role", good)])).0, vec![]);
    }

    #[test]
    fn default_tags_and_max_retries_are_checked_at_validation() {
        let tags = |t: Value| aws_block(vec![("default_tags", Value::object([("tags", t)]))]);
        for (t, key) in [
            (map(&[("expel:owner", "x")]), "expel:owner"),
            (
                map(&[("aws:cloudformation:stack", "x")]),
                "aws:cloudformation:stack",
            ),
        ] {
            let d = validated(&tags(t));
            assert_eq!(
                paths(&d),
                vec![format!("aws.default_tags.tags[\"{key}\"]")],
                "{d:?}"
            );
            assert_eq!(d.0[0].summary, "Reserved tag");
        }
        let long = "v".repeat(257);
        let d = validated(&tags(map(&[("env", long.as_str())])));
        assert_eq!(paths(&d), vec!["aws.default_tags.tags[\"env\"]"]);
        assert_eq!(validated(&tags(map(&[("env", "prod")]))).0, vec![]);

        let d = validated(&aws_block(vec![("max_retries", Value::from(-1i64))]));
        assert_eq!(paths(&d), vec!["aws.max_retries"]);
        assert_eq!(
            validated(&aws_block(vec![("max_retries", Value::from(3i64))])).0,
            vec![]
        );
    }

    fn with_aws(attrs: Vec<(&str, Value)>) -> Value {
        let mut config = aws_block(attrs);
        tfplugin::schema::normalize_blocks(&schema().block, &mut config);
        config
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    #[test]
    fn web_identity_shared_files_and_retries_come_from_the_block_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.ci-token\n").unwrap();
        let conf = dir.path().join("config");
        std::fs::write(&conf, "[profile ci]\nregion = us-east-1\n").unwrap();
        let env = FakeEnv(HashMap::from([
            ("EXPEL_API_KEY", "k"),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/GitHubActions",
            ),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                leak(token.display().to_string()),
            ),
            ("AWS_MAX_ATTEMPTS", "4"),
            ("HOME", leak(dir.path().display().to_string())),
        ]));
        let config = with_aws(vec![
            (
                "assume_role_with_web_identity",
                Value::object([("duration", Value::string("30m"))]),
            ),
            ("shared_config_files", list(&["~/config"])),
        ]);
        let mut d = Diagnostics::default();
        let data = configure(&config, &env, &mut d).expect("configures");
        assert!(!d.has_errors(), "{d:?}");
        let w = data.aws.web_identity.expect("web identity");
        assert_eq!(w.role_arn, "arn:aws:iam::123456789012:role/GitHubActions");
        assert_eq!(w.token, WebToken::File(token.clone()));
        assert_eq!(w.session_name, "terraform-provider-expel");
        assert_eq!(w.limits.duration, Some(Duration::from_secs(1800)));
        assert_eq!(data.aws.shared_config_files, vec![conf]);
        assert_eq!(
            data.aws.max_retries,
            Some(3),
            "AWS_MAX_ATTEMPTS counts the first attempt"
        );

        // A token in the block is a secret: never in Debug output.
        let config = with_aws(vec![
            (
                "assume_role_with_web_identity",
                Value::object([("web_identity_token", Value::string("eyJ-block-token-value"))]),
            ),
            (
                "shared_credentials_files",
                list(&["/nonexistent/credentials"]),
            ),
        ]);
        let mut d = Diagnostics::default();
        assert!(configure(&config, &env, &mut d).is_none());
        assert_eq!(paths(&d), vec!["aws.shared_credentials_files"], "{d:?}");
        assert!(d.0[0].detail.contains("/nonexistent/credentials"));

        // Neither a token nor a file: the attribute is named.
        let env = FakeEnv(HashMap::from([
            ("EXPEL_API_KEY", "k"),
            ("AWS_MAX_ATTEMPTS", "0"),
        ]));
        let config = with_aws(vec![(
            "assume_role_with_web_identity",
            Value::object([(
                "role_arn",
                Value::string("arn:aws:iam::123456789012:role/R"),
            )]),
        )]);
        let mut d = Diagnostics::default();
        assert!(configure(&config, &env, &mut d).is_none());
        assert_eq!(
            paths(&d),
            vec![
                "aws.assume_role_with_web_identity.web_identity_token",
                "aws.max_retries"
            ],
            "{d:?}"
        );
        assert!(d.0[1].detail.contains("AWS_MAX_ATTEMPTS"));
    }

    #[test]
    fn a_web_identity_token_never_prints() {
        let spec = WebIdentitySpec {
            role_arn: "arn:aws:iam::123456789012:role/R".into(),
            token: WebToken::Value(Secret::new("eyJ-secret-token-value")),
            session_name: DEFAULT_SESSION.into(),
            limits: SessionLimits::default(),
        };
        let shown = format!("{spec:?}");
        assert!(!shown.contains("eyJ-secret-token-value"), "{shown}");
        assert_eq!(
            crate::clients::secret::redact("token=eyJ-secret-token-value"),
            "token=***"
        );
    }

    #[test]
    fn a_region_from_the_environment_is_checked_at_configure() {
        let env = FakeEnv(HashMap::from([
            ("EXPEL_API_KEY", "k"),
            ("AWS_REGION", "eu-centrl-1"),
        ]));
        let mut d = Diagnostics::default();
        assert!(configure(&null_config(), &env, &mut d).is_none());
        assert_eq!(paths(&d), vec!["aws.region"]);
        assert!(d.0[0]
            .detail
            .contains("the environment variable AWS_REGION"));
        assert!(d.0[0].detail.contains("\"eu-central-1\""));
    }

    #[test]
    fn shape_checks() {
        assert!(is_uuid("2a0a5e3c-6a4e-4b59-9d0c-2a8c8c8f2e10"));
        assert!(!is_uuid("2a0a5e3c6a4e4b599d0c2a8c8c8f2e10"));
        assert!(is_role_arn("arn:aws:iam::123456789012:role/X"));
        assert!(is_role_arn("arn:aws-us-gov:iam::123456789012:role/path/X"));
        assert!(!is_role_arn("arn:aws:iam::1234:role/X") && !is_role_arn("arn:aws:s3:::b"));
    }
}
