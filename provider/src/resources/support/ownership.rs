//! Who owns an object the provider made. Every AWS object carries two tags:
//! `expel:managed-by=terraform-provider-expel` (this provider made it) and
//! `expel:owner=<resource type>/<id>`, naming the resource instance that made it. An instance
//! adopts (after a crash) and deletes only objects carrying its own owner; one carrying
//! another instance's owner is refused with that owner's name, so two resources with the
//! same default names in one account (`ExpelServiceRole`, `ExpelAPIPolicy`) can never share,
//! and destroying one can never delete the other's objects.
//!
//! The id is derived from the instance's identity (a hash of values that are the same on every
//! run of the same configuration), so it is known before anything exists: a create retried
//! after a crash, when Terraform saved no state, is the same owner and adopts what the first
//! attempt made. It is kept in the state (`owner`) from then on. Objects from releases before
//! owners existed carry only the marker: the next apply adopts them once and adds the owner.
//!
//! SentinelOne roles and service users and Wiz automation rules have no tags: they carry the
//! same in their description ([`Owner::in_text`]).
use sha2::{Digest, Sha256};

use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::value::Value;

pub const MARKER_KEY: &str = "expel:managed-by";
pub const MARKER_VALUE: &str = "terraform-provider-expel";
pub const OWNER_KEY: &str = "expel:owner";
/// The state attribute holding the instance's owner.
pub const OWNER_ATTR: &str = "owner";

/// The description of the `owner` attribute, shared by the AWS resources.
pub const OWNER_DESCRIPTION: &str = "Value of the `expel:owner` tag on every AWS object this resource made: the resource type and a hash of the instance's identity (account and names). An object carrying another instance's owner is never adopted, changed or deleted.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    /// The owner of an instance of `resource_type` identified by `identity`: values that are
    /// the same on every run of the configuration and differ between instances that must not
    /// share objects.
    pub fn derive(resource_type: &str, identity: &[&str]) -> Owner {
        let mut h = Sha256::new();
        h.update(resource_type.as_bytes());
        for part in identity {
            h.update([0u8]);
            h.update(part.as_bytes());
        }
        let id: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Owner(format!("{resource_type}/{id}"))
    }

    /// The owner recorded in a state (null in state written before owners existed).
    pub fn recorded(state: &Value) -> Option<Owner> {
        state
            .get(OWNER_ATTR)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| Owner(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user's tags followed by the marker and the owner.
    pub fn tags<'a>(
        &'a self,
        user: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(String, String)> {
        user.into_iter()
            .chain([(MARKER_KEY, MARKER_VALUE), (OWNER_KEY, self.as_str())])
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Whose an object is, from its tags.
    pub fn claim<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Claim {
        let (mut marked, mut owner) = (false, None);
        for (k, v) in tags {
            match k {
                MARKER_KEY => marked = v == MARKER_VALUE,
                OWNER_KEY => owner = Some(v.to_string()),
                _ => {}
            }
        }
        match (marked, owner) {
            (false, _) => Claim::Foreign,
            (true, None) => Claim::Unclaimed,
            (true, Some(o)) if o == self.0 => Claim::Ours,
            (true, Some(o)) => Claim::Other(o),
        }
    }
}

/// The description of the `owner` attribute of resources whose objects have no tags.
pub const OWNER_DESCRIPTION_TEXT: &str = "The owner this resource's objects carry in their description (`managed-by: terraform-provider-expel; owner: <owner>`): the resource type and a hash of the instance's identity. An object carrying another instance's owner is never adopted, changed or deleted.";

/// The owner a description names, if any (import: the imported instance becomes that owner).
pub fn owner_in(description: Option<&str>) -> Option<String> {
    let (_, after) = description?.split_once(TEXT_MARKER)?;
    let owner: String = after
        .strip_prefix(TEXT_OWNER)?
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ')' | ';' | ','))
        .collect();
    (!owner.is_empty()).then_some(owner)
}

/// The marker for objects without tags (SentinelOne roles and service users, Wiz automation
/// rules), carried in their description: `managed-by: terraform-provider-expel; owner: <owner>`.
pub const TEXT_MARKER: &str = "managed-by: terraform-provider-expel";
const TEXT_OWNER: &str = "; owner: ";

