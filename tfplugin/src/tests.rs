//! The gRPC service driven in-process the way Terraform drives it, with test resources that
//! exercise the central rules: unknowns on create, apply checked against plan, partial
//! state, panics and cancellation turned into diagnostics.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tonic::Request;

use super::diag::Diagnostics;
use super::plan::mark_computed_unknown;
use super::proto::tfplugin6 as pb;
use super::proto::tfplugin6::provider_server::Provider as _;
use super::provider::{
    ApplyOutcome, Ctx, DataSource, Function, PlanInput, Provider, ReadOutcome, Resource,
};
use super::schema::{Attribute, Block, NestedBlock, Schema};
use super::server::PluginServer;
use super::value::{decode_msgpack, encode_msgpack, Type, Value};

#[derive(Default)]
struct Store {
    names: Mutex<HashMap<String, String>>,
    next: AtomicU64,
}

struct TestProvider(Arc<Store>);

#[async_trait]
impl Provider for TestProvider {
    type Data = Arc<Store>;
    fn type_name(&self) -> &'static str {
        "test"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new("test").attr(Attribute::string("mode").optional()),
        )
    }
    async fn configure(&self, config: &Value, _v: &str, d: &mut Diagnostics) -> Option<Arc<Store>> {
        if config.get("mode").and_then(Value::as_str) == Some("bad") {
            d.error("bad mode", "");
            return None;
        }
        Some(self.0.clone())
    }
    fn resources(&self) -> Vec<Arc<dyn Resource<Arc<Store>>>> {
        vec![
            Arc::new(Widget(Behaviour::Honest)),
            Arc::new(Widget(Behaviour::Panics)),
            Arc::new(Widget(Behaviour::Lies)),
            Arc::new(Widget(Behaviour::FailsHalfway)),
            Arc::new(Widget(Behaviour::Hangs)),
            Arc::new(Widget(Behaviour::DefaultsOverUnknown)),
            Arc::new(Widget(Behaviour::StopsWhenAsked)),
        ]
    }
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Arc<Store>>>> {
        vec![]
    }
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        vec![]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Honest,
    Panics,
    Lies,
    FailsHalfway,
    Hangs,
    /// Plans a default where the configuration holds an unknown value (a name taken from
    /// another resource): the bug the central plan check must catch.
    DefaultsOverUnknown,
    /// Makes its id, then waits; when cancelled returns what it made, with a warning.
    StopsWhenAsked,
}

struct Widget(Behaviour);

fn widget_schema() -> Schema {
    Schema::new(
        1,
        Block::new("widget")
            .attr(Attribute::string("name").required())
            .attr(Attribute::number("size").default(Value::from(1i64)))
            .attr(Attribute::string("id").computed().use_state_for_unknown())
            .attr(Attribute::number("revision").computed())
            .attr(Attribute::string("secret").optional().write_only())
            .block(NestedBlock::list(
                "tag",
                Block::new("tag").attr(Attribute::string("key").required()),
            )),
    )
    .readable_from(0)
}

