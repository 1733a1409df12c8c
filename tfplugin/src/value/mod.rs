//! cty values as Terraform exchanges them in `DynamicValue`: the type model and its type JSON,
//! the value model, and the MessagePack and JSON value encodings (`msgpack`, `json`), as the
//! tfplugin6 protocol defines them (Terraform's `docs/plugin-protocol/object-wire-format.md`;
//! zclconf/go-cty's msgpack and JSON encodings).

mod json;
mod msgpack;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

pub use json::{decode_json, encode_json, from_json_value};
pub use msgpack::{decode_msgpack, encode_msgpack};

/// A cty type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Bool,
    Number,
    String,
    /// Any type; values here travel with their concrete type attached.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }

    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }

    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }

    pub fn object<I: IntoIterator<Item = (K, Type)>, K: Into<String>>(attrs: I) -> Type {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// cty type JSON: `"string"`, `["list","string"]`, `["object",{..}]`, `"dynamic"`, ...
    pub fn to_json(&self) -> Json {
        let wrap = |kind: &str, inner: Json| Json::Array(vec![kind.into(), inner]);
        match self {
            Type::Bool => "bool".into(),
            Type::Number => "number".into(),
            Type::String => "string".into(),
            Type::Dynamic => "dynamic".into(),
            Type::List(t) => wrap("list", t.to_json()),
            Type::Set(t) => wrap("set", t.to_json()),
            Type::Map(t) => wrap("map", t.to_json()),
            Type::Object(attrs) => wrap(
                "object",
                Json::Object(
                    attrs
                        .iter()
                        .map(|(k, t)| (k.clone(), t.to_json()))
                        .collect(),
                ),
            ),
            Type::Tuple(ts) => wrap("tuple", ts.iter().map(Type::to_json).collect()),
        }
    }

    /// The bytes for `Schema.Attribute.type` (quotes included for primitives).
    pub fn json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    pub fn from_json(v: &Json) -> Result<Type, ValueError> {
        let bad = || ValueError::new(format!("invalid type JSON {v}"));
        let elem = |t: &Json| Type::from_json(t).map(Box::new);
        Ok(match v {
            Json::String(s) => match s.as_str() {
                "bool" => Type::Bool,
                "number" => Type::Number,
                "string" => Type::String,
                "dynamic" => Type::Dynamic,
                _ => return Err(bad()),
            },
            Json::Array(a) => match (a.first().and_then(Json::as_str), a.get(1..).unwrap_or(&[])) {
                (Some("list"), [t]) => Type::List(elem(t)?),
                (Some("set"), [t]) => Type::Set(elem(t)?),
                (Some("map"), [t]) => Type::Map(elem(t)?),
                (Some("object"), [Json::Object(attrs), optional @ ..]) if optional.len() <= 1 => {
                    // The third element lists optional attributes (function parameter types);
                    // it only affects conversion, so it is validated and dropped.
                    let names_ok = optional.iter().all(|o| {
                        o.as_array().is_some_and(|names| {
                            names
                                .iter()
                                .all(|n| n.as_str().is_some_and(|n| attrs.contains_key(n)))
                        })
                    });
                    if !names_ok {
                        return Err(bad());
                    }
                    let attrs = attrs
                        .iter()
                        .map(|(k, t)| Ok((k.clone(), Type::from_json(t)?)));
                    Type::Object(attrs.collect::<Result<_, ValueError>>()?)
                }
                (Some("tuple"), [Json::Array(ts)]) => {
                    Type::Tuple(ts.iter().map(Type::from_json).collect::<Result<_, _>>()?)
                }
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        })
    }

    /// Parses type JSON bytes (as in `Schema.Attribute.type` or a dynamic value's type).
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, ValueError> {
        let v: Json = serde_json::from_slice(bytes)
            .map_err(|e| ValueError::new(format!("invalid type JSON: {e}")))?;
        Type::from_json(&v)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// A cty number. Kept in the form it arrived in so big or precise decimals survive a round
/// trip; equality compares numeric values (`1 == 1.0 == "1"`).
#[derive(Clone, Debug)]
pub struct Number(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Int(i64),
    Float(f64),
    /// A validated decimal string (sign, digits, fraction, exponent).
    Decimal(String),
}

/// Normalised numeric value used for comparisons: `0.digits × 10^exp`.
#[derive(PartialEq)]
enum Canon {
    Finite { neg: bool, digits: String, exp: i64 },
    Inf { neg: bool },
}

fn canon_decimal(s: &str) -> Option<Canon> {
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mant, e) = match s.find(['e', 'E']) {
        // i32 keeps the exponent arithmetic below from overflowing.
        Some(i) => (&s[..i], i64::from(s[i + 1..].parse::<i32>().ok()?)),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.len() + frac.len() == 0 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let all = format!("{int}{frac}");
    let lead = all.bytes().take_while(|&b| b == b'0').count();
    let digits = all[lead..].trim_end_matches('0');
    Some(match digits {
        "" => Canon::Finite {
            neg: false,
            digits: String::new(),
            exp: 0,
        },
        _ => Canon::Finite {
            neg,
            digits: digits.to_owned(),
            exp: int.len() as i64 - lead as i64 + e,
        },
    })
}

impl Number {
    pub fn from_i64(i: i64) -> Self {
        Number(Repr::Int(i))
    }

    pub fn from_f64(f: f64) -> Self {
        Number(Repr::Float(f))
    }

    /// Parses a decimal string such as `"-12.5e3"` or `"12345678901234567890123"` losslessly.
    pub fn parse(s: &str) -> Option<Self> {
        canon_decimal(s)?;
        Some(Number(match s.parse::<i64>() {
            Ok(i) => Repr::Int(i),
            Err(_) => Repr::Decimal(s.to_owned()),
        }))
    }

    /// The value as an i64 if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Int(i) => Some(*i),
            Repr::Float(f) => {
                let in_range = (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(f);
                (f.fract() == 0.0 && in_range).then_some(*f as i64)
            }
            Repr::Decimal(_) => match self.canon()? {
                Canon::Finite { digits, .. } if digits.is_empty() => Some(0),
                Canon::Finite { neg, digits, exp } if (digits.len() as i64..=19).contains(&exp) => {
                    let zeros = "0".repeat(exp as usize - digits.len());
                    format!("{}{digits}{zeros}", if neg { "-" } else { "" })
                        .parse()
                        .ok()
                }
                _ => None,
            },
        }
    }

    /// The nearest f64 (may round big or precise decimals).
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Int(i) => *i as f64,
            Repr::Float(f) => *f,
            Repr::Decimal(s) => s.parse().unwrap_or(f64::NAN),
        }
    }

    fn canon(&self) -> Option<Canon> {
        match &self.0 {
            Repr::Int(i) => canon_decimal(&i.to_string()),
            Repr::Float(f) if f.is_infinite() => Some(Canon::Inf { neg: *f < 0.0 }),
            Repr::Float(f) => canon_decimal(&format!("{f:e}")),
            Repr::Decimal(s) => canon_decimal(s),
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        matches!((self.canon(), other.canon()), (Some(a), Some(b)) if a == b)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(i) => write!(f, "{i}"),
            Repr::Float(x) => write!(f, "{x}"),
            Repr::Decimal(s) => f.write_str(s),
        }
    }
}

