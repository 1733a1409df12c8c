//! The tfplugin6 gRPC service: decodes requests, dispatches to the provider's resources,
//! enforces Terraform's rules, and never lets a panic cross the gRPC boundary.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert::{
    decode, diags_to_proto, encode, function_to_proto, path_to_proto, schema_to_proto,
};
use super::diag::{one_error, AttrPath, Diagnostics};
use super::plan;
use super::proto::tfplugin6 as pb;
use super::provider::{Ctx, DataSource, Function, PlanInput, Provider, Resource};
use super::schema::{normalize_blocks, prune_stored_state, run_validators, Block, Schema};
use super::value::{self, Value};

type Res<D> = (Arc<dyn Resource<D>>, Schema);
type Ds<D> = (Arc<dyn DataSource<D>>, Schema);

struct Inner<P: Provider> {
    provider: P,
    /// The provider's program name, which messages about its own bugs name.
    program: String,
    provider_schema: Schema,
    resources: HashMap<String, Res<P::Data>>,
    data_sources: HashMap<String, Ds<P::Data>>,
    functions: HashMap<String, Arc<dyn Function>>,
    schema_response: pb::get_provider_schema::Response,
    data: RwLock<Configured<P::Data>>,
    /// Cancelled by StopProvider; replaced afterwards so later calls run normally.
    stop: Mutex<CancellationToken>,
}

/// What ConfigureProvider left.
enum Configured<D> {
    NotYet,
    /// The provider block holds values known only after apply (e.g. a role ARN of an account
    /// made in the same run): plan proceeds without remote calls, refresh keeps the state.
    Unknown,
    Ready(Arc<D>),
}

/// How long an operation may take to wind down after StopProvider (the calls in flight
/// finish; nothing new starts) before it is abandoned.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// The gRPC service Terraform talks to.
pub struct PluginServer<P: Provider> {
    inner: Arc<Inner<P>>,
}

impl<P: Provider> PluginServer<P> {
    pub fn new(provider: P) -> Self {
        let provider_schema = provider.schema();
        let resources: HashMap<_, _> = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), (r.clone(), r.schema())))
            .collect();
        let data_sources: HashMap<_, _> = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name().to_string(), (d.clone(), d.schema())))
            .collect();
        let functions: HashMap<_, _> = provider
            .functions()
            .into_iter()
            .map(|f| (f.name().to_string(), f))
            .collect();
        let schema_response = pb::get_provider_schema::Response {
            provider: Some(schema_to_proto(&provider_schema)),
            resource_schemas: resources
                .iter()
                .map(|(k, (_, s))| (k.clone(), schema_to_proto(s)))
                .collect(),
            data_source_schemas: data_sources
                .iter()
                .map(|(k, (_, s))| (k.clone(), schema_to_proto(s)))
                .collect(),
            functions: functions
                .iter()
                .map(|(k, f)| (k.clone(), function_to_proto(f.as_ref())))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        };
        PluginServer {
            inner: Arc::new(Inner {
                program: provider.program_name(),
                provider,
                provider_schema,
                resources,
                data_sources,
                functions,
                schema_response,
                data: RwLock::new(Configured::NotYet),
                stop: Mutex::new(CancellationToken::new()),
            }),
        }
    }

    /// Runs one RPC body on its own task: a panic becomes an error diagnostic and
    /// StopProvider cancels it.
    async fn guard<T, F, Fut>(&self, rpc: &'static str, f: F) -> Result<T, Diagnostics>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner<P>>, CancellationToken) -> Fut,
        Fut: Future<Output = Result<T, Diagnostics>> + Send + 'static,
    {
        let token = match self.inner.stop.lock() {
            Ok(t) => t.child_token(),
            Err(p) => p.into_inner().child_token(),
        };
        tracing::debug!(rpc, "call");
        let fut = f(self.inner.clone(), token.clone());
        let task = tokio::spawn(async move {
            tokio::pin!(fut);
            tokio::select! {
                r = &mut fut => return r,
                _ = token.cancelled() => {}
            }
            // Cooperative: the operation sees the token, lets the calls in flight finish and
            // returns what it made (partial state). Only one that ignores it is dropped.
            match tokio::time::timeout(STOP_GRACE, fut).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(
                        rpc,
                        "did not stop within {} s of StopProvider; dropped",
                        STOP_GRACE.as_secs()
                    );
                    let mut d = Diagnostics::default();
                    d.error("Operation cancelled", format!("Terraform asked the provider to stop (StopProvider) and the operation did not finish within {} s; it was abandoned.", STOP_GRACE.as_secs()));
                    Err(d)
                }
            }
        });
        match task.await {
            Ok(r) => r,
            Err(e) => {
                let mut d = Diagnostics::default();
                let what = if e.is_panic() {
                    "crashed"
                } else {
                    "was aborted"
                };
                tracing::error!(rpc, "provider {what}");
                d.error(
                    format!("The provider {what} in {rpc}"),
                    format!(
                        "This is a bug in {}; please report it with the TF_LOG=debug output.",
                        self.inner.program
                    ),
                );
                Err(d)
            }
        }
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

