//! The guided-resource adapter: one implementation of create, read, update, delete and
//! import plumbing for every resource that is an Expel guide run by the engine.
//!
//! A guided resource supplies what is its own ([`Guided`]): its schema, its steps, how an
//! operation opens (the provider settings it needs, the pins it checks, the step context it
//! builds) and how the journal maps to state. [`Guide`] does the rest the same way for all:
//! timeouts, the engine call, the report of failed steps with advice that fits the
//! operation, warnings, drift, "gone", interrupted creates, and the claim of state written
//! before owners existed. Powers a resource may have or lack are their own traits
//! ([`Plan`], [`Import`], [`Upgrade`]), offered through [`Guided::plan`], [`Guided::import`]
//! and [`Guided::upgrade`].
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{check_timeouts, interrupted_create, set, timeout, warn_drift};
use super::ownership::{self, Owner};
use crate::engine::{
    self, Deadline, Fix, Graph, Refreshed, Step, StepContext, StepError, StepErrorKind, StepId,
};
use crate::resources::ExpelData;
use tfplugin::diag::Diagnostics;
use tfplugin::provider::{ApplyOutcome, Ctx, PlanInput, ReadOutcome, Resource};
use tfplugin::schema::Schema;
use tfplugin::value::Value;

/// How long a refresh may take.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// The operation an engine run serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Read,
    Update,
    Delete,
}

impl Op {
    /// The verb of the error summary: "Creating the Wiz integration failed at ...".
    fn doing(self) -> &'static str {
        match self {
            Op::Create => "Creating",
            Op::Read => "Reading",
            Op::Update => "Repairing",
            Op::Delete => "Destroying",
        }
    }

    /// What the user can do after a step of this operation failed.
    fn advice(self) -> &'static str {
        match self {
            Op::Create => "What was made so far is saved in the state, which Terraform marks tainted. To finish instead of re-creating: `terraform untaint <address>` then `terraform apply` (it adopts what exists and completes what is missing). `terraform destroy` removes what was made.",
            Op::Read => "The state is kept as it was. Fix the cause and plan again.",
            Op::Update => "What was made so far is saved in the state; run `terraform apply` again to finish (it adopts what exists and repairs the rest), or `terraform destroy` to remove it.",
            Op::Delete => "What is left stays in the state; fix the cause and run `terraform destroy` again.",
        }
    }
}

/// What an operation opens with.
pub struct Opening<'a> {
    pub op: Op,
    /// The values the steps work from: the plan (create, update, with the prior state's
    /// ids), or the state (read, delete). A refresh may fill them in (after an import).
    pub values: &'a mut Value,
    /// The state the object is pinned by; null for a create.
    pub prior: &'a Value,
    pub private: &'a [u8],
    pub deadline: Deadline,
}

/// Why an operation did not open.
pub enum Closed {
    /// The diagnostics say what to fix; the state stays as it was.
    Failed,
    /// (Refresh only) the object is gone: Terraform plans to create it again.
    Gone,
}

