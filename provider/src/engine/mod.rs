//! The provisioning engine: a resource is a set of named steps (one per guide step) with
//! dependencies. The engine runs independent steps concurrently and dependents in order,
//! observes every piece for drift, repairs or re-creates what drifted, and deletes in
//! reverse order. Steps record the ids they make in the resource's journal as they go, so a
//! failure leaves a state that lists everything that exists.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

use async_trait::async_trait;
use futures_util::stream::{FuturesUnordered, StreamExt};

pub mod retry;

/// Whether an error is worth retrying is the clients' to say (beside each error type).
pub use crate::clients::retry::{RetryKind, Retryable};
pub use retry::Deadline;

/// What kind of failure a step had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepErrorKind {
    /// A call or a check failed; the message says why and `source` keeps the error.
    Failed,
    /// The object belongs to another instance or to someone else: applying again changes
    /// nothing; the message says how to share, rename or release it.
    Refused,
    /// Not started: Terraform was interrupted (StopProvider).
    Interrupted,
}

/// A failure of one step, in words for the user, with its kind and (for a failed call) the
/// error behind it.
#[derive(Clone, Debug)]
pub struct StepError {
    pub step: &'static str,
    pub message: String,
    pub kind: StepErrorKind,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl StepError {
    /// A failure said in words.
    pub fn new(step: &'static str, message: impl std::fmt::Display) -> Self {
        StepError {
            step,
            message: message.to_string(),
            kind: StepErrorKind::Failed,
            source: None,
        }
    }

    /// A failed call: its error is the message and stays the source.
    pub fn caused_by(
        step: &'static str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StepError {
            message: e.to_string(),
            source: Some(std::sync::Arc::new(e)),
            ..StepError::new(step, "")
        }
    }

    /// An object this instance may not adopt or change (see `support::ownership`).
    pub fn refused(step: &'static str, message: impl std::fmt::Display) -> Self {
        StepError {
            kind: StepErrorKind::Refused,
            ..StepError::new(step, message)
        }
    }

    fn interrupted(step: &'static str) -> Self {
        StepError {
            kind: StepErrorKind::Interrupted,
            ..StepError::new(
                step,
                "not started: Terraform was interrupted (StopProvider)",
            )
        }
    }
}

/// Equal when they say the same (the source is what the message already says).
impl PartialEq for StepError {
    fn eq(&self, other: &Self) -> bool {
        (self.step, &self.message, self.kind) == (other.step, &other.message, other.kind)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// How apply brings a piece back, weakest first: what of the piece changes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Fix {
    /// Set back in place; the piece's ids stay.
    InPlace,
    /// A pending deletion is cancelled (a KMS key scheduled for deletion); ids stay.
    Restore,
    /// A credential of the piece (a secret, a token) is made anew; ids stay.
    Renew,
    /// No call can change what differs: the piece is deleted and made again; ids change.
    Remake,
    /// Gone, or never made: made (again); ids change.
    Make,
}

/// Why a piece differs, as the resource tells its repairs apart (an enum of its own; `()`
/// when every difference is set back the same way). The default is a setting set back in
/// place.
pub trait Cause: Copy + Eq + Debug + Default + Send + Sync + 'static {
    fn fix(self) -> Fix;
}

impl Cause for () {
    fn fix(self) -> Fix {
        Fix::InPlace
    }
}

/// One difference from the desired state: in words for the user, and its cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem<K = ()> {
    pub text: String,
    pub cause: K,
}

impl<K: Cause> Problem<K> {
    pub fn new(text: impl Into<String>, cause: K) -> Self {
        Problem {
            text: text.into(),
            cause,
        }
    }
}

/// A difference set back in place (most are).
impl<K: Cause> From<String> for Problem<K> {
    fn from(text: String) -> Self {
        Problem::new(text, K::default())
    }
}

/// What observing a piece found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed<K = ()> {
    /// Not created yet (nothing recorded in the journal): a failed create stopped before it.
    NotCreated,
    /// Recorded, but gone.
    Gone,
    /// Present; each problem is one difference from the desired state.
    Present(Vec<Problem<K>>),
}

impl<K: Cause> Observed<K> {
    /// Present, with differences that are all set back in place.
    pub fn differs(texts: Vec<String>) -> Self {
        Observed::Present(texts.into_iter().map(Problem::from).collect())
    }

