//! Partition-aware ARNs of the guide's objects, and ARN well-formedness.

use super::Location;

/// `arn:<p>:s3:::<bucket>` (S3 bucket ARNs carry neither region nor account).
pub fn bucket_arn(loc: &Location, bucket: &str) -> String {
    format!("arn:{}:s3:::{}", loc.partition, bucket)
}

/// `arn:<p>:sqs:<region>:<account>:<queue>`.
pub fn queue_arn(loc: &Location, queue: &str) -> String {
    format!(
        "arn:{}:sqs:{}:{}:{}",
        loc.partition, loc.region, loc.account_id, queue
    )
}

/// `arn:<p>:cloudtrail:<region>:<account>:trail/<trail>`.
pub fn trail_arn(loc: &Location, trail: &str) -> String {
    format!(
        "arn:{}:cloudtrail:{}:{}:trail/{}",
        loc.partition, loc.region, loc.account_id, trail
    )
}

/// `arn:<p>:iam::<account>:role/<role>`; `role` may carry an IAM path (`expel/ExpelServiceRole`).
pub fn role_arn(loc: &Location, role: &str) -> String {
    format!(
        "arn:{}:iam::{}:role/{}",
        loc.partition,
        loc.account_id,
        role.trim_start_matches('/')
    )
}

/// `arn:<p>:iam::<account>:policy/<policy>`; `policy` may carry an IAM path.
pub fn policy_arn(loc: &Location, policy: &str) -> String {
    format!(
        "arn:{}:iam::{}:policy/{}",
        loc.partition,
        loc.account_id,
        policy.trim_start_matches('/')
    )
}

/// `arn:<p>:kms:<region>:<account>:key/<key id>`.
pub fn key_arn(loc: &Location, key_id: &str) -> String {
    format!(
        "arn:{}:kms:{}:{}:key/{}",
        loc.partition, loc.region, loc.account_id, key_id
    )
}

/// `arn:<p>:iam::<account>:root`: "the account", as IAM writes a bare account id principal.
pub fn account_root_arn(partition: &str, account: &str) -> String {
    format!("arn:{partition}:iam::{account}:root")
}

/// The principal the Expel role trusts (guide Step 7: "Another AWS account", Expel's account).
pub fn expel_principal(partition: &str, account: &str) -> String {
    account_root_arn(partition, account)
}

/// The six fields of an ARN, split but not validated (see [`arn_problem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArnParts<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

/// Splits `arn:partition:service:region:account:resource`; None when there are fewer fields
/// or it does not start with `arn:`. The resource may itself contain ':'.
pub fn parse_arn(s: &str) -> Option<ArnParts<'_>> {
    let mut fields = s.splitn(6, ':');
    if fields.next()? != "arn" {
        return None;
    }
    Some(ArnParts {
        partition: fields.next()?,
        service: fields.next()?,
        region: fields.next()?,
        account: fields.next()?,
        resource: fields.next()?,
    })
}

fn is_wildcard(c: char) -> bool {
    c == '*' || c == '?'
}

/// What is wrong with an ARN as IAM would see it, or None when it is well-formed.
/// Wildcards are accepted in region, account and resource, as policies allow them there.
pub fn arn_problem(s: &str) -> Option<String> {
    let Some(p) = parse_arn(s) else {
        return Some(format!(
            "{s:?} is not an ARN (arn:partition:service:region:account:resource)"
        ));
    };
    let partition_ok = p.partition.starts_with("aws")
        && p.partition
            .split('-')
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()));
    if !partition_ok {
        return Some(format!("{s:?} has an invalid partition {:?}", p.partition));
    }
    if p.service.is_empty()
        || !p
            .service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some(format!("{s:?} has an invalid service {:?}", p.service));
    }
    if !p
        .region
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || is_wildcard(c))
    {
        return Some(format!("{s:?} has an invalid region {:?}", p.region));
    }
    let account_ok = p.account.is_empty()
        || p.account == "aws"
        || (p.account.len() == 12 && p.account.chars().all(|c| c.is_ascii_digit()))
        || (p.account.contains(is_wildcard)
            && p.account
                .chars()
                .all(|c| c.is_ascii_digit() || is_wildcard(c)));
    if !account_ok {
        return Some(format!(
            "{s:?} has an invalid account {:?} (12 digits expected)",
            p.account
        ));
    }
    if p.resource.is_empty() {
        return Some(format!("{s:?} names no resource"));
    }
    if p.resource.chars().any(char::is_whitespace) {
        return Some(format!("{s:?} contains whitespace"));
    }
    None
}