/// One guide as a resource: what is its own. Everything else is [`Guide`]'s.
#[async_trait]
pub trait Guided: Send + Sync + 'static {
    /// The step context: clients, settings, journal, deadline.
    type Cx: StepContext + Send + Sync;
    /// Full type name, e.g. `expel_wiz_device`.
    const TYPE_NAME: &'static str;
    /// The object in words, as in "Creating the Wiz integration failed at ...".
    const WHAT: &'static str;
    /// How long an operation may take when `timeouts` does not say.
    const DEFAULT_TIMEOUT: Duration;
    /// Computed ids the journal starts from in an update: the plan holds unknown for a
    /// piece it re-creates (or null for one it removes), the prior state what exists.
    const STATE_IDS: &'static [&'static str];
    /// Pieces that leave nothing behind (a check): they do not count towards "gone".
    const TRANSIENT: &'static [<Self::Cx as StepContext>::Id] = &[];

    fn schema() -> Schema;
    /// Static checks beyond attribute validators (`timeouts` and reserved `tags` keys are
    /// checked for every guided resource).
    fn validate(_config: &Value, _diags: &mut Diagnostics) {}
    /// The guide's steps, in guide order.
    fn steps() -> Vec<&'static dyn Step<Self::Cx>>;

    /// Opens an operation: checks that the provider is configured for this resource and
    /// points where the prior state is pinned, then builds the context from the values.
    /// A refresh may fill the values in (after an import) or find the object gone.
    async fn open(
        &self,
        ctx: &Ctx<ExpelData>,
        o: Opening<'_>,
        diags: &mut Diagnostics,
    ) -> Result<Self::Cx, Closed>;

    /// The state after an operation: `base` (plan or prior state) with the journal's ids.
    fn state_from(base: &Value, cx: &Self::Cx, drift: BTreeMap<String, String>) -> Value;
    /// Private state after an operation; by default what came in.
    fn private_of(_cx: &Self::Cx, previous: &[u8]) -> Vec<u8> {
        previous.to_vec()
    }
    /// Warnings the steps collected (summary, detail).
    fn warnings(cx: &Self::Cx) -> Vec<(String, String)>;
    /// Makes the objects of a state written before owners existed this instance's.
    async fn claim(cx: &Self::Cx) -> Result<(), StepError>;

    /// Runs before a refresh observes the pieces.
    async fn before_observe(
        &self,
        _cx: &Self::Cx,
        _diags: &mut Diagnostics,
    ) -> Result<(), StepError> {
        Ok(())
    }
    /// A refresh that finds every piece gone still keeps the state (something may exist
    /// that no id names yet).
    fn keep_when_gone(_cx: &Self::Cx) -> bool {
        false
    }
    /// Where drift is, after the piece name in a warning, e.g. " (account 1234)".
    fn drift_place(_cx: &Self::Cx) -> String {
        String::new()
    }
    /// Runs after every step of a create succeeded.
    async fn after_create(_cx: &Self::Cx) -> Result<(), StepError> {
        Ok(())
    }
    /// A failed create that made nothing returns no state (nothing to taint).
    fn made_nothing(_cx: &Self::Cx) -> bool {
        false
    }
    /// Runs after an update converged every piece (renames, tag changes).
    async fn after_converge(
        &self,
        _cx: &Self::Cx,
        _prior: &Value,
        _planned: &Value,
        _diags: &mut Diagnostics,
    ) -> Result<(), StepError> {
        Ok(())
    }
    /// Adjusts the state of an update that failed (e.g. keeps the old names of a rename).
    fn after_failed_update(_state: &mut Value, _prior: &Value, _planned: &Value) {}
    /// Runs after the delete's report.
    fn after_delete(_cx: &Self::Cx, _diags: &mut Diagnostics) {}

    /// Plan modification, when the resource has it.
    fn plan(&self) -> Option<&dyn Plan> {
        None
    }
    /// `terraform import`, when the resource offers it.
    fn import(&self) -> Option<&dyn Import> {
        None
    }
    /// An upgrade of state older than the schema reads by itself (its `readable_from`), when
    /// the resource has one. None has yet: every state a release wrote is readable as is.
    fn upgrade(&self) -> Option<&dyn Upgrade> {
        None
    }
}

/// The power to adjust a plan (defaults derived from the provider, computed values that
/// will change). The adapter runs it only for a plan that keeps the object.
#[async_trait]
pub trait Plan: Send + Sync {
    /// `fixes`: what the refresh before this plan found each drifted piece needs.
    async fn modify_plan(
        &self,
        ctx: &Ctx<ExpelData>,
        input: &PlanInput<'_>,
        fixes: &Fixes,
        planned: &mut Value,
        diags: &mut Diagnostics,
    );
}

/// What the refresh before a plan found each drifted piece needs (the strongest fix of its
/// problems), by piece name. The refresh keeps it in private state, which Terraform hands
/// to the plan; the plan tells from it which ids apply will change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fixes(BTreeMap<String, Fix>);

impl Fixes {
    pub fn of<I: StepId>(&self, piece: I) -> Option<Fix> {
        self.0.get(piece.name()).copied()
    }