    /// Present, as desired.
    pub fn fine() -> Self {
        Observed::Present(vec![])
    }

    pub fn problems(&self) -> Vec<String> {
        match self {
            Observed::NotCreated => vec!["not created yet".to_string()],
            Observed::Gone => vec!["deleted outside Terraform".to_string()],
            Observed::Present(p) => p.iter().map(|p| p.text.clone()).collect(),
        }
    }

    /// The strongest fix the piece needs; none when it is as desired.
    pub fn fix(&self) -> Option<Fix> {
        match self {
            Observed::NotCreated | Observed::Gone => Some(Fix::Make),
            Observed::Present(p) => p.iter().map(|p| p.cause.fix()).max(),
        }
    }
}

/// A resource's step ids: one per guide step, usually an enum whose variants name the
/// pieces (`strum::IntoStaticStr` with `serialize_all = "snake_case"` gives the names).
pub trait StepId: Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static {
    /// The piece's name: the key of the `drift` map, e.g. `queue`.
    fn name(self) -> &'static str;
}

impl<T> StepId for T
where
    T: Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static + Into<&'static str>,
{
    fn name(self) -> &'static str {
        self.into()
    }
}

/// One guide step. `C` is the resource's context: clients, desired settings, journal.
#[async_trait]
pub trait Step<C: StepContext>: Send + Sync {
    fn id(&self) -> C::Id;
    /// The guide step in words, e.g. "Step 3: SQS queue and access policy".
    fn title(&self) -> &'static str;
    fn needs(&self) -> &'static [C::Id];
    /// Creates the object, or adopts it if one with our name and ownership marker exists.
    async fn create(&self, cx: &C) -> Result<(), StepError>;
    /// Reads the live object and compares it with the desired one.
    async fn observe(&self, cx: &C) -> Result<Observed<C::Cause>, StepError>;
    /// Brings an existing object back to the desired state.
    async fn repair(&self, cx: &C, problems: &[Problem<C::Cause>]) -> Result<(), StepError>;
    /// Deletes the object; "already gone" is success.
    async fn delete(&self, cx: &C) -> Result<(), StepError>;
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = (usize, Result<(), StepError>)> + Send + 'a>>;

/// What the engine needs of every resource's step context.
pub trait StepContext: Sync {
    /// The ids of the resource's steps.
    type Id: StepId;
    /// Why its pieces differ.
    type Cause: Cause;
    /// The operation's deadline and the token StopProvider cancels.
    fn deadline(&self) -> &Deadline;
}

/// A check: a step that verifies something and leaves nothing behind (e.g. a canary
/// message through the pipeline). As a step ([`Checked`]) it runs when its piece is made or
/// repaired; a refresh finds nothing to compare and a delete has nothing to remove.
#[async_trait]
pub trait Check<C: StepContext>: Send + Sync {
    fn id(&self) -> C::Id;
    fn title(&self) -> &'static str;
    fn needs(&self) -> &'static [C::Id];
    async fn check(&self, cx: &C) -> Result<(), StepError>;
}

/// A [`Check`] as a step.
pub struct Checked<K>(pub K);

#[async_trait]
impl<C: StepContext, K: Check<C>> Step<C> for Checked<K> {
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
        self.0.check(cx).await
    }
    async fn observe(&self, _cx: &C) -> Result<Observed<C::Cause>, StepError> {
        Ok(Observed::fine())
    }
    async fn repair(&self, cx: &C, _problems: &[Problem<C::Cause>]) -> Result<(), StepError> {
        self.0.check(cx).await
    }
    async fn delete(&self, _cx: &C) -> Result<(), StepError> {
        Ok(())
    }
}

/// Why a resource's steps are not a graph the engine can run (a provider bug).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("two steps have the key {0:?}")]
    DuplicateKey(&'static str),
    #[error("step {step:?} needs {need:?}, which is not a step")]
    UnknownNeed {
        step: &'static str,
        need: &'static str,
    },
    #[error("the steps {} need each other (a cycle)", .0.join(", "))]
    Cycle(Vec<&'static str>),
}

/// A resource's steps with their dependencies resolved: keys are unique, every step a step
/// needs exists, and no step needs itself through others (a cycle would start nothing).
/// Checked once, when the graph is built; every engine run takes a graph.
pub struct Graph<'s, C> {
    steps: Vec<&'s dyn Step<C>>,
    /// needs[i]: the positions of the steps step i needs.
    needs: Vec<Vec<usize>>,
}