impl<P: Provider> Inner<P> {
    fn resource(&self, name: &str) -> Result<&Res<P::Data>, Diagnostics> {
        self.resources.get(name).ok_or_else(|| {
            one_error(
                "Unknown resource type",
                format!("This provider has no resource type {name:?}."),
            )
        })
    }
    fn data_source(&self, name: &str) -> Result<&Ds<P::Data>, Diagnostics> {
        self.data_sources.get(name).ok_or_else(|| {
            one_error(
                "Unknown data source",
                format!("This provider has no data source {name:?}."),
            )
        })
    }
    fn configured(&self) -> std::sync::RwLockReadGuard<'_, Configured<P::Data>> {
        match self.data.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn set_configured(&self, c: Configured<P::Data>) {
        match self.data.write() {
            Ok(mut g) => *g = c,
            Err(p) => *p.into_inner() = c,
        }
    }

    /// An error for a rule the provider broke, caught before Terraform saw it.
    fn bug(&self, summary: &str, errs: Vec<String>) -> Diagnostics {
        one_error(
            summary,
            format!(
                "This is a bug in {}, caught before Terraform saw it:\n- {}",
                self.program,
                errs.join("\n- ")
            ),
        )
    }

    /// Whether the provider block depends on values known only after apply.
    fn config_unknown(&self) -> bool {
        matches!(*self.configured(), Configured::Unknown)
    }

    fn ctx(&self, cancel: CancellationToken) -> Result<Ctx<P::Data>, Diagnostics> {
        match &*self.configured() {
            Configured::Ready(data) => Ok(Ctx {
                data: data.clone(),
                cancel,
            }),
            Configured::Unknown => Err(one_error(
                "Provider configuration not known yet",
                "The provider block uses values known only after apply (for example the role ARN of an account created in the same run), so this cannot be read yet. Apply what the provider block depends on first (terraform apply -target=<that resource>), then run again.",
            )),
            Configured::NotYet => Err(one_error(
                "Provider not configured",
                "The provider was used before ConfigureProvider succeeded; fix the errors in the provider block first.",
            )),
        }
    }
}

/// Validation shared by the provider block, resources and data sources: decode, run the
/// attribute validators, then the object's own checks.
fn validate_config(
    schema: &Schema,
    config: Option<&pb::DynamicValue>,
    own_checks: impl FnOnce(&Value, &mut Diagnostics),
) -> Result<Diagnostics, Diagnostics> {
    let config = decode(config, &schema.ty(), "configuration")?;
    let mut d = Diagnostics::default();
    run_validators(&schema.block, &config, &AttrPath::default(), &mut d);
    own_checks(&config, &mut d);
    Ok(d)
}

/// The diagnostics of a call whose response carries nothing else.
fn only_diags(r: Result<Diagnostics, Diagnostics>) -> Vec<pb::Diagnostic> {
    match r {
        Ok(d) | Err(d) => diags_to_proto(&d),
    }
}

/// Encodes a state after making nested block collections non-null.
fn encode_state(block: &Block, mut v: Value) -> Result<pb::DynamicValue, Diagnostics> {
    normalize_blocks(block, &mut v);
    encode(&v, &block.ty())
}