#[async_trait]
impl Resource<Arc<Store>> for Widget {
    fn type_name(&self) -> &'static str {
        match self.0 {
            Behaviour::Honest => "test_widget",
            Behaviour::Panics => "test_panics",
            Behaviour::Lies => "test_lies",
            Behaviour::FailsHalfway => "test_halfway",
            Behaviour::Hangs => "test_hangs",
            Behaviour::DefaultsOverUnknown => "test_defaults",
            Behaviour::StopsWhenAsked => "test_stops",
        }
    }
    fn schema(&self) -> Schema {
        widget_schema()
    }
    async fn modify_plan(
        &self,
        _ctx: &Ctx<Arc<Store>>,
        input: &PlanInput<'_>,
        planned: &mut Value,
        _d: &mut Diagnostics,
    ) {
        if !input.prior.is_null() && input.prior.get("name") != planned.get("name") {
            mark_computed_unknown(&widget_schema().block, input.config, planned);
        }
        if self.0 == Behaviour::DefaultsOverUnknown
            && input.config.get("size").is_some_and(|v| !v.is_known())
        {
            set(planned, "size", Value::from(1i64));
        }
    }
    async fn create(
        &self,
        ctx: &Ctx<Arc<Store>>,
        planned: &Value,
        _c: &Value,
        d: &mut Diagnostics,
    ) -> ApplyOutcome {
        let mut s = planned.clone();
        let id = format!("w-{}", ctx.data.next.fetch_add(1, Ordering::SeqCst));
        match self.0 {
            Behaviour::Panics => panic!("boom"),
            Behaviour::Hangs => {
                ctx.cancel.cancelled().await;
                std::future::pending::<()>().await;
            }
            Behaviour::StopsWhenAsked => {
                set(&mut s, "id", Value::string(id));
                ctx.cancel.cancelled().await;
                d.warning("Interrupted", "what was made is kept");
                return ApplyOutcome {
                    state: Some(s),
                    private: vec![],
                };
            }
            Behaviour::Lies => set(&mut s, "name", Value::string("something else")),
            Behaviour::FailsHalfway => {
                set(&mut s, "id", Value::string(id));
                d.error("step 2 failed", "the second step failed");
                return ApplyOutcome {
                    state: Some(s),
                    private: vec![],
                };
            }
            Behaviour::Honest | Behaviour::DefaultsOverUnknown => {}
        }
        let name = planned
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        ctx.data.names.lock().unwrap().insert(id.clone(), name);
        set(&mut s, "id", Value::string(id));
        set(&mut s, "revision", Value::from(1i64));
        ApplyOutcome {
            state: Some(s),
            private: b"{\"k\":1}".to_vec(),
        }
    }
    async fn read(
        &self,
        ctx: &Ctx<Arc<Store>>,
        state: &Value,
        private: &[u8],
        _d: &mut Diagnostics,
    ) -> ReadOutcome {
        let id = state.get("id").and_then(Value::as_str).unwrap_or_default();
        let name = ctx.data.names.lock().unwrap().get(id).cloned();
        let state = name.map(|n| {
            let mut s = state.clone();
            set(&mut s, "name", Value::string(n));
            s
        });
        ReadOutcome {
            state,
            private: private.to_vec(),
        }
    }
    async fn update(
        &self,
        ctx: &Ctx<Arc<Store>>,
        prior: &Value,
        planned: &Value,
        _c: &Value,
        _p: &[u8],
        _d: &mut Diagnostics,
    ) -> ApplyOutcome {
        let mut s = planned.clone();
        let id = prior
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = planned
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        ctx.data.names.lock().unwrap().insert(id, name);
        let rev = prior.get("revision").and_then(Value::as_i64).unwrap_or(0);
        set(&mut s, "revision", Value::from(rev + 1));
        ApplyOutcome {
            state: Some(s),
            private: vec![],
        }
    }
    async fn delete(&self, ctx: &Ctx<Arc<Store>>, prior: &Value, _p: &[u8], _d: &mut Diagnostics) {
        let id = prior.get("id").and_then(Value::as_str).unwrap_or_default();
        ctx.data.names.lock().unwrap().remove(id);
    }
    async fn import(
        &self,
        _ctx: &Ctx<Arc<Store>>,
        id: &str,
        _d: &mut Diagnostics,
    ) -> Option<Value> {
        Some(Value::object([("id", Value::string(id))]))
    }
}

fn set(v: &mut Value, k: &str, x: Value) {
    if let Value::Object(m) = v {
        m.insert(k.to_string(), x);
    }
}

fn ty() -> Type {
    widget_schema().ty()
}

fn dv(v: &Value, t: &Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: encode_msgpack(v, t).unwrap(),
        json: vec![],
    })
}

fn undv(d: &Option<pb::DynamicValue>) -> Value {
    decode_msgpack(&d.as_ref().unwrap().msgpack, &ty()).unwrap()
}

fn widget(name: &str) -> Value {
    Value::object([
        ("name", Value::string(name)),
        ("size", Value::Null),
        ("id", Value::Null),
        ("revision", Value::Null),
        ("secret", Value::string("s3cr3t")),
        ("tag", Value::List(vec![])),
    ])
}

async fn configured() -> PluginServer<TestProvider> {
    configured_with(Arc::new(Store::default())).await
}

