//! Terraform's plan and apply rules, enforced once for every resource.
//!
//! Planning starts from Terraform's proposed new state, applies defaults, nulls write-only
//! attributes and marks computed attributes that the configuration leaves null as unknown on
//! create. On update they keep their prior values unless the resource marks them unknown.
//! The checks below turn a resource bug into a clear diagnostic instead of Terraform's
//! "Provider produced invalid plan" / "inconsistent result after apply".
use super::diag::AttrPath;
use super::schema::{child, Block, Nesting};
use super::value::Value;

/// Computes the planned state of a create (`prior` null) or an update.
pub fn plan_change(block: &Block, prior: &Value, proposed: &Value, config: &Value) -> Value {
    let creating = prior.is_null();
    let mut out = std::collections::BTreeMap::new();
    for a in &block.attributes {
        let cfg = config.get(&a.name).unwrap_or(&Value::Null);
        let prop = proposed.get(&a.name).cloned().unwrap_or(Value::Null);
        let v = if a.write_only {
            Value::Null
        } else if cfg.is_null() && a.default.is_some() {
            a.default.clone().unwrap_or(Value::Null)
        } else if cfg.is_null() && a.computed && creating {
            Value::unknown()
        } else {
            prop
        };
        out.insert(a.name.clone(), v);
    }
    for b in &block.blocks {
        let cfg = config.get(&b.name).unwrap_or(&Value::Null);
        let prop = proposed.get(&b.name).unwrap_or(&Value::Null);
        let pri = prior.get(&b.name).unwrap_or(&Value::Null);
        let v = match (b.nesting, prop) {
            (Nesting::Single, p) if p.is_null() || !p.is_known() => p.clone(),
            (Nesting::Single, p) => plan_change(&b.block, pri, p, cfg),
            (Nesting::List | Nesting::Set, Value::List(items) | Value::Set(items)) => {
                let planned: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let c = nth(cfg, i).unwrap_or(&Value::Null);
                        let p = if b.nesting == Nesting::List {
                            nth(pri, i).unwrap_or(&Value::Null)
                        } else {
                            &Value::Null
                        };
                        plan_change(&b.block, p, item, c)
                    })
                    .collect();
                if b.nesting == Nesting::List {
                    Value::List(planned)
                } else {
                    Value::Set(planned)
                }
            }
            (_, p) => p.clone(),
        };
        out.insert(b.name.clone(), v);
    }
    Value::Object(out)
}

/// For an update the resource knows will change remote values: marks every computed
/// attribute that the configuration leaves null as unknown, except those declared
/// `use_state_for_unknown` (stable ids and ARNs) and those with a default, which keep
/// their planned values.
pub fn mark_computed_unknown(block: &Block, config: &Value, planned: &mut Value) {
    let changes = |a: &&super::schema::Attribute| {
        a.computed && !a.use_state_for_unknown && a.default.is_none()
    };
    for a in block.attributes.iter().filter(changes) {
        let configured = config.get(&a.name).is_some_and(|v| !v.is_null());
        if let (false, Some(v)) = (configured, planned.get_mut(&a.name)) {
            *v = Value::unknown();
        }
    }
}

fn nth(v: &Value, i: usize) -> Option<&Value> {
    match v {
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => items.get(i),
        _ => None,
    }
}

/// Paths of `requires_replace` attributes whose planned value differs from the prior one.
/// A computed-only attribute that the prior state does not hold yet (state written before
/// the attribute existed) is being recorded, not changed: no replacement.
pub fn requires_replace(block: &Block, prior: &Value, planned: &Value) -> Vec<AttrPath> {
    let mut out = Vec::new();
    collect_replace(block, prior, planned, &AttrPath::default(), &mut out);
    out
}

