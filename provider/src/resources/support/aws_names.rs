//! AWS's naming rules for the objects this provider names, checked at plan time so that a
//! name AWS would refuse fails `terraform plan`, not an apply half-way through.
//!
//! Each rule is a pure function that returns why AWS would refuse the name, or `None`. The
//! rules come from AWS's public documentation, cited at each one. [`validator`] turns a rule
//! into an attribute validator whose message names the attribute, the value, the rule broken
//! and what to do.
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::schema::{FnValidator, Validator};
use tfplugin::value::Value;

/// A kind of AWS name, with its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsName {
    S3Bucket,
    SqsQueue,
    Trail,
    IamRole,
    IamPolicy,
    RoleSession,
    KmsAlias,
}

impl AwsName {
    /// Why AWS would refuse `name`, if it would.
    pub fn problem(self, name: &str) -> Option<String> {
        match self {
            AwsName::S3Bucket => s3_bucket_problem(name),
            AwsName::SqsQueue => sqs_queue_problem(name),
            AwsName::Trail => trail_problem(name),
            AwsName::IamRole => iam_role_problem(name),
            AwsName::IamPolicy => iam_policy_problem(name),
            AwsName::RoleSession => role_session_problem(name),
            AwsName::KmsAlias => kms_alias_problem(name),
        }
    }

    fn what(self) -> &'static str {
        match self {
            AwsName::S3Bucket => "S3 bucket name",
            AwsName::SqsQueue => "SQS queue name",
            AwsName::Trail => "CloudTrail trail name",
            AwsName::IamRole => "IAM role name",
            AwsName::IamPolicy => "IAM policy name",
            AwsName::RoleSession => "role session name",
            AwsName::KmsAlias => "KMS alias",
        }
    }

    /// What a name AWS accepts looks like.
    fn hint(self) -> &'static str {
        match self {
            AwsName::S3Bucket => "Use 3 to 63 lowercase letters, digits, dots and hyphens that start and end with a letter or digit, e.g. \"expel-cloudtrail-logs\"",
            AwsName::SqsQueue => "Use up to 80 letters, digits, hyphens and underscores, e.g. \"ExpelMasterCloudTrailNotify\"",
            AwsName::Trail => "Use 3 to 128 letters, digits, periods, underscores and dashes that start and end with a letter or digit, with no two of `._-` in a row, e.g. \"GlobalCloudTrail\"",
            AwsName::IamRole => "Use 1 to 64 letters, digits and `_+=,.@-`, e.g. \"ExpelServiceRole\"",
            AwsName::IamPolicy => "Use 1 to 128 letters, digits and `_+=,.@-`, e.g. \"ExpelAPIPolicy\"",
            AwsName::RoleSession => "Use 2 to 64 letters, digits and `_+=,.@-`, e.g. \"ExpelCloudTrail\"",
            AwsName::KmsAlias => "Use \"alias/\" followed by letters, digits, `/`, `_` and `-`, at most 256 characters in all and not under \"alias/aws/\", e.g. \"alias/ExpelCloudTrail\"",
        }
    }
}

/// An attribute validator for a kind of name. Unknown values never reach it (the SDK runs
/// validators on known values only).
pub fn validator(kind: AwsName) -> impl Validator {
    FnValidator(move |v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        let Some(s) = v.as_str() else { return };
        if let Some(problem) = kind.problem(s) {
            d.attr_error(
                p.clone(),
                format!("Malformed {}", kind.what()),
                format!(
                    "`{p}` = {s:?} is not a valid {}: it {problem}. {}.",
                    kind.what(),
                    kind.hint()
                ),
            );
        }
    })
}

/// "is N characters long; AWS allows MIN to MAX" when the length is out of range.
fn length_problem(name: &str, min: usize, max: usize) -> Option<String> {
    let n = name.chars().count();
    if n == 0 {
        return Some("is empty".to_string());
    }
    (!(min..=max).contains(&n))
        .then(|| format!("is {n} characters long; AWS allows {min} to {max}"))
}