impl<'s, C: StepContext> Graph<'s, C> {
    pub fn new(steps: Vec<&'s dyn Step<C>>) -> Result<Self, GraphError> {
        let keys: Vec<C::Id> = steps.iter().map(|s| s.id()).collect();
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].contains(k) {
                return Err(GraphError::DuplicateKey(k.name()));
            }
        }
        let mut needs = Vec::with_capacity(steps.len());
        for s in &steps {
            let mut mine = Vec::new();
            for need in s.needs() {
                match keys.iter().position(|k| k == need) {
                    Some(j) => mine.push(j),
                    None => {
                        return Err(GraphError::UnknownNeed {
                            step: s.id().name(),
                            need: need.name(),
                        })
                    }
                }
            }
            needs.push(mine);
        }
        // Kahn: repeatedly take the steps whose needs are all taken; what is left is a cycle.
        let mut taken = vec![false; steps.len()];
        let mut left = steps.len();
        while left > 0 {
            let ready: Vec<usize> = (0..steps.len())
                .filter(|&i| !taken[i] && needs[i].iter().all(|&j| taken[j]))
                .collect();
            if ready.is_empty() {
                let mut cycle: Vec<&'static str> = (0..steps.len())
                    .filter(|&i| !taken[i])
                    .map(|i| keys[i].name())
                    .collect();
                cycle.sort_unstable();
                return Err(GraphError::Cycle(cycle));
            }
            for i in ready {
                taken[i] = true;
                left -= 1;
            }
        }
        Ok(Graph { steps, needs })
    }

    pub fn steps(&self) -> &[&'s dyn Step<C>] {
        &self.steps
    }

    /// The steps that must finish before step `i` starts: those it needs, or in reverse
    /// (deletes) those that need it.
    fn waits_for(&self, i: usize, reverse: bool) -> HashSet<usize> {
        if reverse {
            (0..self.steps.len())
                .filter(|&j| self.needs[j].contains(&i))
                .collect()
        } else {
            self.needs[i].iter().copied().collect()
        }
    }
}