impl Owner {
    /// The marker and owner as a description carries them.
    pub fn in_text(&self) -> String {
        format!("{TEXT_MARKER}{TEXT_OWNER}{}", self.0)
    }

    /// Whose an object is, from its description.
    pub fn claim_text(&self, description: &str) -> Claim {
        if !description.contains(TEXT_MARKER) {
            return Claim::Foreign;
        }
        match owner_in(Some(description)) {
            None => Claim::Unclaimed,
            Some(o) if o == self.0 => Claim::Ours,
            Some(o) => Claim::Other(o),
        }
    }
}

/// Whose an existing object is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It carries this instance's owner.
    Ours,
    /// It carries the marker and no owner: made by a release before owners existed. This
    /// instance adopts it and adds its owner.
    Unclaimed,
    /// Another resource instance made it (the value of its `expel:owner` tag).
    Other(String),
    /// This provider did not make it.
    Foreign,
}

impl Claim {
    /// Whether this instance may adopt, change and delete the object.
    pub fn is_ours(&self) -> bool {
        matches!(self, Claim::Ours | Claim::Unclaimed)
    }

    /// Why `what` cannot be adopted or deleted by `owner`; `how` says what the user can do
    /// about an object this provider did not make. `mark` is where the object carries it.
    pub fn refusal(&self, what: &str, owner: &Owner, mark: Mark, how: &str) -> String {
        let (marked, remove) = match mark {
            Mark::Tags => (
                format!("the tag {MARKER_KEY}={MARKER_VALUE}"),
                format!("the tag {OWNER_KEY} from the object"),
            ),
            Mark::Description => (
                format!("\"{TEXT_MARKER}\" in its description"),
                format!(
                    "\"{}…\" from its description",
                    TEXT_OWNER.trim_start_matches("; ")
                ),
            ),
        };
        match self {
            Claim::Other(other) => format!(
                "{what} belongs to another resource instance: it carries {OWNER_KEY}={other}, \
                 and this instance is {OWNER_KEY}={}. Two resources cannot share one object: give \
                 this resource other names, or let one resource manage it.{} If the other instance \
                 no longer exists, remove {remove} and this one adopts it.",
                owner.as_str(),
                hint(other, owner)
            ),
            _ => format!(
                "{what} already exists and does not carry {marked}; it was not made by this \
                 provider. {how}"
            ),
        }
    }
}

/// Where an object carries its marker and owner.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    /// AWS objects: the tags `expel:managed-by` and `expel:owner`.
    Tags,
    /// Objects without tags: their description ([`Owner::in_text`]).
    Description,
}

/// The summary of the warning when destroy leaves an object that is not the instance's.
pub const NOT_OURS_LEFT: &str = "Left in place: not made by this resource";

/// The detail of that warning: `what` in `account` is whose, and stays.
pub fn left_in_place(what: &str, account: &str, claim: &Claim) -> String {
    let whose = match claim {
        Claim::Other(other) => format!("belongs to another resource instance ({other})"),
        _ => "was not made by this provider".to_string(),
    };
    format!("{what} in account {account} {whose} and was left in place.")
}

/// The one sharing users meet by default: a member role in the account holding the trail.
fn hint(other: &str, owner: &Owner) -> &'static str {
    let kind = |o: &str| o.split('/').next().unwrap_or_default().to_string();
    match (kind(other).as_str(), kind(owner.as_str()).as_str()) {
        ("expel_cloudtrail_integration", "expel_aws_member_role") => {
            " The account holding the CloudTrail integration needs no expel_aws_member_role: the integration's role and policy already grant what the member role would."
        }
        ("expel_aws_member_role", "expel_cloudtrail_integration") => {
            " The account holding the CloudTrail integration needs no expel_aws_member_role: remove that one (or give it other names), then apply again."
        }
        _ => "",
    }
}