/// The characters of `name` that `allowed` refuses, each once, in order.
fn bad_chars(name: &str, allowed: impl Fn(char) -> bool) -> Option<String> {
    let mut bad: Vec<char> = Vec::new();
    for c in name.chars().filter(|c| !allowed(*c)) {
        if !bad.contains(&c) {
            bad.push(c);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let list: Vec<String> = bad.iter().map(|c| format!("{:?}", c.to_string())).collect();
    Some(list.join(", "))
}

/// Four dot-separated groups of 1 to 3 digits, such as `192.168.5.4`.
fn ip_formatted(name: &str) -> bool {
    let groups: Vec<&str> = name.split('.').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|g| (1..=3).contains(&g.len()) && g.chars().all(|c| c.is_ascii_digit()))
}

fn letter_or_digit(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// IAM's `[\w+=,.@-]`: ASCII letters, digits and `_+=,.@-`.
fn iam_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// General purpose bucket names. Amazon S3 User Guide, "General purpose bucket naming rules"
/// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
pub fn s3_bucket_problem(name: &str) -> Option<String> {
    // "between 3 (min) and 63 (max) characters long"
    if let Some(p) = length_problem(name, 3, 63) {
        return Some(p);
    }
    // "can consist only of lowercase letters, numbers, periods (.), and hyphens (-)"
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    if let Some(bad) = bad_chars(name, allowed) {
        let upper = if name.chars().any(|c| c.is_ascii_uppercase()) {
            " (uppercase letters are not allowed)"
        } else {
            ""
        };
        return Some(format!(
            "contains {bad}; bucket names may contain only lowercase letters, digits, dots and hyphens{upper}"
        ));
    }
    // "must begin and end with a letter or number"
    if !name.starts_with(letter_or_digit) || !name.ends_with(letter_or_digit) {
        return Some("does not begin and end with a letter or digit".to_string());
    }
    // "must not contain two adjacent periods"
    if name.contains("..") {
        return Some("has two adjacent periods".to_string());
    }
    // "must not be formatted as an IP address (for example, 192.168.5.4)"
    if ip_formatted(name) {
        return Some("is formatted as an IP address".to_string());
    }
    // Reserved prefixes: "must not start with the prefix xn--", "sthree-" (which covers
    // "sthree-configurator") and "amzn-s3-demo-".
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Some(format!("starts with {prefix:?}, a prefix AWS reserves"));
        }
    }
    // Reserved suffixes: "-s3alias" (access point aliases), "--ol-s3" (Object Lambda Access
    // Point aliases) and ".mrap" (Multi-Region Access Points), same page; "--x-s3" ends every
    // directory bucket name ("Directory bucket naming rules", directory-bucket-naming-rules.html)
    // and "--table-s3" is reserved by S3 Tables ("Amazon S3 table bucket, table, and namespace
    // naming rules", s3-tables-buckets-naming.html), both in the same user guide.
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Some(format!("ends with {suffix:?}, a suffix AWS reserves"));
        }
    }
    None
}

/// Queue names. Amazon SQS API Reference, CreateQueue, `QueueName`
/// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html).
pub fn sqs_queue_problem(name: &str) -> Option<String> {
    // "A queue name can have up to 80 characters."
    if let Some(p) = length_problem(name, 1, 80) {
        return Some(p);
    }
    // "A FIFO queue name must end with the .fifo suffix." This provider makes a standard
    // queue, and S3 cannot notify a FIFO queue anyway: "FIFO queues are not allowed when
    // enabling an SQS queue as the event notification destination" (AWS CloudFormation
    // Template Reference, AWS::S3::Bucket QueueConfiguration, `Queue`).
    if name.ends_with(".fifo") {
        return Some("ends with \".fifo\", which only FIFO queues may; this provider makes a standard queue, since S3 event notifications cannot be sent to a FIFO queue".to_string());
    }
    // "Valid values: alphanumeric characters, hyphens (-), and underscores (_)."
    bad_chars(name, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_').map(|bad| {
        format!(
            "contains {bad}; queue names may contain only letters, digits, hyphens and underscores"
        )
    })
}

/// Trail names. AWS CloudTrail User Guide, "Naming requirements for CloudTrail resources, S3
/// buckets, and KMS keys"
/// (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-trail-naming-requirements.html),
/// and the CloudTrail API Reference, InvalidTrailNameException.
pub fn trail_problem(name: &str) -> Option<String> {
    // "Be between 3 and 128 characters."
    if let Some(p) = length_problem(name, 3, 128) {
        return Some(p);
    }
    // "Contain only ASCII letters (a-z, A-Z), numbers (0-9), periods (.), underscores (_), or
    // dashes (-)."
    let punctuation = |c: char| matches!(c, '.' | '_' | '-');
    if let Some(bad) = bad_chars(name, |c| c.is_ascii_alphanumeric() || punctuation(c)) {
        return Some(format!(
            "contains {bad}; trail names may contain only letters, digits, periods, underscores and dashes"
        ));
    }
    // "Start with a letter or number, and end with a letter or number."
    if !name.starts_with(letter_or_digit) || !name.ends_with(letter_or_digit) {
        return Some("does not start and end with a letter or digit".to_string());
    }
    // "Have no adjacent periods, underscores or dashes. Names like my-_namespace and
    // my--namespace are not valid."
    let chars: Vec<char> = name.chars().collect();
    if let Some(pair) = chars
        .windows(2)
        .find(|w| punctuation(w[0]) && punctuation(w[1]))
    {
        return Some(format!(
            "has {:?} ({} and {} next to each other)",
            pair.iter().collect::<String>(),
            pair[0],
            pair[1]
        ));
    }
    // "Not be in IP address format (for example, 192.168.5.4)."
    if ip_formatted(name) {
        return Some("is formatted as an IP address".to_string());
    }
    None
}