/// Runs `run` for every step once all the steps it needs are done, concurrently.
/// Stops starting new steps after the first failure or once Terraform cancels (Ctrl-C), lets
/// running ones finish (so the journal records what they made), and returns every error.
/// Each step's start and end (with its outcome and milliseconds) is logged at info, as `op`.
async fn in_order<'a, C, F>(
    graph: &'a Graph<'a, C>,
    cx: &'a C,
    op: &'static str,
    reverse: bool,
    run: F,
) -> Vec<StepError>
where
    C: StepContext,
    F: Fn(&'a dyn Step<C>) -> Pin<Box<dyn Future<Output = Result<(), StepError>> + Send + 'a>>,
{
    let steps = graph.steps();
    let waits_for: Vec<HashSet<usize>> = (0..steps.len())
        .map(|i| graph.waits_for(i, reverse))
        .collect();
    let mut done: HashSet<usize> = HashSet::new();
    let mut started: HashSet<usize> = HashSet::new();
    let mut running: FuturesUnordered<StepFuture<'a>> = FuturesUnordered::new();
    let mut errors = Vec::new();
    let cancel = &cx.deadline().cancel;
    loop {
        if errors.is_empty() && cancel.is_cancelled() {
            let waiting = (0..steps.len()).find(|i| !started.contains(i));
            if let Some(i) = waiting {
                errors.push(StepError::interrupted(steps[i].title()));
            }
        }
        if errors.is_empty() {
            for i in 0..steps.len() {
                if !started.contains(&i) && waits_for[i].is_subset(&done) {
                    started.insert(i);
                    let fut = crate::clients::pause::with_cancel(cancel.clone(), run(steps[i]));
                    let step = steps[i].title();
                    running.push(Box::pin(async move {
                        tracing::info!(step, op, "step started");
                        let started = std::time::Instant::now();
                        let r = fut.await;
                        let ms = started.elapsed().as_millis() as u64;
                        match &r {
                            Ok(()) => tracing::info!(step, op, ms, "step done"),
                            Err(e) => {
                                tracing::info!(step, op, ms, error = %e.message, "step failed")
                            }
                        }
                        (i, r)
                    }));
                }
            }
        }
        match running.next().await {
            None => break,
            Some((i, Ok(()))) => {
                done.insert(i);
            }
            Some((_, Err(e))) => errors.push(e),
        }
    }
    errors
}

/// Creates (or adopts) every piece, in dependency order.
pub async fn create_all<C: StepContext>(graph: &Graph<'_, C>, cx: &C) -> Vec<StepError> {
    in_order(graph, cx, "create", false, |s| Box::pin(s.create(cx))).await
}

/// Observes every piece, each only after the pieces it needs (independent ones
/// concurrently): a piece that compares itself with another's live value (the device with
/// the queue's URL, say) reads it after that piece's observation has filled it in.
pub async fn observe_all<C: StepContext>(
    graph: &Graph<'_, C>,
    cx: &C,
) -> (HashMap<C::Id, Observed<C::Cause>>, Vec<StepError>) {
    let seen = std::sync::Mutex::new(HashMap::new());
    let seen_ref = &seen;
    let errors = in_order(graph, cx, "observe", false, |s| {
        Box::pin(async move {
            let o = s.observe(cx).await?;
            if let Ok(mut g) = seen_ref.lock() {
                g.insert(s.id(), o);
            }
            Ok(())
        })
    })
    .await;
    let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
    (seen, errors)
}

/// What a refresh saw, in the terms Terraform needs.
pub struct Refreshed {
    /// Every piece is gone (or was never made): the object is gone.
    pub all_gone: bool,
    /// Piece name -> its problems in words, for every piece with any (a gone piece is drift).
    pub drift: BTreeMap<String, String>,
    /// Piece name -> the strongest fix it needs, for the same pieces.
    pub fixes: BTreeMap<String, Fix>,
}

/// Sums up `observe_all`: pieces listed in `transient` (checks that leave nothing behind,
/// e.g. a canary) do not count towards "gone".
pub fn refreshed<C: StepContext>(
    graph: &Graph<'_, C>,
    seen: &HashMap<C::Id, Observed<C::Cause>>,
    transient: &[C::Id],
) -> Refreshed {
    let all_gone = seen
        .iter()
        .filter(|(k, _)| !transient.contains(k))
        .all(|(_, o)| matches!(o, Observed::Gone | Observed::NotCreated));
    let mut drift = BTreeMap::new();
    let mut fixes = BTreeMap::new();
    for s in graph.steps() {
        let Some(o) = seen.get(&s.id()) else {
            continue;
        };
        if let Some(fix) = o.fix() {
            let name = s.id().name().to_string();
            drift.insert(name.clone(), o.problems().join("; "));
            fixes.insert(name, fix);
        }
    }
    Refreshed {
        all_gone,
        drift,
        fixes,
    }
}

/// Re-creates what is gone and repairs what drifted, in dependency order (AWS enforces the
/// same order for repair as for create). Each step is observed only after the steps it needs
/// have converged, so it compares itself with what they are now (e.g. a re-created queue's
/// new URL) and is repaired if it points at the old one.
pub async fn converge<C: StepContext>(graph: &Graph<'_, C>, cx: &C) -> Vec<StepError> {
    in_order(graph, cx, "converge", false, |s| {
        Box::pin(async move {
            match s.observe(cx).await? {
                Observed::NotCreated | Observed::Gone => {
                    tracing::info!(step = s.title(), "re-creating");
                    s.create(cx).await
                }
                Observed::Present(p) if p.is_empty() => Ok(()),
                Observed::Present(p) => {
                    tracing::info!(step = s.title(), problems = ?p.iter().map(|p| &p.text).collect::<Vec<_>>(), "repairing");
                    s.repair(cx, &p).await
                }
            }
        })
    })
    .await
}

/// Deletes every piece in reverse dependency order.
pub async fn delete_all<C: StepContext>(graph: &Graph<'_, C>, cx: &C) -> Vec<StepError> {
    in_order(graph, cx, "delete", true, |s| Box::pin(s.delete(cx))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    struct Cx {
        log: Mutex<Vec<String>>,
        live: Mutex<HashMap<&'static str, Vec<String>>>,
        fail: Option<&'static str>,
        deadline: Deadline,
    }

    impl Default for Cx {
        fn default() -> Self {
            Cx {
                log: Mutex::default(),
                live: Mutex::default(),
                fail: None,
                deadline: Deadline::after(
                    Duration::from_secs(60),
                    tokio_util::sync::CancellationToken::new(),
                ),
            }
        }
    }

    impl StepContext for Cx {
        type Id = &'static str;
        type Cause = Remade;
        fn deadline(&self) -> &Deadline {
            &self.deadline
        }
    }

    /// A cause that says whether the piece is made again.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    struct Remade(bool);

    impl Cause for Remade {
        fn fix(self) -> Fix {
            if self.0 {
                Fix::Remake
            } else {
                Fix::InPlace
            }
        }
    }

    struct S(&'static str, &'static [&'static str], u64);

    #[async_trait]
    impl Step<Cx> for S {
        fn id(&self) -> &'static str {
            self.0
        }
        fn title(&self) -> &'static str {
            self.0
        }
        fn needs(&self) -> &'static [&'static str] {
            self.1
        }
        async fn create(&self, cx: &Cx) -> Result<(), StepError> {
            cx.log.lock().unwrap().push(format!("start {}", self.0));
            tokio::time::sleep(Duration::from_millis(self.2)).await;
            if cx.fail == Some(self.0) {
                return Err(StepError::new(self.0, "boom"));
            }
            cx.live.lock().unwrap().insert(self.0, vec![]);
            cx.log.lock().unwrap().push(format!("end {}", self.0));
            Ok(())
        }
        async fn observe(&self, cx: &Cx) -> Result<Observed<Remade>, StepError> {
            cx.log.lock().unwrap().push(format!("look {}", self.0));
            tokio::time::sleep(Duration::from_millis(self.2)).await;
            let o = match cx.live.lock().unwrap().get(self.0) {
                None => Observed::Gone,
                Some(p) => Observed::differs(p.clone()),
            };
            cx.log.lock().unwrap().push(format!("seen {}", self.0));
            Ok(o)
        }
        async fn repair(&self, cx: &Cx, _p: &[Problem<Remade>]) -> Result<(), StepError> {
            cx.log.lock().unwrap().push(format!("repair {}", self.0));
            cx.live.lock().unwrap().insert(self.0, vec![]);
            Ok(())
        }
        async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
            cx.live.lock().unwrap().remove(self.0);
            cx.log.lock().unwrap().push(format!("delete {}", self.0));
            Ok(())
        }
    }

    fn pos(log: &[String], what: &str) -> usize {
        log.iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("{what} not in {log:?}"))
    }

    const KEY: S = S("key", &[], 30);
    const BUCKET: S = S("bucket", &["key"], 10);
    const QUEUE: S = S("queue", &["key"], 30);
    const NOTICE: S = S("notice", &["bucket", "queue"], 1);

    fn graph(steps: &[&'static dyn Step<Cx>]) -> Graph<'static, Cx> {
        Graph::new(steps.to_vec()).expect("a valid graph")
    }

    #[test]
    fn an_unknown_need_a_cycle_or_a_key_twice_is_an_error_when_the_graph_is_built() {
        const LOOP_A: S = S("a", &["b"], 1);
        const LOOP_B: S = S("b", &["a"], 1);
        const TYPO: S = S("notice", &["bukcet"], 1);
        let built = |s: &[&'static dyn Step<Cx>]| Graph::new(s.to_vec()).err();
        assert_eq!(built(&[&NOTICE, &QUEUE, &BUCKET, &KEY]), None);
        let e = built(&[&KEY, &TYPO]).expect("an unknown need");
        assert_eq!(
            e,
            GraphError::UnknownNeed {
                step: "notice",
                need: "bukcet"
            }
        );
        assert!(e.to_string().contains("\"notice\" needs \"bukcet\""), "{e}");
        let e = built(&[&KEY, &LOOP_A, &LOOP_B]).expect("a cycle");
        assert_eq!(e, GraphError::Cycle(vec!["a", "b"]));
        assert!(e.to_string().contains("a, b need each other"), "{e}");
        assert_eq!(built(&[&KEY, &KEY]), Some(GraphError::DuplicateKey("key")));
    }

    struct Canary;

    #[async_trait]
    impl Check<Cx> for Canary {
        fn id(&self) -> &'static str {
            "canary"
        }
        fn title(&self) -> &'static str {
            "canary"
        }
        fn needs(&self) -> &'static [&'static str] {
            &["key"]
        }
        async fn check(&self, cx: &Cx) -> Result<(), StepError> {
            cx.log.lock().unwrap().push("check canary".into());
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_check_runs_when_made_and_is_never_drift_nor_deleted() {
        let cx = Cx::default();
        let steps = graph(&[&KEY, &Checked(Canary)]);
        assert!(create_all(&steps, &cx).await.is_empty());
        let (seen, errs) = observe_all(&steps, &cx).await;
        assert!(errs.is_empty());
        assert_eq!(seen["canary"], Observed::Present(vec![]));
        assert!(delete_all(&steps, &cx).await.is_empty());
        let log = cx.log.lock().unwrap().clone();
        assert_eq!(
            log.iter().filter(|l| *l == "check canary").count(),
            1,
            "{log:?}"
        );
        assert!(pos(&log, "end key") < pos(&log, "check canary"), "{log:?}");
    }

    #[test]
    fn a_failed_call_keeps_its_error_as_the_source_and_says_it() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "the queue did not answer");
        let e = StepError::caused_by("queue", io);
        assert_eq!(e.kind, StepErrorKind::Failed);
        assert_eq!(e.message, "the queue did not answer");
        let source = std::error::Error::source(&e).expect("the source is kept");
        assert_eq!(source.to_string(), "the queue did not answer");
        assert!(std::error::Error::source(&StepError::new("queue", "no")).is_none());
    }

    #[tokio::test]
    async fn independent_steps_overlap_and_dependents_wait() {
        let cx = Cx::default();
        let steps = graph(&[&NOTICE, &QUEUE, &BUCKET, &KEY]);
        assert!(create_all(&steps, &cx).await.is_empty());
        let log = cx.log.lock().unwrap().clone();
        assert!(pos(&log, "end key") < pos(&log, "start bucket"));
        assert!(pos(&log, "end key") < pos(&log, "start queue"));
        // bucket and queue run at the same time.
        assert!(
            pos(&log, "start queue") < pos(&log, "end bucket")
                || pos(&log, "start bucket") < pos(&log, "end queue")
        );
        assert!(pos(&log, "end bucket") < pos(&log, "start notice"));
        assert!(pos(&log, "end queue") < pos(&log, "start notice"));
    }

    #[tokio::test]
    async fn failure_stops_dependents_and_reports_the_step() {
        let cx = Cx {
            fail: Some("queue"),
            ..Default::default()
        };
        let steps = graph(&[&KEY, &BUCKET, &QUEUE, &NOTICE]);
        let errs = create_all(&steps, &cx).await;
        assert_eq!(errs, vec![StepError::new("queue", "boom")]);
        let log = cx.log.lock().unwrap().clone();
        assert!(!log.iter().any(|l| l == "start notice"), "{log:?}");
        assert!(
            log.iter().any(|l| l == "end bucket"),
            "running steps finish: {log:?}"
        );
    }

    #[tokio::test]
    async fn an_interrupt_lets_running_steps_finish_and_starts_no_more() {
        let cx = Cx::default();
        let steps = graph(&[&KEY, &BUCKET, &QUEUE, &NOTICE]);
        let cancel = cx.deadline.cancel.clone();
        let interrupt = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            cancel.cancel();
        };
        let (errs, ()) = tokio::join!(create_all(&steps, &cx), interrupt);
        let log = cx.log.lock().unwrap().clone();
        assert!(
            log.contains(&"end key".to_string()),
            "the running step finished: {log:?}"
        );
        assert!(
            !log.iter()
                .any(|l| l.starts_with("start ") && l != "start key"),
            "{log:?}"
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("interrupted"), "{errs:?}");
        assert_eq!(errs[0].kind, StepErrorKind::Interrupted);
        assert!(
            cx.live.lock().unwrap().contains_key("key"),
            "what was made is recorded"
        );
    }

    #[tokio::test]
    async fn converge_recreates_gone_and_repairs_drift_then_delete_reverses() {
        let cx = Cx::default();
        let steps = graph(&[&KEY, &BUCKET, &QUEUE, &NOTICE]);
        assert!(create_all(&steps, &cx).await.is_empty());
        cx.live.lock().unwrap().remove("queue");
        cx.live
            .lock()
            .unwrap()
            .insert("bucket", vec!["encryption removed".into()]);
        let (seen, errs) = observe_all(&steps, &cx).await;
        assert!(errs.is_empty());
        assert_eq!(seen["queue"], Observed::Gone);
        assert_eq!(
            seen["bucket"].problems(),
            vec!["encryption removed".to_string()]
        );
        cx.log.lock().unwrap().clear();
        assert!(converge(&steps, &cx).await.is_empty());
        let log = cx.log.lock().unwrap().clone();
        assert!(
            log.contains(&"end queue".to_string()) && log.contains(&"repair bucket".to_string()),
            "{log:?}"
        );
        assert!(
            !log.contains(&"start key".to_string()),
            "healthy pieces are left alone: {log:?}"
        );

        cx.log.lock().unwrap().clear();
        assert!(delete_all(&steps, &cx).await.is_empty());
        let log = cx.log.lock().unwrap().clone();
        assert!(pos(&log, "delete notice") < pos(&log, "delete bucket"));
        assert!(pos(&log, "delete bucket") < pos(&log, "delete key"));
        assert!(pos(&log, "delete queue") < pos(&log, "delete key"));
    }

    #[tokio::test]
    async fn refresh_observes_each_piece_after_the_pieces_it_needs() {
        let cx = Cx::default();
        let steps = graph(&[&NOTICE, &QUEUE, &BUCKET, &KEY]);
        assert!(create_all(&steps, &cx).await.is_empty());
        cx.log.lock().unwrap().clear();
        let (seen, errs) = observe_all(&steps, &cx).await;
        assert!(errs.is_empty());
        assert_eq!(seen.len(), 4);
        let log = cx.log.lock().unwrap().clone();
        assert!(pos(&log, "seen key") < pos(&log, "look bucket"), "{log:?}");
        assert!(pos(&log, "seen key") < pos(&log, "look queue"), "{log:?}");
        assert!(
            pos(&log, "seen bucket") < pos(&log, "look notice"),
            "{log:?}"
        );
        assert!(
            pos(&log, "seen queue") < pos(&log, "look notice"),
            "{log:?}"
        );
        // Independent pieces are still observed at the same time.
        assert!(
            pos(&log, "look queue") < pos(&log, "seen bucket")
                || pos(&log, "look bucket") < pos(&log, "seen queue"),
            "{log:?}"
        );
    }

    #[test]
    fn refreshed_names_gone_pieces_and_ignores_transient_checks() {
        let (a, b, c) = (S("a", &[], 0), S("b", &["a"], 0), S("check", &["b"], 0));
        let steps = Graph::new(vec![&a as &dyn Step<Cx>, &b, &c]).expect("a valid graph");
        let seen = HashMap::from([
            ("a", Observed::Gone),
            (
                "b",
                Observed::Present(vec![
                    "x is off".to_string().into(),
                    Problem::new("y is 2", Remade(true)),
                ]),
            ),
            ("check", Observed::Present(vec![])),
        ]);
        let r = refreshed(&steps, &seen, &["check"]);
        assert!(!r.all_gone);
        assert_eq!(
            r.drift.get("a").map(String::as_str),
            Some("deleted outside Terraform")
        );
        assert_eq!(
            r.drift.get("b").map(String::as_str),
            Some("x is off; y is 2")
        );
        assert!(!r.drift.contains_key("check"));
        // The strongest fix of each drifted piece: a gone one is made, b is made again.
        assert_eq!(
            r.fixes,
            BTreeMap::from([("a".to_string(), Fix::Make), ("b".to_string(), Fix::Remake)])
        );
        let gone = HashMap::from([
            ("a", Observed::Gone),
            ("b", Observed::NotCreated),
            ("check", Observed::Present(vec![])),
        ]);
        assert!(refreshed(&steps, &gone, &["check"]).all_gone);
        assert!(!refreshed(&steps, &gone, &[]).all_gone);
    }
}