/// What Terraform knows about an unknown value (cty refinements).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Refinements {
    /// `Some(true)`: definitely not null; `Some(false)`: definitely null.
    pub not_null: Option<bool>,
    pub string_prefix: Option<String>,
    /// Number bound and whether it is inclusive.
    pub number_lower: Option<(Number, bool)>,
    pub number_upper: Option<(Number, bool)>,
    /// Collection length bounds.
    pub length_min: Option<u64>,
    pub length_max: Option<u64>,
}

/// A cty value. Its type is not stored; codecs take the type separately.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Unknown(Refinements),
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Elements in the order given; no deduplication.
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A concrete-typed value sitting at a `dynamic`-typed position.
    Dynamic(Type, Box<Value>),
}

impl Value {
    pub fn unknown() -> Value {
        Value::Unknown(Refinements::default())
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn object<I: IntoIterator<Item = (K, Value)>, K: Into<String>>(attrs: I) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn null_for(_ty: &Type) -> Value {
        Value::Null
    }

    /// The value with any `Dynamic` wrappers removed; accessors look through them.
    pub fn inner(&self) -> &Value {
        match self {
            Value::Dynamic(_, v) => v.inner(),
            v => v,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.inner(), Value::Null)
    }

    /// Not unknown at the top level (elements may still be unknown).
    pub fn is_known(&self) -> bool {
        !matches!(self.inner(), Value::Unknown(_))
    }

    /// No unknown anywhere inside.
    pub fn is_wholly_known(&self) -> bool {
        match self.inner() {
            Value::Unknown(_) => false,
            Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => {
                vs.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.inner() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.inner() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self.inner() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_number()?.as_i64()
    }

    /// Elements of a list, set or tuple.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self.inner() {
            Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => Some(vs),
            _ => None,
        }
    }

    /// Entries of a map or attributes of an object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self.inner() {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// An object attribute (None if not an object or no such attribute).
    pub fn get(&self, attr: &str) -> Option<&Value> {
        match self.inner() {
            Value::Object(m) => m.get(attr),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, attr: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) => m.get_mut(attr),
            Value::Dynamic(_, v) => v.get_mut(attr),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Number(Number::from_i64(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Number(Number::from_f64(f))
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// A decode or encode failure at `path` (`.attr`, `[0]`, `["key"]` steps; empty at the root).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValueError {
    pub path: String,
    pub message: String,
}

impl ValueError {
    pub fn new(message: impl Into<String>) -> Self {
        ValueError {
            path: String::new(),
            message: message.into(),
        }
    }

    // Paths are built while the error propagates outwards, so each step is prepended.
    fn at_attr(mut self, name: &str) -> Self {
        self.path.insert_str(0, &format!(".{name}"));
        self
    }

    fn at_index(mut self, i: usize) -> Self {
        self.path.insert_str(0, &format!("[{i}]"));
        self
    }

    fn at_key(mut self, key: &str) -> Self {
        self.path.insert_str(0, &format!("[{}]", Json::from(key)));
        self
    }
}

fn mismatch(ty: &Type, found: &str) -> ValueError {
    ValueError::new(format!("expected {ty}, found {found}"))
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown(_) => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(..) => "dynamic value",
    }
}

fn unsupported_attr(name: &str) -> ValueError {
    ValueError::new(format!("unsupported attribute \"{name}\"")).at_attr(name)
}

fn tuple_len(want: usize, got: usize) -> Result<(), ValueError> {
    match want == got {
        true => Ok(()),
        false => Err(ValueError::new(format!(
            "tuple needs {want} elements, got {got}"
        ))),
    }
}