    /// From the private state, or, for private state an earlier release wrote, the worst
    /// for every piece the prior state's `drift` names (unknown ids are always allowed).
    fn for_plan(private: &[u8], prior: &Value) -> Self {
        match Private::read(private).0 {
            Some(fixes) => Fixes(fixes),
            None => Fixes(
                prior
                    .get("drift")
                    .and_then(Value::as_map)
                    .map(|d| d.keys().map(|k| (k.clone(), Fix::Make)).collect())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Private state as the adapter keeps it: the refresh's fixes around the resource's own
/// private state.
#[derive(Serialize, Deserialize)]
struct Private {
    /// Always 1: marks the adapter's private state (a resource's own, written by an earlier
    /// release, does not have it).
    guide: u8,
    #[serde(default)]
    fixes: BTreeMap<String, Fix>,
    #[serde(default)]
    own: String,
}

impl Private {
    /// The fixes (none in private state an earlier release wrote) and the resource's own.
    fn read(bytes: &[u8]) -> (Option<BTreeMap<String, Fix>>, Vec<u8>) {
        match serde_json::from_slice::<Private>(bytes) {
            Ok(p) if p.guide == 1 => (Some(p.fixes), p.own.into_bytes()),
            _ => (None, bytes.to_vec()),
        }
    }

    fn write(fixes: BTreeMap<String, Fix>, own: Vec<u8>) -> Vec<u8> {
        let p = Private {
            guide: 1,
            fixes,
            own: String::from_utf8_lossy(&own).into_owned(),
        };
        serde_json::to_vec(&p).unwrap_or(own)
    }
}

/// The power to import: a (possibly partial) state from an import id; refresh fills in the
/// rest.
#[async_trait]
pub trait Import: Send + Sync {
    async fn import(
        &self,
        ctx: &Ctx<ExpelData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
}

/// The power to upgrade state written under an older schema version than the schema reads
/// by itself (`raw` is the JSON of the state file).
pub trait Upgrade: Send + Sync {
    fn upgrade_state(
        &self,
        version: i64,
        raw: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
}

/// State of `version` through the resource's upgrade, or the error that it has none.
fn upgraded(
    upgrade: Option<&dyn Upgrade>,
    type_name: &str,
    version: i64,
    raw: &serde_json::Value,
    diags: &mut Diagnostics,
) -> Option<Value> {
    match upgrade {
        Some(u) => u.upgrade_state(version, raw, diags),
        None => tfplugin::provider::no_upgrade(type_name, version, diags),
    }
}

/// A guided resource as Terraform sees it: the guide and its step graph, built once.
pub struct Guide<G: Guided> {
    guide: G,
    graph: Graph<'static, G::Cx>,
}

impl<G: Guided> Guide<G> {
    /// Panics when the steps are not a graph (a duplicate key, an unknown need or a cycle):
    /// a provider bug, which every resource's tests catch before a release.
    pub fn new(guide: G) -> Self {
        let graph = Graph::new(G::steps())
            .unwrap_or_else(|e| panic!("{}: its steps are not a graph: {e}", G::TYPE_NAME));
        Guide { guide, graph }
    }
}

/// Says each failed step as an error, with what the user can do after this operation (a
/// refusal says it itself: applying again would not change it).
pub fn report(diags: &mut Diagnostics, op: Op, what: &str, errors: &[StepError]) {
    for e in errors {
        let detail = match e.kind {
            StepErrorKind::Refused => e.message.clone(),
            StepErrorKind::Failed | StepErrorKind::Interrupted => {
                format!("{}\n\n{}", e.message, op.advice())
            }
        };
        diags.error(
            format!("{} {what} failed at {}", op.doing(), e.step),
            detail,
        );
    }
}

/// The gone-piece plan rule, for the plan of an existing object: whatever drifted is
/// repaired by this plan (`drift` is planned empty), and the ids of a piece that is gone,
/// was never made or is made again change: they are unknown.
pub fn plan_repairs<I: StepId>(planned: &mut Value, ids_of_piece: &[(I, &[&str])], fixes: &Fixes) {
    set(planned, "drift", Value::Map(BTreeMap::new()));
    for (piece, ids) in ids_of_piece {
        if fixes.of(*piece) >= Some(Fix::Remake) {
            for id in *ids {
                set(planned, id, Value::unknown());
            }
        }
    }
}

fn warn<G: Guided>(diags: &mut Diagnostics, cx: &G::Cx) {
    for (summary, detail) in G::warnings(cx) {
        diags.warning(summary, detail);
    }
}

fn deadline(ctx: &Ctx<ExpelData>, t: Duration) -> Deadline {
    Deadline::after(t, ctx.cancel.clone())
}

#[async_trait]
impl<G: Guided> Resource<ExpelData> for Guide<G> {
    fn type_name(&self) -> &'static str {
        G::TYPE_NAME
    }

    fn schema(&self) -> Schema {
        G::schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        G::validate(config, diags);
        ownership::check_tags(config, diags);
        check_timeouts(config, diags);
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx<ExpelData>,
        input: &PlanInput<'_>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        if planned.is_null() {
            return;
        }
        if let Some(p) = self.guide.plan() {
            let fixes = Fixes::for_plan(input.private, input.prior);
            p.modify_plan(ctx, input, &fixes, planned, diags).await;
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ExpelData>,
        planned: &Value,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> ApplyOutcome {
        let nothing = ApplyOutcome {
            state: None,
            private: vec![],
        };
        let t = deadline(ctx, timeout(planned, "create", G::DEFAULT_TIMEOUT));
        let mut values = planned.clone();
        let Ok(cx) = self
            .guide
            .open(
                ctx,
                Opening {
                    op: Op::Create,
                    values: &mut values,
                    prior: &Value::Null,
                    private: &[],
                    deadline: t,
                },
                diags,
            )
            .await
        else {
            return nothing;
        };
        let mut errors = engine::create_all(&self.graph, &cx).await;
        if errors.is_empty() {
            errors.extend(G::after_create(&cx).await.err());
        }
        if !errors.is_empty() && G::made_nothing(&cx) {
            // Nothing exists (e.g. the first call was refused): no state, so no tainted
            // resource, and the next apply starts afresh.
            for e in &errors {
                diags.error(
                    format!("{} {} failed at {}", Op::Create.doing(), G::WHAT, e.step),
                    format!(
                        "{}\n\nNothing was made; fix the cause and apply again.",
                        e.message
                    ),
                );
            }
            return nothing;
        }
        if !interrupted_create(diags, cx.deadline(), &errors) {
            report(diags, Op::Create, G::WHAT, &errors);
        }
        warn::<G>(diags, &cx);
        ApplyOutcome {
            state: Some(G::state_from(planned, &cx, BTreeMap::new())),
            private: Private::write(BTreeMap::new(), G::private_of(&cx, &[])),
        }
    }

    async fn read(
        &self,
        ctx: &Ctx<ExpelData>,
        state: &Value,
        private: &[u8],
        diags: &mut Diagnostics,
    ) -> ReadOutcome {
        let keep = |s: &Value| ReadOutcome {
            state: Some(s.clone()),
            private: private.to_vec(),
        };
        let gone = ReadOutcome {
            state: None,
            private: private.to_vec(),
        };
        let (_, own) = Private::read(private);
        let mut base = state.clone();
        let t = deadline(ctx, READ_TIMEOUT);
        let cx = match self
            .guide
            .open(
                ctx,
                Opening {
                    op: Op::Read,
                    values: &mut base,
                    prior: state,
                    private: &own,
                    deadline: t,
                },
                diags,
            )
            .await
        {
            Ok(cx) => cx,
            Err(Closed::Failed) => return keep(state),
            Err(Closed::Gone) => return gone,
        };
        if let Err(e) = self.guide.before_observe(&cx, diags).await {
            report(diags, Op::Read, G::WHAT, &[e]);
            return keep(&base);
        }
        let (seen, errors) = engine::observe_all(&self.graph, &cx).await;
        if !errors.is_empty() {
            report(diags, Op::Read, G::WHAT, &errors);
            return keep(&base);
        }
        warn::<G>(diags, &cx);
        let Refreshed {
            all_gone,
            drift,
            fixes,
        } = engine::refreshed(&self.graph, &seen, G::TRANSIENT);
        if all_gone && !G::keep_when_gone(&cx) {
            return gone;
        }
        warn_drift(diags, &drift, &G::drift_place(&cx));
        // Ids of gone pieces stay in state (so plan can name them) until apply re-creates.
        ReadOutcome {
            private: Private::write(fixes, G::private_of(&cx, &own)),
            state: Some(G::state_from(&base, &cx, drift)),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx<ExpelData>,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        private: &[u8],
        diags: &mut Diagnostics,
    ) -> ApplyOutcome {
        let (_, own) = Private::read(private);
        let mut base = planned.clone();
        for k in G::STATE_IDS {
            if let Some(v) = prior.get(k) {
                if !base.get(k).is_some_and(|x| x.is_known() && !x.is_null()) {
                    set(&mut base, k, v.clone());
                }
            }
        }
        let t = deadline(ctx, timeout(planned, "update", G::DEFAULT_TIMEOUT));
        let Ok(cx) = self
            .guide
            .open(
                ctx,
                Opening {
                    op: Op::Update,
                    values: &mut base,
                    prior,
                    private: &own,
                    deadline: t,
                },
                diags,
            )
            .await
        else {
            return ApplyOutcome {
                state: None,
                private: private.to_vec(),
            };
        };
        // State from before owners existed: its objects become this instance's first.
        let mut errors: Vec<_> = match Owner::recorded(prior) {
            None => G::claim(&cx).await.err().into_iter().collect(),
            Some(_) => Vec::new(),
        };
        if errors.is_empty() {
            errors = engine::converge(&self.graph, &cx).await;
        }
        if errors.is_empty() {
            errors.extend(
                self.guide
                    .after_converge(&cx, prior, planned, diags)
                    .await
                    .err(),
            );
        }
        report(diags, Op::Update, G::WHAT, &errors);
        warn::<G>(diags, &cx);
        let mut state = G::state_from(planned, &cx, BTreeMap::new());
        if !errors.is_empty() {
            G::after_failed_update(&mut state, prior, planned);
        }
        ApplyOutcome {
            state: Some(state),
            private: Private::write(BTreeMap::new(), G::private_of(&cx, &own)),
        }
    }

    async fn delete(
        &self,
        ctx: &Ctx<ExpelData>,
        prior: &Value,
        private: &[u8],
        diags: &mut Diagnostics,
    ) {
        let t = deadline(ctx, timeout(prior, "delete", G::DEFAULT_TIMEOUT));
        let (_, own) = Private::read(private);
        let mut values = prior.clone();
        let Ok(cx) = self
            .guide
            .open(
                ctx,
                Opening {
                    op: Op::Delete,
                    values: &mut values,
                    prior,
                    private: &own,
                    deadline: t,
                },
                diags,
            )
            .await
        else {
            return;
        };
        let errors = engine::delete_all(&self.graph, &cx).await;
        report(diags, Op::Delete, G::WHAT, &errors);
        warn::<G>(diags, &cx);
        G::after_delete(&cx, diags);
    }

    fn upgrade_state(
        &self,
        version: i64,
        raw: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        upgraded(self.guide.upgrade(), G::TYPE_NAME, version, raw, diags)
    }

    async fn import(
        &self,
        ctx: &Ctx<ExpelData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        match self.guide.import() {
            Some(i) => i.import(ctx, id, diags).await,
            None => {
                diags.error(
                    "Import is not supported",
                    format!("{} cannot be imported.", G::TYPE_NAME),
                );
                None
            }
        }
    }
}

/// What the step `id` of `G` needs, after checking `G`'s step graph (for the resources'
/// tests of guide order).
#[cfg(test)]
pub fn needs<G: Guided>(id: <G::Cx as StepContext>::Id) -> Vec<<G::Cx as StepContext>::Id> {
    let graph = Graph::new(G::steps()).expect("the steps are a graph");
    graph
        .steps()
        .iter()
        .find(|s| s.id() == id)
        .map(|s| s.needs().to_vec())
        .unwrap_or_else(|| panic!("{} has no step {id:?}", G::TYPE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_gets_the_advice_of_its_operation_and_a_refusal_only_its_own_words() {
        let mut d = Diagnostics::default();
        let errors = [
            StepError::new("Step 3: queue", "SQS said no"),
            StepError::refused("Step 6: role", "IAM role R belongs to another instance."),
        ];
        report(&mut d, Op::Update, "the member role", &errors);
        let found: Vec<_> = d.iter().collect();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].summary,
            "Repairing the member role failed at Step 3: queue"
        );
        assert!(
            found[0].detail.ends_with(Op::Update.advice()),
            "{}",
            found[0].detail
        );
        assert_eq!(found[1].detail, "IAM role R belongs to another instance.");
    }

    /// Renames `old_name` (schema version -1) to `name`.
    struct Rename;

    impl Upgrade for Rename {
        fn upgrade_state(
            &self,
            _version: i64,
            raw: &serde_json::Value,
            _diags: &mut Diagnostics,
        ) -> Option<Value> {
            let name = raw.get("old_name")?.as_str()?;
            Some(Value::object([("name", Value::string(name))]))
        }
    }

    #[test]
    fn an_upgrade_is_a_power_a_resource_may_lack() {
        let raw = serde_json::json!({"old_name": "Acme"});
        let mut d = Diagnostics::default();
        let v = upgraded(Some(&Rename), "expel_x", -1, &raw, &mut d);
        assert_eq!(v, Some(Value::object([("name", Value::string("Acme"))])));
        assert!(d.iter().next().is_none());
        assert_eq!(upgraded(None, "expel_x", -1, &raw, &mut d), None);
        let found: Vec<_> = d.iter().collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].summary, "Unsupported state version");
        assert!(found[0].detail.contains("expel_x") && found[0].detail.contains("-1"));
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
    #[strum(serialize_all = "snake_case")]
    enum Piece {
        ServiceAccount,
        WebhookIntegration,
    }

    #[test]
    fn the_refresh_fixes_reach_the_plan_around_the_resources_own_private_state() {
        let own = br#"{"sa_rotated_at":"2026-01-01"}"#.to_vec();
        let fixes = BTreeMap::from([("webhook_integration".to_string(), Fix::Remake)]);
        let bytes = Private::write(fixes.clone(), own.clone());
        assert_eq!(Private::read(&bytes), (Some(fixes), own.clone()));
        let f = Fixes::for_plan(&bytes, &Value::Null);
        assert_eq!(f.of(Piece::WebhookIntegration), Some(Fix::Remake));
        assert_eq!(f.of(Piece::ServiceAccount), None);

        // Only the pieces made (again) get unknown ids.
        let ids: &[(Piece, &[&str])] = &[
            (Piece::ServiceAccount, &["client_id"]),
            (Piece::WebhookIntegration, &["integration_id"]),
        ];
        let mut planned = Value::object([
            ("client_id", Value::string("c")),
            ("integration_id", Value::string("i")),
        ]);
        plan_repairs(&mut planned, ids, &f);
        assert_eq!(planned.get("client_id"), Some(&Value::string("c")));
        assert_eq!(planned.get("integration_id"), Some(&Value::unknown()));
        assert_eq!(planned.get("drift"), Some(&Value::Map(BTreeMap::new())));
    }

    #[test]
    fn private_state_of_an_earlier_release_is_the_resources_own_and_its_drift_is_the_worst() {
        let own = br#"{"domain_added":true}"#.to_vec();
        assert_eq!(Private::read(&own), (None, own.clone()));
        assert_eq!(Private::read(b""), (None, vec![]));
        let prior = Value::object([(
            "drift",
            Value::Map(BTreeMap::from([(
                "service_account".to_string(),
                Value::string("service account scopes are [] instead of [\"read:issues\"]"),
            )])),
        )]);
        let f = Fixes::for_plan(&own, &prior);
        assert_eq!(f.of(Piece::ServiceAccount), Some(Fix::Make));
        assert_eq!(f.of(Piece::WebhookIntegration), None);
    }
}