async fn configured_with(store: Arc<Store>) -> PluginServer<TestProvider> {
    let s = PluginServer::new(TestProvider(store));
    let cfg = Value::object([("mode", Value::Null)]);
    let r = s
        .configure_provider(Request::new(pb::configure_provider::Request {
            terraform_version: "1.11.4".into(),
            config: dv(&cfg, &Type::object([("mode", Type::String)])),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty());
    s
}

async fn plan(
    s: &PluginServer<TestProvider>,
    name: &str,
    prior: &Value,
    config: &Value,
) -> pb::plan_resource_change::Response {
    // Terraform's proposed state: config values, prior values for computed attributes.
    let mut proposed = config.clone();
    for k in ["id", "revision"] {
        if let Some(v) = prior.get(k) {
            set(&mut proposed, k, v.clone());
        }
    }
    s.plan_resource_change(Request::new(pb::plan_resource_change::Request {
        type_name: name.into(),
        prior_state: dv(prior, &ty()),
        proposed_new_state: dv(&proposed, &ty()),
        config: dv(config, &ty()),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
}

async fn apply(
    s: &PluginServer<TestProvider>,
    name: &str,
    prior: &Value,
    planned: &Option<pb::DynamicValue>,
    config: &Value,
) -> pb::apply_resource_change::Response {
    s.apply_resource_change(Request::new(pb::apply_resource_change::Request {
        type_name: name.into(),
        prior_state: dv(prior, &ty()),
        planned_state: planned.clone(),
        config: dv(config, &ty()),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn lifecycle_create_read_update_import_delete() {
    let store = Arc::new(Store::default());
    let s = configured_with(store.clone()).await;
    let config = widget("a");
    let p = plan(&s, "test_widget", &Value::Null, &config).await;
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    let planned = undv(&p.planned_state);
    assert_eq!(planned.get("id"), Some(&Value::unknown()));
    assert_eq!(
        planned.get("size").and_then(Value::as_i64),
        Some(1),
        "default applied"
    );
    assert_eq!(
        planned.get("secret"),
        Some(&Value::Null),
        "write-only planned null"
    );

    let a = apply(&s, "test_widget", &Value::Null, &p.planned_state, &config).await;
    assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
    let state = undv(&a.new_state);
    assert_eq!(state.get("id"), Some(&Value::string("w-0")));

    // No change: the plan equals the state.
    let p2 = plan(&s, "test_widget", &state, &config).await;
    assert_eq!(undv(&p2.planned_state), state);
    assert!(p2.requires_replace.is_empty());

    // Rename: id kept (use_state_for_unknown), revision unknown, then resolved by apply.
    let config_b = widget("b");
    let p3 = plan(&s, "test_widget", &state, &config_b).await;
    let planned_b = undv(&p3.planned_state);
    assert_eq!(planned_b.get("id"), Some(&Value::string("w-0")));
    assert_eq!(planned_b.get("revision"), Some(&Value::unknown()));
    let a3 = apply(&s, "test_widget", &state, &p3.planned_state, &config_b).await;
    assert!(a3.diagnostics.is_empty(), "{:?}", a3.diagnostics);
    let state_b = undv(&a3.new_state);
    assert_eq!(state_b.get("revision").and_then(Value::as_i64), Some(2));

    // Read sees an out-of-band rename as drift.
    store
        .names
        .lock()
        .unwrap()
        .insert("w-0".into(), "renamed".into());
    let r = s
        .read_resource(Request::new(pb::read_resource::Request {
            type_name: "test_widget".into(),
            current_state: dv(&state_b, &ty()),
            private: b"{}".to_vec(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        undv(&r.new_state).get("name"),
        Some(&Value::string("renamed"))
    );
    assert_eq!(r.private, b"{}".to_vec(), "private state round-trips");

    // Import gives a stub that Read completes.
    let i = s
        .import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: "test_widget".into(),
            id: "w-0".into(),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let imported = undv(&i.imported_resources[0].state);
    assert_eq!(imported.get("id"), Some(&Value::string("w-0")));
    assert_eq!(
        imported.get("tag"),
        Some(&Value::List(vec![])),
        "list blocks are empty, not null"
    );

    // Delete returns null; Read afterwards reports it gone (null state).
    let d = apply(
        &s,
        "test_widget",
        &state_b,
        &dv(&Value::Null, &ty()),
        &Value::Null,
    )
    .await;
    assert!(d.diagnostics.is_empty());
    assert_eq!(d.new_state.unwrap().msgpack, vec![0xc0]);
    let r = s
        .read_resource(Request::new(pb::read_resource::Request {
            type_name: "test_widget".into(),
            current_state: dv(&state_b, &ty()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.new_state.is_none() && r.diagnostics.is_empty());
}

#[tokio::test]
async fn resource_bugs_and_failures_become_diagnostics() {
    let s = configured().await;
    let config = widget("a");

    let p = plan(&s, "test_panics", &Value::Null, &config).await;
    let a = apply(&s, "test_panics", &Value::Null, &p.planned_state, &config).await;
    assert!(
        a.diagnostics[0].summary.contains("crashed"),
        "{:?}",
        a.diagnostics
    );

    let p = plan(&s, "test_lies", &Value::Null, &config).await;
    let a = apply(&s, "test_lies", &Value::Null, &p.planned_state, &config).await;
    assert!(
        a.diagnostics[0].summary.contains("inconsistent result"),
        "{:?}",
        a.diagnostics
    );
    assert!(
        a.diagnostics[0].detail.contains("name"),
        "{:?}",
        a.diagnostics
    );

    // A failed create keeps what was made (the id), with no unknowns left.
    let p = plan(&s, "test_halfway", &Value::Null, &config).await;
    let a = apply(&s, "test_halfway", &Value::Null, &p.planned_state, &config).await;
    assert_eq!(a.diagnostics.len(), 1);
    let partial = undv(&a.new_state);
    assert!(partial
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with("w-")));
    assert_eq!(partial.get("revision"), Some(&Value::Null));

    let bad = s
        .read_resource(Request::new(pb::read_resource::Request {
            type_name: "nope".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(bad.diagnostics[0].summary.contains("Unknown resource type"));
}

#[tokio::test]
async fn unknown_configuration_values_stay_unknown_and_a_default_over_one_is_caught() {
    let s = configured().await;
    // `size` comes from another resource: unknown while `name` is known.
    let mut config = widget("a");
    set(&mut config, "size", Value::unknown());
    let p = plan(&s, "test_widget", &Value::Null, &config).await;
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    assert_eq!(undv(&p.planned_state).get("size"), Some(&Value::unknown()));

    let p = plan(&s, "test_defaults", &Value::Null, &config).await;
    assert!(p.planned_state.is_none());
    assert_eq!(p.diagnostics.len(), 1, "{:?}", p.diagnostics);
    let d = &p.diagnostics[0];
    assert!(d.summary.contains("invalid plan"), "{d:?}");
    assert!(
        d.detail.contains("`size`") && d.detail.contains("unknown"),
        "{d:?}"
    );
    let step = d
        .attribute
        .as_ref()
        .map(|a| a.steps.clone())
        .unwrap_or_default();
    assert_eq!(
        step,
        vec![pb::attribute_path::Step {
            selector: Some(pb::attribute_path::step::Selector::AttributeName(
                "size".into()
            ))
        }],
        "the diagnostic points at the attribute"
    );
    // Once the value is known the same resource plans fine.
    let p = plan(&s, "test_defaults", &Value::Null, &widget("a")).await;
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
}

/// Creates a `name` widget and sends StopProvider while the create runs.
async fn create_then_stop(
    s: &Arc<PluginServer<TestProvider>>,
    name: &'static str,
) -> pb::apply_resource_change::Response {
    let p = plan(s, name, &Value::Null, &widget("a")).await;
    let s2 = s.clone();
    let running = tokio::spawn(async move {
        apply(&s2, name, &Value::Null, &p.planned_state, &widget("a")).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    s.stop_provider(Request::new(pb::stop_provider::Request {}))
        .await
        .unwrap();
    running.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn stop_provider_cancels_in_flight_work_only() {
    let s = Arc::new(configured().await);
    let config = widget("a");

    // An operation that stops when asked returns what it made (its id), nothing unknown.
    let a = create_then_stop(&s, "test_stops").await;
    assert_eq!(a.diagnostics.len(), 1, "{:?}", a.diagnostics);
    assert_eq!(a.diagnostics[0].summary, "Interrupted");
    let kept = undv(&a.new_state);
    assert!(kept
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with("w-")));
    assert_eq!(
        kept.get("revision"),
        Some(&Value::Null),
        "unknowns become null"
    );

    // One that ignores the request is abandoned after the grace period.
    let a = create_then_stop(&s, "test_hangs").await;
    assert!(
        a.diagnostics[0].summary.contains("cancelled"),
        "{:?}",
        a.diagnostics
    );
    // The server still works afterwards.
    let p = plan(&s, "test_widget", &Value::Null, &config).await;
    let a = apply(&s, "test_widget", &Value::Null, &p.planned_state, &config).await;
    assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
}

/// UpgradeResourceState of a `test_widget` stored as `json` under schema `version`.
async fn upgrade(
    s: &PluginServer<TestProvider>,
    version: i64,
    json: &[u8],
) -> pb::upgrade_resource_state::Response {
    s.upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
        type_name: "test_widget".into(),
        version,
        raw_state: Some(pb::RawState {
            json: json.to_vec(),
            flatmap: Default::default(),
        }),
    }))
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn state_upgrade_decodes_json_of_the_current_version() {
    let s = configured().await;
    let json = br#"{"name":"a","size":2,"id":"w-9","revision":3,"tag":[{"key":"k"}]}"#;
    let r = upgrade(&s, 1, json).await;
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let v = undv(&r.upgraded_state);
    assert_eq!(v.get("id"), Some(&Value::string("w-9")));
    assert_eq!(
        v.get("secret"),
        Some(&Value::Null),
        "missing attributes become null"
    );

    // State written by a release whose schema had more attributes (top level and in a
    // nested block) still reads: the extra ones are dropped.
    let older = br#"{"name":"a","size":2,"id":"w-9","revision":3,"retired":"x","tag":[{"key":"k","colour":"red"}]}"#;
    let r = upgrade(&s, 1, older).await;
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let v = undv(&r.upgraded_state);
    assert_eq!(v.get("id"), Some(&Value::string("w-9")));
    assert_eq!(
        v.get("tag"),
        Some(&Value::List(vec![Value::object([(
            "key",
            Value::string("k")
        )])]))
    );

    let newer = upgrade(&s, 7, json).await;
    assert!(newer.diagnostics[0].summary.contains("newer provider"));
}

#[tokio::test]
async fn state_of_a_version_that_only_lacked_attributes_decodes_and_older_is_refused() {
    let s = configured().await;
    // test_widget is version 1, readable from 0: version 0 had no `revision`.
    let v0 = br#"{"name":"a","size":2,"id":"w-9","tag":[]}"#;
    let r = upgrade(&s, 0, v0).await;
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let v = undv(&r.upgraded_state);
    assert_eq!(v.get("id"), Some(&Value::string("w-9")));
    assert_eq!(v.get("revision"), Some(&Value::Null));
    // Older than that needs the resource's own upgrade, which test_widget does not have.
    let r = upgrade(&s, -1, v0).await;
    assert!(
        r.diagnostics[0]
            .summary
            .contains("Unsupported state version"),
        "{:?}",
        r.diagnostics
    );
}

#[tokio::test]
async fn an_unknown_provider_block_plans_without_remote_calls_and_keeps_state() {
    let store = Arc::new(Store::default());
    let s = PluginServer::new(TestProvider(store.clone()));
    let cfg_ty = Type::object([("mode", Type::String)]);
    let configure = |mode: Value| {
        s.configure_provider(Request::new(pb::configure_provider::Request {
            terraform_version: "1.11.4".into(),
            config: dv(&Value::object([("mode", mode)]), &cfg_ty),
            client_capabilities: None,
        }))
    };
    let r = configure(Value::unknown()).await.unwrap().into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);

    // A new object: the generic plan, every computed value unknown.
    let p = plan(&s, "test_widget", &Value::Null, &widget("a")).await;
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    assert!(!undv(&p.planned_state)
        .get("id")
        .is_some_and(Value::is_known));

    // An existing object the store does not know: kept as it is, not reported gone.
    let mut existing = widget("b");
    set(&mut existing, "id", Value::string("w-9"));
    set(&mut existing, "revision", Value::from(1i64));
    let r = s
        .read_resource(Request::new(pb::read_resource::Request {
            type_name: "test_widget".into(),
            current_state: dv(&existing, &ty()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    assert_eq!(undv(&r.new_state).get("id"), Some(&Value::string("w-9")));

    // Configured again with every value known (as Terraform does before apply): applies.
    let r = configure(Value::Null).await.unwrap().into_inner();
    assert!(r.diagnostics.is_empty());
    let a = apply(
        &s,
        "test_widget",
        &Value::Null,
        &p.planned_state,
        &widget("a"),
    )
    .await;
    assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
    assert!(undv(&a.new_state).get("id").is_some_and(Value::is_known));
}