fn iam_name_problem(name: &str, min: usize, max: usize) -> Option<String> {
    if let Some(p) = length_problem(name, min, max) {
        return Some(p);
    }
    bad_chars(name, iam_char).map(|bad| {
        format!("contains {bad}; AWS allows only letters, digits and the characters _+=,.@-")
    })
}

/// Role names. IAM API Reference, CreateRole, `RoleName`: "Length Constraints: Minimum length
/// of 1. Maximum length of 64. Pattern: [\w+=,.@-]+"
/// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
pub fn iam_role_problem(name: &str) -> Option<String> {
    iam_name_problem(name, 1, 64)
}

/// Managed policy names. IAM API Reference, CreatePolicy, `PolicyName`: "Length Constraints:
/// Minimum length of 1. Maximum length of 128. Pattern: [\w+=,.@-]+"
/// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html).
pub fn iam_policy_problem(name: &str) -> Option<String> {
    iam_name_problem(name, 1, 128)
}

/// Role session names. AWS STS API Reference, AssumeRole, `RoleSessionName`: "Length
/// Constraints: Minimum length of 2. Maximum length of 64. Pattern: [\w+=,.@-]*"
/// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
pub fn role_session_problem(name: &str) -> Option<String> {
    iam_name_problem(name, 2, 64)
}