/// Unknowns cannot be saved in state; a partial result after a failure drops them.
fn unknowns_to_null(v: Value) -> Value {
    match v {
        Value::Unknown(_) => Value::Null,
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, unknowns_to_null(v)))
                .collect(),
        ),
        Value::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| (k, unknowns_to_null(v)))
                .collect(),
        ),
        Value::List(l) => Value::List(l.into_iter().map(unknowns_to_null).collect()),
        Value::Set(l) => Value::Set(l.into_iter().map(unknowns_to_null).collect()),
        Value::Tuple(l) => Value::Tuple(l.into_iter().map(unknowns_to_null).collect()),
        other => other,
    }
}

macro_rules! respond {
    ($result:expr, |$ok:ident, $d:ident| $build:expr, |$err:ident| $fail:expr) => {
        Ok(Response::new(match $result {
            Ok(($ok, $d)) => $build,
            Err($err) => $fail,
        }))
    };
}

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for PluginServer<P> {
    async fn get_metadata(
        &self,
        _r: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        use pb::get_metadata as m;
        let i = &self.inner;
        Ok(Response::new(m::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: i
                .data_sources
                .keys()
                .map(|k| m::DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: i
                .resources
                .keys()
                .map(|k| m::ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            functions: i
                .functions
                .keys()
                .map(|k| m::FunctionMetadata { name: k.clone() })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _r: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(self.inner.schema_response.clone()))
    }

    async fn validate_provider_config(
        &self,
        r: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("ValidateProviderConfig", |i, _| async move {
                validate_config(&i.provider_schema, req.config.as_ref(), |c, d| {
                    i.provider.validate(c, d)
                })
            })
            .await;
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: only_diags(res),
        }))
    }

    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("ValidateResourceConfig", |i, _| async move {
                let (res, schema) = i.resource(&req.type_name)?;
                validate_config(schema, req.config.as_ref(), |c, d| res.validate(c, d))
            })
            .await;
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: only_diags(res),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("ValidateDataResourceConfig", |i, _| async move {
                let (ds, schema) = i.data_source(&req.type_name)?;
                validate_config(schema, req.config.as_ref(), |c, d| ds.validate(c, d))
            })
            .await;
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: only_diags(res),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("UpgradeResourceState", |i, _| async move {
                let (res, schema) = i.resource(&req.type_name)?;
                let raw = req.raw_state.unwrap_or_default();
                if raw.json.is_empty() {
                    return Err(one_error(
                        "Unsupported state format",
                        "This resource's state is in the legacy flatmap format, which this provider never wrote.",
                    ));
                }
                let mut d = Diagnostics::default();
                let upgraded = if (schema.readable_from..=schema.version).contains(&req.version) {
                    let mut json: serde_json::Value = serde_json::from_slice(&raw.json)
                        .map_err(|e| one_error("Stored state is not JSON", e.to_string()))?;
                    let dropped = prune_stored_state(&schema.block, &mut json);
                    if !dropped.is_empty() {
                        let dropped: Vec<String> = dropped.iter().map(|p| p.to_string()).collect();
                        tracing::info!(
                            resource = %req.type_name,
                            dropped = %dropped.join(", "),
                            "stored state holds attributes this provider's schema no longer has; dropped"
                        );
                    }
                    value::from_json_value(json, &schema.ty()).map_err(|e| {
                        one_error("Stored state does not match the schema", e.to_string())
                    })?
                } else if req.version > schema.version {
                    return Err(one_error(
                        "Resource instance managed by a newer provider version",
                        format!(
                            "The state was written with schema version {}, newer than this provider's {}. Use a newer provider release.",
                            req.version, schema.version
                        ),
                    ));
                } else {
                    let json: serde_json::Value = serde_json::from_slice(&raw.json)
                        .map_err(|e| one_error("Stored state is not JSON", e.to_string()))?;
                    match res.upgrade_state(req.version, &json, &mut d) {
                        Some(v) => v,
                        None => return Err(d),
                    }
                };
                Ok((encode_state(&schema.block, upgraded)?, d))
            })
            .await;
        respond!(
            res,
            |v, d| pb::upgrade_resource_state::Response {
                upgraded_state: Some(v),
                diagnostics: diags_to_proto(&d)
            },
            |e| pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: diags_to_proto(&e)
            }
        )
    }

    async fn configure_provider(
        &self,
        r: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("ConfigureProvider", |i, _| async move {
                let config = decode(
                    req.config.as_ref(),
                    &i.provider_schema.ty(),
                    "configuration",
                )?;
                let mut d = Diagnostics::default();
                if !config.is_wholly_known() {
                    // Terraform plans with such a block and configures again, with every
                    // value known, before it applies.
                    i.set_configured(Configured::Unknown);
                    return Ok(((), d));
                }
                let data = i
                    .provider
                    .configure(&config, &req.terraform_version, &mut d)
                    .await;
                if let (Some(data), false) = (data, d.has_errors()) {
                    i.set_configured(Configured::Ready(Arc::new(data)));
                }
                Ok(((), d))
            })
            .await;
        respond!(
            res,
            |_u, d| pb::configure_provider::Response {
                diagnostics: diags_to_proto(&d)
            },
            |e| pb::configure_provider::Response {
                diagnostics: diags_to_proto(&e)
            }
        )
    }

    async fn read_resource(
        &self,
        r: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = r.into_inner();
        let private_in = req.private.clone();
        let res = self
            .guard("ReadResource", |i, cancel| async move {
                let (res, schema) = i.resource(&req.type_name)?;
                let current = decode(req.current_state.as_ref(), &schema.ty(), "state")?;
                let mut d = Diagnostics::default();
                if current.is_null() {
                    return Ok(((None, req.private), d));
                }
                if i.config_unknown() {
                    // Nothing can be read where the provider does not yet point: keep the state.
                    return Ok(((Some(encode(&current, &schema.ty())?), req.private), d));
                }
                let ctx = i.ctx(cancel)?;
                let out = res.read(&ctx, &current, &req.private, &mut d).await;
                if d.has_errors() {
                    // Keep what Terraform has: an error must never look like "gone".
                    return Ok(((Some(encode(&current, &schema.ty())?), req.private), d));
                }
                let state = match out.state {
                    Some(s) if !s.is_wholly_known() => {
                        return Err(i.bug(
                            "Provider read an unknown value",
                            vec!["Read returned unknown values".into()],
                        ))
                    }
                    Some(s) => Some(encode_state(&schema.block, s)?),
                    None => None,
                };
                Ok(((state, out.private), d))
            })
            .await;
        respond!(
            res,
            |sp, d| pb::read_resource::Response {
                new_state: sp.0,
                diagnostics: diags_to_proto(&d),
                private: sp.1,
                deferred: None
            },
            |e| pb::read_resource::Response {
                new_state: None,
                diagnostics: diags_to_proto(&e),
                private: private_in,
                deferred: None
            }
        )
    }

    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("PlanResourceChange", |i, cancel| async move {
                let (res, schema) = i.resource(&req.type_name)?;
                let ty = schema.ty();
                let prior = decode(req.prior_state.as_ref(), &ty, "prior state")?;
                let proposed = decode(req.proposed_new_state.as_ref(), &ty, "proposed state")?;
                let config = decode(req.config.as_ref(), &ty, "configuration")?;
                let mut d = Diagnostics::default();
                if proposed.is_null() {
                    return Ok(((encode(&Value::Null, &ty)?, vec![], req.prior_private), d));
                }
                let mut planned = plan::plan_change(&schema.block, &prior, &proposed, &config);
                let input = PlanInput {
                    prior: &prior,
                    config: &config,
                    private: &req.prior_private,
                };
                // With the provider block not known yet, the plan is the generic one (every
                // computed value of a new object unknown); apply runs with it known.
                if !i.config_unknown() {
                    let ctx = i.ctx(cancel)?;
                    res.modify_plan(&ctx, &input, &mut planned, &mut d).await;
                }
                normalize_blocks(&schema.block, &mut planned);
                let errs = plan::check_plan(&schema.block, &prior, &config, &planned);
                if !errs.is_empty() {
                    let mut d = Diagnostics::default();
                    for e in errs {
                        d.attr_error(
                            e.path.clone(),
                            "Provider produced an invalid plan",
                            format!("`{}`: {}. This is a bug in {}, caught before Terraform saw it; please report it with the TF_LOG=debug output.", e.path, e.message, i.program),
                        );
                    }
                    return Err(d);
                }
                let replace = plan::requires_replace(&schema.block, &prior, &planned)
                    .iter()
                    .map(path_to_proto)
                    .collect();
                Ok(((encode(&planned, &ty)?, replace, req.prior_private), d))
            })
            .await;
        respond!(
            res,
            |p, d| pb::plan_resource_change::Response {
                planned_state: Some(p.0),
                requires_replace: p.1,
                planned_private: p.2,
                diagnostics: diags_to_proto(&d),
                legacy_type_system: false,
                deferred: None
            },
            |e| pb::plan_resource_change::Response {
                diagnostics: diags_to_proto(&e),
                ..Default::default()
            }
        )
    }

    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("ApplyResourceChange", |i, cancel| async move {
                let (res, schema) = i.resource(&req.type_name)?;
                let ty = schema.ty();
                let prior = decode(req.prior_state.as_ref(), &ty, "prior state")?;
                let planned = decode(req.planned_state.as_ref(), &ty, "planned state")?;
                let config = decode(req.config.as_ref(), &ty, "configuration")?;
                let ctx = i.ctx(cancel)?;
                let mut d = Diagnostics::default();
                if planned.is_null() {
                    res.delete(&ctx, &prior, &req.planned_private, &mut d).await;
                    // A failed delete keeps the object in state so the next run finishes it.
                    let left = if d.has_errors() { prior } else { Value::Null };
                    return Ok(((encode(&left, &ty)?, req.planned_private), d));
                }
                let out = if prior.is_null() {
                    res.create(&ctx, &planned, &config, &mut d).await
                } else {
                    res.update(
                        &ctx,
                        &prior,
                        &planned,
                        &config,
                        &req.planned_private,
                        &mut d,
                    )
                    .await
                };
                let interrupted = ctx.cancel.is_cancelled();
                let state = match out.state {
                    Some(s) if d.has_errors() => unknowns_to_null(s),
                    Some(s) => {
                        // An interrupted create returns what it made, with nulls for the rest.
                        let mut s = if interrupted { unknowns_to_null(s) } else { s };
                        normalize_blocks(&schema.block, &mut s);
                        let errs = plan::check_applied(&planned, &s);
                        if !errs.is_empty() {
                            return Err(i.bug(
                                "Provider produced an inconsistent result after apply",
                                errs,
                            ));
                        }
                        s
                    }
                    None if d.has_errors() && !prior.is_null() => prior,
                    None if d.has_errors() => Value::Null,
                    None => {
                        return Err(i.bug(
                            "Provider returned no state",
                            vec!["create/update returned nothing".into()],
                        ))
                    }
                };
                Ok(((encode_state(&schema.block, state)?, out.private), d))
            })
            .await;
        respond!(
            res,
            |sp, d| pb::apply_resource_change::Response {
                new_state: Some(sp.0),
                private: sp.1,
                diagnostics: diags_to_proto(&d),
                legacy_type_system: false
            },
            |e| pb::apply_resource_change::Response {
                diagnostics: diags_to_proto(&e),
                ..Default::default()
            }
        )
    }

    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("ImportResourceState", |i, cancel| async move {
                let (res, schema) = i.resource(&req.type_name)?;
                let ctx = i.ctx(cancel)?;
                let mut d = Diagnostics::default();
                let imported = match res.import(&ctx, &req.id, &mut d).await {
                    Some(state) if !d.has_errors() => {
                        vec![pb::import_resource_state::ImportedResource {
                            type_name: req.type_name.clone(),
                            state: Some(encode_state(&schema.block, unknowns_to_null(state))?),
                            private: vec![],
                        }]
                    }
                    _ => vec![],
                };
                Ok((imported, d))
            })
            .await;
        respond!(
            res,
            |imp, d| pb::import_resource_state::Response {
                imported_resources: imp,
                diagnostics: diags_to_proto(&d),
                deferred: None
            },
            |e| pb::import_resource_state::Response {
                diagnostics: diags_to_proto(&e),
                ..Default::default()
            }
        )
    }

    async fn move_resource_state(
        &self,
        r: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let req = r.into_inner();
        let d = one_error(
            "Moving state is not supported",
            format!(
                "{} cannot take state from {}; remove the `moved` block and import the object instead.",
                req.target_type_name, req.source_type_name
            ),
        );
        Ok(Response::new(pb::move_resource_state::Response {
            diagnostics: diags_to_proto(&d),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        r: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("ReadDataSource", |i, cancel| async move {
                let (ds, schema) = i.data_source(&req.type_name)?;
                let config = decode(req.config.as_ref(), &schema.ty(), "configuration")?;
                let ctx = i.ctx(cancel)?;
                let mut d = Diagnostics::default();
                let state = match ds.read(&ctx, &config, &mut d).await {
                    Some(s) if !d.has_errors() => {
                        if !s.is_wholly_known() {
                            return Err(i.bug(
                                "Data source returned unknown values",
                                vec![req.type_name.clone()],
                            ));
                        }
                        Some(encode_state(&schema.block, s)?)
                    }
                    _ => None,
                };
                Ok((state, d))
            })
            .await;
        respond!(
            res,
            |s, d| pb::read_data_source::Response {
                state: s,
                diagnostics: diags_to_proto(&d),
                deferred: None
            },
            |e| pb::read_data_source::Response {
                diagnostics: diags_to_proto(&e),
                ..Default::default()
            }
        )
    }

    async fn get_functions(
        &self,
        _r: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self.inner.schema_response.functions.clone(),
            diagnostics: vec![],
        }))
    }

    async fn call_function(
        &self,
        r: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let req = r.into_inner();
        let res = self
            .guard("CallFunction", |i, _| async move {
                let f = i.functions.get(&req.name).cloned().ok_or_else(|| {
                    one_error(
                        "Unknown function",
                        format!("No function named {:?}.", req.name),
                    )
                })?;
                let sig = f.signature();
                let fail = |text: String, argument: Option<i64>| pb::FunctionError {
                    text,
                    function_argument: argument,
                };
                if req.arguments.len() != sig.parameters.len() {
                    return Ok((
                        Err(fail(
                            format!(
                                "{} takes {} argument(s), got {}",
                                req.name,
                                sig.parameters.len(),
                                req.arguments.len()
                            ),
                            None,
                        )),
                        Diagnostics::default(),
                    ));
                }
                let mut args = Vec::with_capacity(req.arguments.len());
                for (n, (dv, p)) in req.arguments.iter().zip(&sig.parameters).enumerate() {
                    match decode(Some(dv), &p.ty, "argument") {
                        Ok(v) => args.push(v),
                        Err(_) => {
                            return Ok((
                                Err(fail(
                                    format!("argument {:?} has the wrong type", p.name),
                                    Some(n as i64),
                                )),
                                Diagnostics::default(),
                            ))
                        }
                    }
                }
                let out = match f.call(&args) {
                    Ok(v) => Ok(encode(&v, &sig.returns)?),
                    Err(e) => Err(fail(e.text, e.argument)),
                };
                Ok((out, Diagnostics::default()))
            })
            .await;
        let resp = match res {
            Ok((Ok(v), _)) => pb::call_function::Response {
                result: Some(v),
                error: None,
            },
            Ok((Err(e), _)) => pb::call_function::Response {
                result: None,
                error: Some(e),
            },
            Err(d) => pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text: d
                        .iter()
                        .map(|x| format!("{}: {}", x.summary, x.detail))
                        .collect::<Vec<_>>()
                        .join("; "),
                    function_argument: None,
                }),
            },
        };
        Ok(Response::new(resp))
    }

    async fn stop_provider(
        &self,
        _r: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        // Cancel what is in flight; keep serving (Terraform may still call Shutdown or more RPCs).
        let mut g = match self.inner.stop.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.cancel();
        *g = CancellationToken::new();
        tracing::info!("StopProvider: in-flight operations cancelled");
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}