fn collect_replace(
    block: &Block,
    prior: &Value,
    planned: &Value,
    path: &AttrPath,
    out: &mut Vec<AttrPath>,
) {
    if prior.is_null() {
        return;
    }
    for a in block.attributes.iter().filter(|a| a.requires_replace) {
        let before = prior.get(&a.name).unwrap_or(&Value::Null);
        let after = planned.get(&a.name).unwrap_or(&Value::Null);
        let first_recorded = a.computed && !a.optional && !a.required && before.is_null();
        if before != after && !first_recorded {
            out.push(child(path, &a.name));
        }
    }
    for b in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        let pr = prior.get(&b.name).unwrap_or(&Value::Null);
        let pl = planned.get(&b.name).unwrap_or(&Value::Null);
        // A block of attributes that each replace the resource when changed replaces it
        // when it comes or goes, too.
        if pr.is_null() != pl.is_null() && b.block.attributes.iter().any(|a| a.requires_replace) {
            out.push(child(path, &b.name));
            continue;
        }
        collect_replace(&b.block, pr, pl, &child(path, &b.name), out);
    }
}

/// One broken plan rule: the attribute and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanViolation {
    pub path: AttrPath,
    pub message: String,
}

/// Checks a plan against the rules Terraform enforces (its `AssertPlanValid`), attribute by
/// attribute, whether or not the rest of the configuration is known:
/// - a value set in the configuration, known or not, is planned as given (or as the prior
///   value, which Terraform takes as "equivalent"); an unknown stays unknown;
/// - only a computed attribute left null in the configuration may be planned otherwise;
/// - a write-only attribute is planned null.
pub fn check_plan(
    block: &Block,
    prior: &Value,
    config: &Value,
    planned: &Value,
) -> Vec<PlanViolation> {
    let mut errs = Vec::new();
    check_plan_at(
        block,
        prior,
        config,
        planned,
        &AttrPath::default(),
        &mut errs,
    );
    errs
}

fn check_plan_at(
    block: &Block,
    prior: &Value,
    config: &Value,
    planned: &Value,
    path: &AttrPath,
    errs: &mut Vec<PlanViolation>,
) {
    for a in &block.attributes {
        let p = child(path, &a.name);
        let cfg = config.get(&a.name).unwrap_or(&Value::Null);
        let pl = planned.get(&a.name).unwrap_or(&Value::Null);
        let pr = prior.get(&a.name).unwrap_or(&Value::Null);
        let mut fail = |message: String| {
            errs.push(PlanViolation {
                path: p.clone(),
                message,
            })
        };
        if a.write_only {
            if !pl.is_null() {
                fail("a write-only attribute must be planned null".into());
            }
            continue;
        }
        // Terraform also accepts the prior value for an unknown configuration value; we do
        // not, since the value known at apply may differ and the apply would then fail.
        if pl == cfg || (pl == pr && !pr.is_null() && !cfg.is_null() && cfg.is_wholly_known()) {
            continue;
        }
        if a.computed && cfg.is_null() {
            continue;
        }
        let shown = |v: &Value| {
            if a.sensitive {
                "(sensitive)".to_string()
            } else {
                show(v)
            }
        };
        fail(format!(
            "planned {} does not match the configuration's {}{}",
            shown(pl),
            shown(cfg),
            if pr.is_null() {
                String::new()
            } else {
                format!(" nor the prior {}", shown(pr))
            }
        ));
    }
    for b in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        let pl = planned.get(&b.name).unwrap_or(&Value::Null);
        if pl.is_null() || !pl.is_known() {
            continue;
        }
        check_plan_at(
            &b.block,
            prior.get(&b.name).unwrap_or(&Value::Null),
            config.get(&b.name).unwrap_or(&Value::Null),
            pl,
            &child(path, &b.name),
            errs,
        );
    }
}

/// A value in words for a diagnostic: unknown is "(known after apply)", as Terraform says.
fn show(v: &Value) -> String {
    match v.inner() {
        Value::Null => "null".into(),
        Value::Unknown(_) => "unknown value (known after apply)".into(),
        Value::String(s) => format!("{s:?}"),
        other if !other.is_wholly_known() => "partly unknown value".into(),
        other => format!("{other:?}"),
    }
}

