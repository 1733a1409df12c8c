//! Schema builders: attributes, nested blocks, plan modifiers, defaults and validators.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::diag::{AttrPath, Diagnostics};
use super::value::{Type, Value};

/// A validator runs on known, non-null configuration values.
pub trait Validator: Send + Sync {
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics);
}

/// A validator built from a closure.
pub struct FnValidator<F>(pub F);

impl<F> Validator for FnValidator<F>
where
    F: Fn(&Value, &AttrPath, &mut Diagnostics) + Send + Sync,
{
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        (self.0)(value, path, diags)
    }
}

#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub write_only: bool,
    pub description: String,
    pub deprecated: Option<String>,
    /// A change of this attribute on update destroys and re-creates the resource.
    pub requires_replace: bool,
    /// Keep the prior state value instead of planning unknown when the resource changes.
    pub use_state_for_unknown: bool,
    /// Value planned when the configuration leaves this (optional + computed) attribute null.
    pub default: Option<Value>,
    pub validators: Vec<Arc<dyn Validator>>,
}

impl Attribute {
    pub fn new(name: &str, ty: Type) -> Self {
        Attribute {
            name: name.to_string(),
            ty,
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            description: String::new(),
            deprecated: None,
            requires_replace: false,
            use_state_for_unknown: false,
            default: None,
            validators: Vec::new(),
        }
    }
    pub fn string(name: &str) -> Self {
        Self::new(name, Type::String)
    }
    pub fn bool(name: &str) -> Self {
        Self::new(name, Type::Bool)
    }
    pub fn number(name: &str) -> Self {
        Self::new(name, Type::Number)
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn description(mut self, markdown: &str) -> Self {
        self.description = markdown.to_string();
        self
    }
    pub fn deprecated(mut self, message: &str) -> Self {
        self.deprecated = Some(message.to_string());
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    pub fn use_state_for_unknown(mut self) -> Self {
        self.use_state_for_unknown = true;
        self
    }
    /// A default makes the attribute optional and computed, as Terraform requires.
    pub fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self.optional = true;
        self.computed = true;
        self
    }
    pub fn validator(mut self, v: impl Validator + 'static) -> Self {
        self.validators.push(Arc::new(v));
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
}

#[derive(Clone)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

impl NestedBlock {
    pub fn single(name: &str, block: Block) -> Self {
        NestedBlock {
            name: name.to_string(),
            nesting: Nesting::Single,
            block,
            min_items: 0,
            max_items: 0,
        }
    }
    pub fn list(name: &str, block: Block) -> Self {
        NestedBlock {
            nesting: Nesting::List,
            ..Self::single(name, block)
        }
    }
    pub fn max_items(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }
    pub fn min_items(mut self, n: i64) -> Self {
        self.min_items = n;
        self
    }
    pub fn ty(&self) -> Type {
        let inner = self.block.ty();
        match self.nesting {
            Nesting::Single => inner,
            Nesting::List => Type::List(Box::new(inner)),
            Nesting::Set => Type::Set(Box::new(inner)),
        }
    }
}

#[derive(Clone, Default)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: String,
}

impl Block {
    pub fn new(description: &str) -> Self {
        Block {
            description: description.to_string(),
            ..Default::default()
        }
    }
    pub fn attr(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    /// The object type of a value of this block.
    pub fn ty(&self) -> Type {
        let mut attrs = BTreeMap::new();
        for a in &self.attributes {
            attrs.insert(a.name.clone(), a.ty.clone());
        }
        for b in &self.blocks {
            attrs.insert(b.name.clone(), b.ty());
        }
        Type::Object(attrs)
    }
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// A resource's, data source's or the provider's schema.
#[derive(Clone, Default)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
    /// The oldest stored version that decodes under this schema as it is: the versions since
    /// only added attributes (null until the next plan fills them), so UpgradeResourceState
    /// needs no per-resource code for them. `version` unless `readable_from` says otherwise.
    pub readable_from: i64,
}

impl Schema {
    pub fn new(version: i64, block: Block) -> Self {
        Schema {
            version,
            block,
            readable_from: version,
        }
    }
    /// State stored under `version` and later decodes as it is (attributes were only added).
    pub fn readable_from(mut self, version: i64) -> Self {
        self.readable_from = version;
        self
    }
    pub fn ty(&self) -> Type {
        self.block.ty()
    }
}

/// Runs every attribute's validators on the known, non-null values of `value`.
pub fn run_validators(block: &Block, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
    for a in &block.attributes {
        let Some(v) = value.get(&a.name) else {
            continue;
        };
        let p = child(path, &a.name);
        if v.is_null() || !v.is_wholly_known() {
            continue;
        }
        for val in &a.validators {
            val.validate(v, &p, diags);
        }
    }
    for b in &block.blocks {
        let Some(v) = value.get(&b.name) else {
            continue;
        };
        let p = child(path, &b.name);
        match (b.nesting, v) {
            (Nesting::Single, v) if !v.is_null() && v.is_known() => {
                run_validators(&b.block, v, &p, diags)
            }
            (Nesting::List | Nesting::Set, Value::List(items) | Value::Set(items)) => {
                for (i, item) in items.iter().enumerate() {
                    run_validators(&b.block, item, &p.index(i), diags);
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn child(path: &AttrPath, name: &str) -> AttrPath {
    if path.is_empty() {
        AttrPath::root(name)
    } else {
        path.attr(name)
    }
}

/// Removes from stored state (JSON, as in the state file) the attributes and blocks this
/// schema no longer has, as terraform-plugin-framework does, so that a release that drops
/// an attribute can still read state written before it. Returns the paths removed.
pub fn prune_stored_state(block: &Block, json: &mut serde_json::Value) -> Vec<AttrPath> {
    let mut dropped = Vec::new();
    prune_at(block, json, &AttrPath::default(), &mut dropped);
    dropped
}

fn prune_at(
    block: &Block,
    json: &mut serde_json::Value,
    path: &AttrPath,
    dropped: &mut Vec<AttrPath>,
) {
    let serde_json::Value::Object(map) = json else {
        return;
    };
    map.retain(|k, _| {
        let known = block.attribute(k).is_some() || block.blocks.iter().any(|b| &b.name == k);
        if !known {
            dropped.push(child(path, k));
        }
        known
    });
    for b in &block.blocks {
        let Some(v) = map.get_mut(&b.name) else {
            continue;
        };
        let p = child(path, &b.name);
        match (b.nesting, v) {
            (Nesting::Single, v) => prune_at(&b.block, v, &p, dropped),
            (Nesting::List | Nesting::Set, serde_json::Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(&b.block, item, &p.index(i), dropped);
                }
            }
            _ => {}
        }
    }
}

/// Nested list and set blocks are an empty collection, never null, on the wire.
pub fn normalize_blocks(block: &Block, value: &mut Value) {
    let Value::Object(map) = value else { return };
    for b in &block.blocks {
        let entry = map.entry(b.name.clone()).or_insert(Value::Null);
        match b.nesting {
            Nesting::List if entry.is_null() => *entry = Value::List(vec![]),
            Nesting::Set if entry.is_null() => *entry = Value::Set(vec![]),
            Nesting::Single => normalize_blocks(&b.block, entry),
            Nesting::List | Nesting::Set => {
                if let Value::List(items) | Value::Set(items) = entry {
                    for item in items {
                        normalize_blocks(&b.block, item);
                    }
                }
            }
        }
    }
}

/// Common validators.
pub mod validators {
    use super::FnValidator;
    use crate::diag::{AttrPath, Diagnostics};
    use crate::value::Value;

    /// The string must not be empty or only whitespace.
    pub fn non_empty() -> impl super::Validator {
        FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
            if v.as_str().is_some_and(|s| s.trim().is_empty()) {
                d.attr_error(
                    p.clone(),
                    "Empty value",
                    format!("`{p}` must not be empty: set it to a non-empty string or remove it."),
                );
            }
        })
    }

    /// The string must be an absolute URL with one of the given schemes.
    pub fn url(schemes: &'static [&'static str]) -> impl super::Validator {
        FnValidator(move |v: &Value, p: &AttrPath, d: &mut Diagnostics| {
            let Some(s) = v.as_str() else { return };
            match url::Url::parse(s) {
                Ok(u) if schemes.contains(&u.scheme()) && u.host_str().is_some() => {}
                Ok(u) if u.host_str().is_some() => d.attr_error(
                    p.clone(),
                    "Unsupported URL scheme",
                    format!(
                        "`{p}` uses the scheme \"{}\"; use one of: {}.",
                        u.scheme(),
                        schemes.join(", ")
                    ),
                ),
                Ok(_) | Err(_) => d.attr_error(
                    p.clone(),
                    "Malformed URL",
                    format!(
                        "`{p}` = {s:?} is not an absolute URL such as \"{}://host.example.com\".",
                        schemes[0]
                    ),
                ),
            }
        })
    }

    /// The string must be one of the listed values.
    pub fn one_of(allowed: &'static [&'static str]) -> impl super::Validator {
        FnValidator(move |v: &Value, p: &AttrPath, d: &mut Diagnostics| {
            if let Some(s) = v.as_str() {
                if !allowed.contains(&s) {
                    d.attr_error(
                        p.clone(),
                        "Unsupported value",
                        format!("`{p}` = {s:?}; expected one of: {}.", allowed.join(", ")),
                    );
                }
            }
        })
    }
}