/// KMS aliases. AWS KMS Developer Guide, "Create aliases": "The alias must be string of 1–256
/// characters. It can contain only alphanumeric characters, forward slashes (/), underscores
/// (_), and dashes (-). The alias name for a customer managed key cannot begin with
/// alias/aws/." (https://docs.aws.amazon.com/kms/latest/developerguide/alias-create.html);
/// the API's `AliasName` "must begin with alias/ followed by a name" (KMS API Reference,
/// CreateAlias).
pub fn kms_alias_problem(name: &str) -> Option<String> {
    let Some(rest) = name.strip_prefix("alias/") else {
        return Some("does not begin with \"alias/\"".to_string());
    };
    if rest.is_empty() {
        return Some("has no name after \"alias/\"".to_string());
    }
    if let Some(p) = length_problem(name, 1, 256) {
        return Some(p);
    }
    if name.starts_with("alias/aws/") {
        return Some("begins with \"alias/aws/\", which AWS reserves for AWS managed keys".into());
    }
    bad_chars(name, |c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-')).map(|bad| {
        format!("contains {bad}; aliases may contain only letters, digits, forward slashes, underscores and dashes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(rule: fn(&str) -> Option<String>, name: &str, needle: &str) {
        match rule(name) {
            Some(p) => assert!(p.contains(needle), "{name:?}: {p:?} lacks {needle:?}"),
            None => panic!("{name:?} was accepted"),
        }
    }

    fn accepted(rule: fn(&str) -> Option<String>, names: &[&str]) {
        for n in names {
            assert_eq!(rule(n), None, "{n:?}");
        }
    }

    #[test]
    fn s3_bucket_names() {
        accepted(
            s3_bucket_problem,
            &[
                "expel-cloudtrail-123456789012-us-east-1",
                "abc",
                "my.aws.bucket",
                "myawsbucket.1",
                "1-2-3",
                &"a".repeat(63),
            ],
        );
        refused(s3_bucket_problem, "Expel_Logs", "\"E\", \"_\", \"L\"");
        refused(s3_bucket_problem, "Expel_Logs", "uppercase");
        refused(s3_bucket_problem, "my..bucket", "two adjacent periods");
        refused(s3_bucket_problem, "192.168.5.4", "IP address");
        refused(
            s3_bucket_problem,
            "ab",
            "is 2 characters long; AWS allows 3 to 63",
        );
        refused(s3_bucket_problem, &"a".repeat(64), "64 characters");
        refused(s3_bucket_problem, "", "is empty");
        refused(s3_bucket_problem, "-bucket", "begin and end");
        refused(s3_bucket_problem, "bucket.", "begin and end");
        refused(s3_bucket_problem, "my bucket", "\" \"");
        refused(s3_bucket_problem, "xn--bucket", "\"xn--\"");
        refused(s3_bucket_problem, "sthree-bucket", "\"sthree-\"");
        refused(s3_bucket_problem, "sthree-configurator-x", "\"sthree-\"");
        refused(
            s3_bucket_problem,
            "amzn-s3-demo-bucket",
            "\"amzn-s3-demo-\"",
        );
        for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
            refused(s3_bucket_problem, &format!("logs{suffix}"), suffix);
        }
    }

    #[test]
    fn sqs_queue_names() {
        accepted(
            sqs_queue_problem,
            &[
                "ExpelMasterCloudTrailNotify",
                "q",
                "a-b_C9",
                &"q".repeat(80),
            ],
        );
        refused(sqs_queue_problem, "", "is empty");
        refused(sqs_queue_problem, &"q".repeat(81), "81 characters");
        refused(sqs_queue_problem, "notify.fifo", "FIFO");
        refused(sqs_queue_problem, "my queue", "\" \"");
        refused(sqs_queue_problem, "my.queue", "\".\"");
    }

    #[test]
    fn trail_names() {
        accepted(
            trail_problem,
            &["GlobalCloudTrail", "my-trail_1.x", "abc", &"t".repeat(128)],
        );
        refused(trail_problem, "ab", "2 characters");
        refused(trail_problem, &"t".repeat(129), "129 characters");
        refused(trail_problem, "my-_namespace", "\"-_\"");
        refused(trail_problem, "my--namespace", "\"--\"");
        refused(trail_problem, "my._trail", "\"._\"");
        refused(trail_problem, "_trail", "start and end");
        refused(trail_problem, "trail-", "start and end");
        refused(trail_problem, "my trail", "\" \"");
        refused(trail_problem, "192.168.5.4", "IP address");
    }

    #[test]
    fn iam_role_policy_and_session_names() {
        accepted(
            iam_role_problem,
            &["ExpelServiceRole", "a", "r+=,.@-_1", &"r".repeat(64)],
        );
        refused(iam_role_problem, "", "is empty");
        refused(iam_role_problem, &"r".repeat(65), "65 characters");
        refused(iam_role_problem, "Expel Role", "\" \"");
        refused(iam_role_problem, "Expel/Role", "\"/\"");

        accepted(
            iam_policy_problem,
            &["ExpelAPIPolicy", "p", &"p".repeat(128)],
        );
        refused(iam_policy_problem, &"p".repeat(129), "129 characters");
        refused(iam_policy_problem, "Expel:Policy", "\":\"");

        accepted(
            role_session_problem,
            &["ExpelCloudTrail", "ab", &"s".repeat(64)],
        );
        refused(
            role_session_problem,
            "a",
            "1 characters long; AWS allows 2 to 64",
        );
        refused(role_session_problem, &"s".repeat(65), "65 characters");
        refused(role_session_problem, "Expel CloudTrail", "\" \"");
    }

    #[test]
    fn kms_aliases() {
        accepted(
            kms_alias_problem,
            &[
                "alias/ExpelCloudTrail",
                "alias/a/b_c-d",
                &format!("alias/{}", "k".repeat(250)),
            ],
        );
        refused(kms_alias_problem, "ExpelCloudTrail", "\"alias/\"");
        refused(kms_alias_problem, "alias/", "no name");
        refused(kms_alias_problem, "alias/aws/s3", "alias/aws/");
        refused(kms_alias_problem, "alias/Expel.Trail", "\".\"");
        refused(
            kms_alias_problem,
            &format!("alias/{}", "k".repeat(251)),
            "257 characters",
        );
    }

    #[test]
    fn the_validator_names_attribute_value_rule_and_remedy() {
        let mut d = Diagnostics::default();
        validator(AwsName::S3Bucket).validate(
            &Value::string("Expel_Logs"),
            &AttrPath::root("bucket_name"),
            &mut d,
        );
        let [x] = d.0.as_slice() else { panic!("{d:?}") };
        assert_eq!(x.path, Some(AttrPath::root("bucket_name")));
        assert_eq!(x.summary, "Malformed S3 bucket name");
        assert!(
            x.detail.contains("`bucket_name` = \"Expel_Logs\""),
            "{}",
            x.detail
        );
        assert!(x.detail.contains("lowercase"), "{}", x.detail);
        assert!(
            x.detail.contains("e.g. \"expel-cloudtrail-logs\""),
            "{}",
            x.detail
        );
    }
}
