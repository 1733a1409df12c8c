//! The tags of the AWS objects a resource makes, as hashicorp/aws composes them: the
//! provider's `aws.default_tags` under the resource's own `tags` (the resource wins on equal
//! keys), shown in the computed `tags_all`; the ownership tags (`ownership`) are added to
//! that on every object and are not listed.
//!
//! `tags_all` is part of drift: a piece whose object lacks one of those tags, or carries
//! another value, is drift ("tag team missing"), and apply tags it again. Tags others add
//! are neither compared nor removed. A piece is a [`TaggedPiece`] (how to read and write its
//! object's tags); [`WithTags`] makes that a step that observes and repairs its tags too.
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::common::set;
use crate::engine::{Observed, Problem, Step, StepContext, StepError};
use tfplugin::schema::Attribute;
use tfplugin::value::{Type, Value};

pub const TAGS_ALL: &str = "tags_all";

pub type Tags = BTreeMap<String, String>;

/// The computed `tags_all` of an AWS resource.
pub fn tags_all_attribute() -> Attribute {
    Attribute::new(TAGS_ALL, Type::map(Type::String)).computed().description("Every tag this resource puts on the AWS objects it makes: the provider's `aws.default_tags` with `tags` over them (`tags` wins on equal keys), as hashicorp/aws's `tags_all`. The ownership tags are added to these and not listed. One of them removed or changed outside Terraform is drift, which apply repairs; a change of `default_tags` updates the objects in place.")
}

/// The string entries of a map value; `None` when it, or one of its values, is unknown.
fn known_map(v: Option<&Value>) -> Option<Tags> {
    match v {
        None | Some(Value::Null) => Some(Tags::new()),
        Some(v) if !v.is_known() => None,
        Some(v) => {
            let m = v.as_map()?;
            m.iter()
                .map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        }
    }
}

/// `defaults` with `tags` over them; `None` while `tags` is not known.
pub fn merged(defaults: &Tags, tags: Option<&Value>) -> Option<Tags> {
    let mut all = defaults.clone();
    all.extend(known_map(tags)?);
    Some(all)
}

/// Plans `tags_all` from the planned `tags` and the provider's `default_tags` (unknown
/// while `tags` is).
pub fn plan(planned: &mut Value, defaults: &Tags) {
    let all = match merged(defaults, planned.get("tags")) {
        Some(all) => to_value(&all),
        None => Value::unknown(),
    };
    set(planned, TAGS_ALL, all);
}

/// The tags the objects of `v` (a plan or a state) must carry: its `tags_all` when known,
/// else (a plan whose `tags` were unknown, a state written before `tags_all` existed) the
/// defaults with its known `tags` over them.
pub fn wanted(v: &Value, defaults: &Tags) -> Tags {
    match v.get(TAGS_ALL).filter(|t| t.is_known() && !t.is_null()) {
        Some(t) => known_map(Some(t)).unwrap_or_default(),
        None => merged(defaults, v.get("tags")).unwrap_or_else(|| defaults.clone()),
    }
}

/// What a state says its objects carry: `tags_all`, or `tags` in a state written before it.
pub fn recorded(state: &Value) -> Tags {
    let all = state.get(TAGS_ALL).filter(|t| !t.is_null());
    known_map(all.or(state.get("tags"))).unwrap_or_default()
}

/// Records the tags an operation applied.
pub fn record(v: &mut Value, tags: &Tags) {
    set(v, TAGS_ALL, to_value(tags));
}

fn to_value(tags: &Tags) -> Value {
    Value::Map(
        tags.iter()
            .map(|(k, x)| (k.clone(), Value::string(x.clone())))
            .collect(),
    )
}

/// An imported state: the tags found are its `tags_all`; those the provider's defaults give,
/// with the same value, are left out of `tags`, so that the configuration that made them
/// plans no change.
pub fn imported(v: &mut Value, defaults: &Tags) {
    let found = recorded(v);
    let own: Tags = found
        .iter()
        .filter(|(k, x)| defaults.get(*k) != Some(*x))
        .map(|(k, x)| (k.clone(), x.clone()))
        .collect();
    let tags = if own.is_empty() {
        Value::Null
    } else {
        to_value(&own)
    };
    set(v, "tags", tags);
    record(v, &found);
}

/// The keys `before` had that `now` has not: removed from the objects by the update.
pub fn removed(before: &Tags, now: &Tags) -> Vec<String> {
    before
        .keys()
        .filter(|k| !now.contains_key(*k))
        .cloned()
        .collect()
}

/// How the object's `live` tags differ from `want`, in words; others' tags are ignored.
pub fn drift<'a>(want: &Tags, live: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let live: BTreeMap<&str, &str> = live.into_iter().collect();
    want.iter()
        .filter_map(|(k, v)| match live.get(k.as_str()) {
            None => Some(format!("tag {k} missing")),
            Some(x) if x != v => Some(format!("tag {k} is {x:?} instead of {v:?}")),
            Some(_) => None,
        })
        .collect()
}

/// A step context whose pieces carry tags.
pub trait TagContext: StepContext {
    /// What every object must carry (without the ownership tags).
    fn wanted_tags(&self) -> &Tags;
    /// The cause of a tag problem: its repair tags the object again.
    fn tag_cause() -> Self::Cause;
}