/// Refuses user tags that would overwrite the ownership tags.
pub fn check_tags(config: &Value, diags: &mut Diagnostics) {
    let Some(tags) = config.get("tags").and_then(Value::as_map) else {
        return;
    };
    for k in [MARKER_KEY, OWNER_KEY] {
        if tags.contains_key(k) {
            diags.attr_error(
                AttrPath::root("tags").key(k),
                "Reserved tag",
                format!("`tags` cannot set {k}: the provider sets it on every object it makes to know which objects are whose. Remove it from `tags`."),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_differ_by_type_and_identity_and_are_stable() {
        let a = Owner::derive(
            "expel_aws_member_role",
            &["123456789012", "ExpelServiceRole"],
        );
        assert_eq!(
            a,
            Owner::derive(
                "expel_aws_member_role",
                &["123456789012", "ExpelServiceRole"]
            )
        );
        assert_ne!(
            a,
            Owner::derive(
                "expel_cloudtrail_integration",
                &["123456789012", "ExpelServiceRole"]
            )
        );
        // Parts are separated: moving a character between them is another identity.
        assert_ne!(
            Owner::derive("t", &["ab", "c"]),
            Owner::derive("t", &["a", "bc"])
        );
        let s = a.as_str();
        assert!(
            s.starts_with("expel_aws_member_role/") && s.len() == 22 + 16,
            "{s}"
        );
        // IAM tag values allow letters, digits, spaces and _.:/=+-@ only.
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/=+-@ ".contains(c)));
    }

    #[test]
    fn claims_follow_the_tags() {
        let me = Owner::derive("expel_aws_member_role", &["1", "r"]);
        let other = Owner::derive("expel_cloudtrail_integration", &["1", "d"]);
        let with = |o: Option<&str>| {
            let mut t = vec![("team", "x"), (MARKER_KEY, MARKER_VALUE)];
            t.extend(o.map(|o| (OWNER_KEY, o)));
            me.claim(t)
        };
        assert_eq!(with(Some(me.as_str())), Claim::Ours);
        assert_eq!(with(None), Claim::Unclaimed);
        assert_eq!(
            with(Some(other.as_str())),
            Claim::Other(other.as_str().into())
        );
        assert_eq!(me.claim([("team", "x")]), Claim::Foreign);
        assert_eq!(
            me.claim([(MARKER_KEY, "someone-else"), (OWNER_KEY, me.as_str())]),
            Claim::Foreign
        );
        assert!(Claim::Unclaimed.is_ours() && !Claim::Other("x".into()).is_ours());
    }

    #[test]
    fn claims_follow_the_description_of_objects_without_tags() {
        let me = Owner::derive("expel_sentinelone_device", &["u", "s"]);
        let other = Owner::derive("expel_sentinelone_device", &["u", "t"]);
        let described = |o: &Owner| format!("Viewer plus investigation ({})", o.in_text());
        assert_eq!(me.claim_text(&described(&me)), Claim::Ours);
        assert_eq!(
            me.claim_text(&described(&other)),
            Claim::Other(other.as_str().into())
        );
        assert_eq!(
            me.claim_text("Viewer plus investigation (managed-by: terraform-provider-expel)"),
            Claim::Unclaimed
        );
        assert_eq!(me.claim_text("a role of the security team"), Claim::Foreign);
    }

    #[test]
    fn a_refusal_names_both_owners_and_says_what_to_do() {
        let me = Owner::derive("expel_aws_member_role", &["1", "r"]);
        let other = Owner::derive("expel_cloudtrail_integration", &["1", "d"]);
        let m = Claim::Other(other.as_str().into()).refusal(
            "IAM role ExpelServiceRole",
            &me,
            Mark::Tags,
            "",
        );
        assert!(m.contains(other.as_str()) && m.contains(me.as_str()), "{m}");
        assert!(m.contains("needs no expel_aws_member_role"), "{m}");
        let f = Claim::Foreign.refusal("IAM role R", &me, Mark::Tags, "Choose another name.");
        assert!(
            f.contains("not made by this provider. Choose another name."),
            "{f}"
        );
        let d = Claim::Other(other.as_str().into()).refusal("the role", &me, Mark::Description, "");
        assert!(
            d.contains("remove \"owner: …\" from its description"),
            "{d}"
        );
    }

    #[test]
    fn the_ownership_tags_cannot_be_set_by_the_user() {
        let config = Value::object([(
            "tags",
            Value::Map([(OWNER_KEY.to_string(), Value::string("x"))].into()),
        )]);
        let mut d = Diagnostics::default();
        check_tags(&config, &mut d);
        assert!(d.has_errors());
        let mut d = Diagnostics::default();
        check_tags(
            &Value::object([(
                "tags",
                Value::Map([("team".to_string(), Value::string("x"))].into()),
            )]),
            &mut d,
        );
        assert!(!d.has_errors());
    }
}