/// Checks an apply result against its plan: every value known in the plan must come back
/// unchanged, and nothing may remain unknown.
pub fn check_applied(planned: &Value, applied: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check_applied_at(planned, applied, &AttrPath::default(), &mut errs);
    errs
}

fn check_applied_at(planned: &Value, applied: &Value, path: &AttrPath, errs: &mut Vec<String>) {
    let at = |p: &AttrPath| {
        if p.is_empty() {
            "the resource".to_string()
        } else {
            p.to_string()
        }
    };
    match (planned, applied) {
        (_, Value::Unknown(_)) => errs.push(format!("{}: still unknown after apply", at(path))),
        (Value::Object(pm), Value::Object(am)) => {
            for (k, pv) in pm {
                let av = am.get(k).unwrap_or(&Value::Null);
                check_applied_at(pv, av, &child(path, k), errs);
            }
        }
        (Value::Unknown(_) | Value::List(_) | Value::Tuple(_) | Value::Set(_), _)
            if !applied.is_wholly_known() =>
        {
            errs.push(format!("{}: still partly unknown after apply", at(path)))
        }
        (Value::Unknown(_), _) => {}
        (Value::List(pl), Value::List(al)) | (Value::Tuple(pl), Value::Tuple(al))
            if pl.len() == al.len() =>
        {
            for (i, (pv, av)) in pl.iter().zip(al).enumerate() {
                check_applied_at(pv, av, &path.index(i), errs);
            }
        }
        (p, a) if p.is_wholly_known() => {
            if p != a {
                errs.push(format!(
                    "{}: planned {p:?} but apply produced {a:?}",
                    at(path)
                ));
            }
        }
        // A partly unknown collection: its length must match.
        (Value::List(pl) | Value::Set(pl), Value::List(al) | Value::Set(al)) => {
            if pl.len() != al.len() {
                errs.push(format!(
                    "{}: planned {} elements, got {}",
                    at(path),
                    pl.len(),
                    al.len()
                ));
            }
        }
        _ => errs.push(format!(
            "{}: apply produced a value of another shape",
            at(path)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};

    fn block() -> Block {
        Block::new("test")
            .attr(Attribute::string("name").required().requires_replace())
            .attr(Attribute::string("id").computed())
            .attr(Attribute::string("note").optional())
            .attr(Attribute::bool("verify").default(Value::Bool(true)))
            .attr(Attribute::string("secret").optional().write_only())
            .block(NestedBlock::single(
                "opts",
                Block::new("opts")
                    .attr(Attribute::string("region").optional())
                    .attr(Attribute::string("arn").computed()),
            ))
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    #[test]
    fn create_marks_computed_unknown_and_applies_defaults() {
        let b = block();
        let config = obj(&[
            ("name", Value::string("a")),
            ("id", Value::Null),
            ("note", Value::Null),
            ("verify", Value::Null),
            ("secret", Value::string("s3cr3t")),
            (
                "opts",
                obj(&[("region", Value::string("eu-west-1")), ("arn", Value::Null)]),
            ),
        ]);
        let planned = plan_change(&b, &Value::Null, &config, &config);
        assert_eq!(planned.get("id"), Some(&Value::unknown()));
        assert_eq!(planned.get("note"), Some(&Value::Null));
        assert_eq!(planned.get("verify"), Some(&Value::Bool(true)));
        assert_eq!(
            planned.get("secret"),
            Some(&Value::Null),
            "write-only is planned null"
        );
        let opts = planned.get("opts").cloned().unwrap_or(Value::Null);
        assert_eq!(opts.get("arn"), Some(&Value::unknown()));
        assert_eq!(opts.get("region"), Some(&Value::string("eu-west-1")));
        assert!(check_plan(&b, &Value::Null, &config, &planned).is_empty());
    }

    #[test]
    fn update_keeps_prior_computed_values_and_flags_replacement() {
        let b = block();
        let prior = obj(&[
            ("name", Value::string("a")),
            ("id", Value::string("dev-1")),
            ("note", Value::Null),
            ("verify", Value::Bool(true)),
            ("secret", Value::Null),
            ("opts", Value::Null),
        ]);
        let config = obj(&[
            ("name", Value::string("b")),
            ("id", Value::Null),
            ("note", Value::Null),
            ("verify", Value::Null),
            ("secret", Value::Null),
            ("opts", Value::Null),
        ]);
        let mut proposed = config.clone();
        if let Some(v) = proposed.get_mut("id") {
            *v = Value::string("dev-1");
        }
        let planned = plan_change(&b, &prior, &proposed, &config);
        assert_eq!(planned.get("id"), Some(&Value::string("dev-1")));
        let replace = requires_replace(&b, &prior, &planned);
        assert_eq!(replace, vec![AttrPath::root("name")]);
        // Planning twice from the same inputs gives the same plan (no clock, no randomness).
        assert_eq!(planned, plan_change(&b, &prior, &proposed, &config));
    }

    #[test]
    fn a_pinned_computed_attribute_replaces_when_changed_not_when_first_recorded() {
        let b = Block::new("t")
            .attr(Attribute::string("name").required())
            .attr(Attribute::string("org").computed().requires_replace());
        let with = |org: Value| obj(&[("name", Value::string("a")), ("org", org)]);
        let planned = with(Value::string("o2"));
        assert_eq!(
            requires_replace(&b, &with(Value::string("o1")), &planned),
            vec![AttrPath::root("org")]
        );
        assert!(requires_replace(&b, &with(Value::Null), &planned).is_empty());
        assert!(requires_replace(&b, &with(Value::string("o2")), &planned).is_empty());
    }

    #[test]
    fn a_block_of_replacing_attributes_replaces_when_it_comes_or_goes() {
        let b = Block::new("t")
            .attr(Attribute::string("name").required())
            .block(NestedBlock::single(
                "existing",
                Block::new("e").attr(Attribute::string("bucket").required().requires_replace()),
            ))
            .block(NestedBlock::single(
                "opts",
                Block::new("o").attr(Attribute::string("region").optional()),
            ));
        let with = |existing: Value, opts: Value| {
            obj(&[
                ("name", Value::string("a")),
                ("existing", existing),
                ("opts", opts),
            ])
        };
        let block = |k: &str, v: &str| obj(&[(k, Value::string(v))]);
        let (none, logs) = (Value::Null, block("bucket", "logs"));
        let path = vec![AttrPath::root("existing")];
        assert_eq!(
            requires_replace(
                &b,
                &with(none.clone(), none.clone()),
                &with(logs.clone(), none.clone())
            ),
            path
        );
        assert_eq!(
            requires_replace(
                &b,
                &with(logs.clone(), none.clone()),
                &with(none.clone(), none.clone())
            ),
            path
        );
        assert_eq!(
            requires_replace(
                &b,
                &with(logs.clone(), none.clone()),
                &with(block("bucket", "other"), none.clone())
            ),
            vec![AttrPath::root("existing").attr("bucket")]
        );
        // A block without such attributes comes and goes in place.
        let eu = block("region", "eu-west-1");
        assert!(
            requires_replace(&b, &with(none.clone(), none.clone()), &with(none, eu)).is_empty()
        );
    }

    #[test]
    fn changed_computed_values_become_unknown_except_stable_ones() {
        let b = Block::new("t")
            .attr(Attribute::string("name").required())
            .attr(Attribute::string("id").computed().use_state_for_unknown())
            .attr(Attribute::string("status").computed())
            .attr(Attribute::bool("verify").default(Value::Bool(true)));
        let config = obj(&[("name", Value::string("b")), ("verify", Value::Bool(false))]);
        let mut planned = obj(&[
            ("name", Value::string("b")),
            ("id", Value::string("dev-1")),
            ("status", Value::string("healthy")),
            ("verify", Value::Bool(false)),
        ]);
        mark_computed_unknown(&b, &config, &mut planned);
        assert_eq!(planned.get("id"), Some(&Value::string("dev-1")));
        assert_eq!(planned.get("status"), Some(&Value::unknown()));
        assert_eq!(
            planned.get("verify"),
            Some(&Value::Bool(false)),
            "configured values stay"
        );
    }

    #[test]
    fn plan_checks_catch_resource_bugs() {
        let b = block();
        let config = obj(&[("name", Value::string("a")), ("note", Value::Null)]);
        let bad = obj(&[
            ("name", Value::string("other")),
            ("note", Value::string("x")),
        ]);
        let errs = check_plan(&b, &Value::Null, &config, &bad);
        let paths: Vec<String> = errs.iter().map(|e| e.path.to_string()).collect();
        assert!(paths.contains(&"name".to_string()), "{errs:?}");
        assert!(paths.contains(&"note".to_string()), "{errs:?}");
    }

    /// Terraform's rule holds attribute by attribute: an unknown configuration value (a name
    /// taken from another resource) must stay unknown even when the rest of the object is
    /// known, and a default may not replace it.
    #[test]
    fn an_unknown_configuration_value_stays_unknown() {
        let b = Block::new("t")
            .attr(Attribute::string("name").required())
            .attr(Attribute::string("bucket").optional().computed())
            .attr(Attribute::string("queue").default(Value::string("q")));
        let config = obj(&[
            ("name", Value::string("a")),
            ("bucket", Value::unknown()),
            ("queue", Value::unknown()),
        ]);
        let planned = plan_change(&b, &Value::Null, &config, &config);
        assert_eq!(planned.get("bucket"), Some(&Value::unknown()));
        assert_eq!(planned.get("queue"), Some(&Value::unknown()));
        assert!(check_plan(&b, &Value::Null, &config, &planned).is_empty());

        let mut defaulted = planned.clone();
        if let Some(v) = defaulted.get_mut("bucket") {
            *v = Value::string("trail-logs-123456789012-us-east-1");
        }
        let errs = check_plan(&b, &Value::Null, &config, &defaulted);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, AttrPath::root("bucket"));
        assert!(errs[0].message.contains("unknown"), "{errs:?}");

        // On update the prior value is allowed only where the configuration sets a value.
        let prior = obj(&[
            ("name", Value::string("a")),
            ("bucket", Value::string("old")),
            ("queue", Value::string("q")),
        ]);
        let mut kept = planned.clone();
        if let Some(v) = kept.get_mut("bucket") {
            *v = Value::string("old");
        }
        assert!(
            !check_plan(&b, &prior, &config, &kept).is_empty(),
            "the prior value does not stand in for an unknown configuration value"
        );
        let known = obj(&[
            ("name", Value::string("a")),
            ("bucket", Value::string("new")),
            ("queue", Value::unknown()),
        ]);
        let mut planned = plan_change(&b, &prior, &known, &known);
        assert!(check_plan(&b, &prior, &known, &planned).is_empty());
        if let Some(v) = planned.get_mut("bucket") {
            *v = Value::string("old");
        }
        assert!(
            check_plan(&b, &prior, &known, &planned).is_empty(),
            "a known configuration value may be planned as the prior (Terraform's equivalence)"
        );
    }

    #[test]
    fn apply_checks_compare_with_plan() {
        let planned = obj(&[("name", Value::string("a")), ("id", Value::unknown())]);
        let good = obj(&[("name", Value::string("a")), ("id", Value::string("x"))]);
        assert!(check_applied(&planned, &good).is_empty());
        let changed = obj(&[("name", Value::string("b")), ("id", Value::string("x"))]);
        assert_eq!(check_applied(&planned, &changed).len(), 1);
        let unresolved = obj(&[("name", Value::string("a")), ("id", Value::unknown())]);
        assert!(!check_applied(&planned, &unresolved).is_empty());
    }
}