/// A piece whose object carries tags.
#[async_trait]
pub trait TaggedPiece<C: TagContext>: Step<C> {
    /// Whether the object is this resource's to tag (one it attaches to, such as an
    /// existing trail, is not).
    fn tagged(&self, _cx: &C) -> bool {
        true
    }
    /// The object's tags, as they are.
    async fn live_tags(&self, cx: &C) -> Result<Tags, StepError>;
    /// Puts the wanted tags (and the ownership tags) on the object; others' stay.
    async fn put_tags(&self, cx: &C) -> Result<(), StepError>;
}

/// A tagged piece as a step: its own observation plus its tags, and a repair that tags the
/// object again when that is what differs. No tags wanted: nothing more is asked of AWS.
pub struct WithTags<S>(pub S);

#[async_trait]
impl<C: TagContext, S: TaggedPiece<C>> Step<C> for WithTags<S> {
    fn id(&self) -> C::Id {
        self.0.id()
    }
    fn title(&self) -> &'static str {
        self.0.title()
    }
    fn needs(&self) -> &'static [C::Id] {
        self.0.needs()
    }
    async fn create(&self, cx: &C) -> Result<(), StepError> {
        self.0.create(cx).await
    }
    async fn observe(&self, cx: &C) -> Result<Observed<C::Cause>, StepError> {
        let seen = self.0.observe(cx).await?;
        let Observed::Present(mut problems) = seen else {
            return Ok(seen);
        };
        if !cx.wanted_tags().is_empty() && self.0.tagged(cx) {
            let live = self.0.live_tags(cx).await?;
            let texts = drift(
                cx.wanted_tags(),
                live.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            problems.extend(texts.into_iter().map(|text| Problem {
                text,
                cause: C::tag_cause(),
            }));
        }
        Ok(Observed::Present(problems))
    }
    async fn repair(&self, cx: &C, problems: &[Problem<C::Cause>]) -> Result<(), StepError> {
        let (tags, rest): (Vec<_>, Vec<_>) = problems
            .iter()
            .cloned()
            .partition(|p| p.cause == C::tag_cause());
        if !rest.is_empty() {
            self.0.repair(cx, &rest).await?;
        }
        if !tags.is_empty() {
            self.0.put_tags(cx).await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &C) -> Result<(), StepError> {
        self.0.delete(cx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(items: &[(&str, &str)]) -> Tags {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_resources_tags_win_over_the_defaults_and_unknown_stays_unknown() {
        let defaults = tags(&[("team", "secops"), ("env", "prod")]);
        let mut planned = Value::object([(
            "tags",
            Value::Map(BTreeMap::from([("env".to_string(), Value::string("dev"))])),
        )]);
        plan(&mut planned, &defaults);
        assert_eq!(
            recorded(&planned),
            tags(&[("team", "secops"), ("env", "dev")])
        );
        let mut unknown = Value::object([("tags", Value::unknown())]);
        plan(&mut unknown, &defaults);
        assert!(!unknown.get(TAGS_ALL).expect("set").is_known());
        assert_eq!(wanted(&unknown, &defaults), defaults);
        // No tags at all: the defaults.
        let mut none = Value::object([("tags", Value::Null)]);
        plan(&mut none, &defaults);
        assert_eq!(wanted(&none, &Tags::new()), defaults);
    }

    #[test]
    fn drift_names_missing_and_changed_tags_and_ignores_others() {
        let want = tags(&[("team", "secops"), ("env", "prod")]);
        let live = [("env", "dev"), ("someone", "else")];
        assert_eq!(
            drift(&want, live),
            vec![
                "tag env is \"dev\" instead of \"prod\"".to_string(),
                "tag team missing".to_string()
            ]
        );
        assert!(drift(&want, [("env", "prod"), ("team", "secops")]).is_empty());
    }

    #[test]
    fn an_older_state_records_its_tags_and_removed_keys_are_found() {
        let old = Value::object([(
            "tags",
            Value::Map(BTreeMap::from([("a".to_string(), Value::string("1"))])),
        )]);
        assert_eq!(recorded(&old), tags(&[("a", "1")]));
        assert_eq!(
            removed(&tags(&[("a", "1"), ("b", "2")]), &tags(&[("b", "3")])),
            vec!["a"]
        );
    }

    #[test]
    fn an_import_keeps_in_tags_only_what_the_defaults_do_not_give() {
        let found = Value::Map(BTreeMap::from([
            ("team".to_string(), Value::string("secops")),
            ("env".to_string(), Value::string("dev")),
        ]));
        let mut v = Value::object([("tags", found)]);
        let defaults = tags(&[("team", "secops"), ("env", "prod")]);
        imported(&mut v, &defaults);
        assert_eq!(
            known_map(v.get("tags")),
            Some(tags(&[("env", "dev")])),
            "env differs from its default: the resource's own"
        );
        assert_eq!(
            wanted(&v, &defaults),
            tags(&[("team", "secops"), ("env", "dev")])
        );
        let mut all_default = Value::object([("tags", to_value(&defaults))]);
        imported(&mut all_default, &defaults);
        assert_eq!(all_default.get("tags"), Some(&Value::Null));
    }
}
