//! cty values as Terraform exchanges them in `DynamicValue`: the type model, its type JSON,
//! and the MessagePack and JSON value encodings, as the tfplugin6 protocol defines them
//! (Terraform's `docs/plugin-protocol/object-wire-format.md`; zclconf/go-cty's msgpack and
//! JSON encodings).

use std::collections::BTreeMap;
use std::fmt;

use rmpv::Value as Mp;
use serde_json::Value as Json;

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

    /// The f64 equal to this decimal, if one represents it exactly.
    fn exact_f64(s: &str) -> Option<f64> {
        let f: f64 = s.parse().ok().filter(|f: &f64| f.is_finite())?;
        // 1100 fractional digits cover the exact expansion of every finite f64.
        (canon_decimal(&format!("{f:.1100}")) == canon_decimal(s)).then_some(f)
    }

    /// Ints as ints, other values as float64 when exact, otherwise as a decimal string.
    fn to_msgpack(&self) -> Mp {
        if let Some(i) = self.as_i64() {
            return i.into();
        }
        match &self.0 {
            Repr::Decimal(s) => Number::exact_f64(s).map_or_else(|| s.as_str().into(), Mp::F64),
            _ => Mp::F64(self.as_f64()),
        }
    }

    fn from_msgpack(mp: Mp) -> Result<Number, ValueError> {
        match mp {
            Mp::Integer(i) => Ok(match (i.as_i64(), i.as_u64()) {
                (Some(i), _) => Number::from_i64(i),
                (None, u) => Number(Repr::Decimal(u.unwrap_or_default().to_string())),
            }),
            Mp::F32(f) => Ok(Number::from_f64(f.into())),
            Mp::F64(f) => Ok(Number::from_f64(f)),
            Mp::String(s) => s
                .as_str()
                .and_then(Number::parse)
                .ok_or_else(|| ValueError::new(format!("invalid number {s}"))),
            other => Err(mismatch(&Type::Number, mp_kind(&other))),
        }
    }

    fn json_text(&self) -> Result<String, ValueError> {
        if let Some(i) = self.as_i64() {
            return Ok(i.to_string());
        }
        match &self.0 {
            Repr::Decimal(s) if s.parse::<serde_json::Number>().is_ok() => Ok(s.clone()),
            // Decimals JSON cannot spell as written (".5", "+1") go out normalised.
            Repr::Decimal(_) => match self.canon() {
                Some(Canon::Finite { neg, digits, exp }) => {
                    Ok(format!("{}0.{digits}e{exp}", if neg { "-" } else { "" }))
                }
                _ => Err(ValueError::new("invalid number")),
            },
            _ => serde_json::Number::from_f64(self.as_f64())
                .map(|n| n.to_string())
                .ok_or_else(|| ValueError::new("JSON cannot represent an infinite number")),
        }
    }

    fn from_json_number(n: &serde_json::Number) -> Number {
        match n.as_i64() {
            Some(i) => Number::from_i64(i),
            None => Number::parse(&n.to_string())
                .unwrap_or_else(|| Number::from_f64(n.as_f64().unwrap_or(f64::NAN))),
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

const EXT_REFINED: i8 = 12;

impl Refinements {
    /// Reads an extension payload; anything unexpected yields no refinements rather than an
    /// error, since refinements are only hints.
    fn from_ext(code: i8, data: &[u8]) -> Refinements {
        if code != EXT_REFINED || data.len() <= 1 || data.len() > 1024 {
            return Refinements::default();
        }
        Refinements::parse(data).unwrap_or_default()
    }

    fn parse(mut data: &[u8]) -> Option<Refinements> {
        let Mp::Map(entries) = rmpv::decode::read_value(&mut data).ok()? else {
            return None;
        };
        let bound = |v: Mp| match v {
            Mp::Array(a) => match <[Mp; 2]>::try_from(a).ok()? {
                [n, Mp::Boolean(inc)] => Some((Number::from_msgpack(n).ok()?, inc)),
                _ => None,
            },
            _ => None,
        };
        let mut r = Refinements::default();
        for (k, v) in entries {
            match k.as_i64()? {
                1 => r.not_null = Some(!v.as_bool()?),
                2 => r.string_prefix = Some(v.as_str()?.to_owned()),
                3 => r.number_lower = Some(bound(v)?),
                4 => r.number_upper = Some(bound(v)?),
                5 => r.length_min = Some(v.as_u64()?),
                6 => r.length_max = Some(v.as_u64()?),
                _ => {} // future refinement kinds
            }
        }
        Some(r)
    }

    fn to_msgpack(&self) -> Result<Mp, ValueError> {
        let bound = |(n, inc): &(Number, bool)| Mp::Array(vec![n.to_msgpack(), Mp::Boolean(*inc)]);
        let entries: Vec<(Mp, Mp)> = [
            self.not_null.map(|nn| (1, Mp::Boolean(!nn))),
            self.string_prefix.as_deref().map(|p| (2, p.into())),
            self.number_lower.as_ref().map(|b| (3, bound(b))),
            self.number_upper.as_ref().map(|b| (4, bound(b))),
            self.length_min.map(|n| (5, n.into())),
            self.length_max.map(|n| (6, n.into())),
        ]
        .into_iter()
        .flatten()
        .map(|(k, v)| (Mp::from(k), v))
        .collect();
        if entries.is_empty() {
            return Ok(Mp::Ext(0, vec![0])); // canonical `d4 00 00`; never an empty type-12 map
        }
        Ok(Mp::Ext(EXT_REFINED, write_msgpack(&Mp::Map(entries))?))
    }
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

fn mp_kind(mp: &Mp) -> &'static str {
    match mp {
        Mp::Nil => "nil",
        Mp::Boolean(_) => "bool",
        Mp::Integer(_) | Mp::F32(_) | Mp::F64(_) => "number",
        Mp::String(_) => "string",
        Mp::Binary(_) => "binary",
        Mp::Array(_) => "array",
        Mp::Map(_) => "map",
        Mp::Ext(..) => "extension",
    }
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

fn write_msgpack(mp: &Mp) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, mp).map_err(|e| ValueError::new(e.to_string()))?;
    Ok(out)
}

/// Decodes a MessagePack `DynamicValue` of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, ValueError> {
    let mut rest = bytes;
    let mp = rmpv::decode::read_value(&mut rest)
        .map_err(|e| ValueError::new(format!("invalid msgpack: {e}")))?;
    if !rest.is_empty() {
        return Err(ValueError::new("trailing bytes after msgpack value"));
    }
    from_msgpack(mp, ty)
}

fn seq_from_msgpack(items: Vec<Mp>, ety: &Type) -> Result<Vec<Value>, ValueError> {
    let items = items.into_iter().enumerate();
    items
        .map(|(i, v)| from_msgpack(v, ety).map_err(|e| e.at_index(i)))
        .collect()
}

fn key_from_msgpack(k: Mp) -> Result<String, ValueError> {
    match k {
        Mp::String(s) => s
            .into_str()
            .ok_or_else(|| ValueError::new("map key is not valid UTF-8")),
        other => Err(ValueError::new(format!(
            "map key must be a string, found {}",
            mp_kind(&other)
        ))),
    }
}

fn from_msgpack(mp: Mp, ty: &Type) -> Result<Value, ValueError> {
    Ok(match (ty, mp) {
        (_, Mp::Nil) => Value::Null,
        // Any extension type is an unknown; dynamic unknowns carry no refinements.
        (Type::Dynamic, Mp::Ext(..)) => Value::unknown(),
        (_, Mp::Ext(code, data)) => Value::Unknown(Refinements::from_ext(code, &data)),
        (Type::Bool, Mp::Boolean(b)) => Value::Bool(b),
        (Type::Number, mp) => Value::Number(Number::from_msgpack(mp)?),
        (Type::String, Mp::String(s)) => Value::String(
            s.into_str()
                .ok_or_else(|| ValueError::new("string is not valid UTF-8"))?,
        ),
        (Type::List(ety), Mp::Array(items)) => Value::List(seq_from_msgpack(items, ety)?),
        (Type::Set(ety), Mp::Array(items)) => Value::Set(seq_from_msgpack(items, ety)?),
        (Type::Tuple(etys), Mp::Array(items)) => {
            tuple_len(etys.len(), items.len())?;
            let items = items.into_iter().zip(etys).enumerate();
            Value::Tuple(
                items
                    .map(|(i, (v, t))| from_msgpack(v, t).map_err(|e| e.at_index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Type::Map(ety), Mp::Map(entries)) => {
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let k = key_from_msgpack(k)?;
                let v = from_msgpack(v, ety).map_err(|e| e.at_key(&k))?;
                out.insert(k, v);
            }
            Value::Map(out)
        }
        (Type::Object(attrs), Mp::Map(entries)) => {
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let k = key_from_msgpack(k)?;
                let aty = attrs.get(&k).ok_or_else(|| unsupported_attr(&k))?;
                let v = from_msgpack(v, aty).map_err(|e| e.at_attr(&k))?;
                if out.insert(k.clone(), v).is_some() {
                    return Err(ValueError::new(format!("duplicate attribute \"{k}\"")).at_attr(&k));
                }
            }
            // The wire format requires every attribute, explicitly nil when unset.
            if let Some(k) = attrs.keys().find(|k| !out.contains_key(*k)) {
                return Err(ValueError::new(format!("attribute \"{k}\" is required")).at_attr(k));
            }
            Value::Object(out)
        }
        (Type::Dynamic, Mp::Array(items)) => {
            let [t, v] = <[Mp; 2]>::try_from(items)
                .map_err(|_| ValueError::new("dynamic value must be a [type, value] array"))?;
            let ty = match &t {
                Mp::Binary(b) => Type::from_json_bytes(b)?,
                Mp::String(s) => Type::from_json_bytes(s.as_bytes())?,
                other => {
                    return Err(ValueError::new(format!(
                        "dynamic value type must be bytes, found {}",
                        mp_kind(other)
                    )))
                }
            };
            let v = from_msgpack(v, &ty)?;
            Value::Dynamic(ty, Box::new(v))
        }
        (ty, other) => return Err(mismatch(ty, mp_kind(&other))),
    })
}

/// Encodes `v` as type `ty`, writing every object attribute (nil when absent from `v`).
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, ValueError> {
    write_msgpack(&to_msgpack(v, ty)?)
}

fn seq_to_msgpack(items: &[Value], ety: &Type) -> Result<Mp, ValueError> {
    let items = items.iter().enumerate();
    Ok(Mp::Array(
        items
            .map(|(i, v)| to_msgpack(v, ety).map_err(|e| e.at_index(i)))
            .collect::<Result<_, _>>()?,
    ))
}

fn to_msgpack(v: &Value, ty: &Type) -> Result<Mp, ValueError> {
    Ok(match (v, ty) {
        (Value::Null, _) => Mp::Nil,
        (Value::Unknown(_), Type::Dynamic) => Refinements::default().to_msgpack()?,
        (Value::Unknown(r), _) => r.to_msgpack()?,
        (Value::Dynamic(t, inner), Type::Dynamic) => {
            Mp::Array(vec![Mp::Binary(t.json_bytes()), to_msgpack(inner, t)?])
        }
        (v, Type::Dynamic) => {
            return Err(ValueError::new(format!(
                "a {} at a dynamic position needs Value::Dynamic",
                value_kind(v)
            )));
        }
        (Value::Dynamic(t, inner), ty) if t == ty => to_msgpack(inner, ty)?,
        (Value::Bool(b), Type::Bool) => Mp::Boolean(*b),
        (Value::Number(n), Type::Number) => n.to_msgpack(),
        (Value::String(s), Type::String) => s.as_str().into(),
        (Value::List(items), Type::List(ety)) | (Value::Set(items), Type::Set(ety)) => {
            seq_to_msgpack(items, ety)?
        }
        (Value::Tuple(items), Type::Tuple(etys)) => {
            tuple_len(etys.len(), items.len())?;
            let items = items.iter().zip(etys).enumerate();
            Mp::Array(
                items
                    .map(|(i, (v, t))| to_msgpack(v, t).map_err(|e| e.at_index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Value::Map(m), Type::Map(ety)) => {
            let entries = m.iter().map(|(k, v)| {
                Ok((
                    k.as_str().into(),
                    to_msgpack(v, ety).map_err(|e| e.at_key(k))?,
                ))
            });
            Mp::Map(entries.collect::<Result<_, ValueError>>()?)
        }
        (Value::Object(m), Type::Object(attrs)) => {
            if let Some(k) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(unsupported_attr(k));
            }
            let entries = attrs.iter().map(|(k, t)| {
                let v = m
                    .get(k)
                    .map_or(Ok(Mp::Nil), |v| to_msgpack(v, t).map_err(|e| e.at_attr(k)))?;
                Ok((k.as_str().into(), v))
            });
            Mp::Map(entries.collect::<Result<_, ValueError>>()?)
        }
        (v, ty) => return Err(mismatch(ty, value_kind(v))),
    })
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Decodes a JSON `DynamicValue` or `RawState.json`. Lenient like go-cty: missing object
/// attributes become null and primitives convert from strings. Numbers beyond u64 are
/// parsed by serde_json as f64, so they may round.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, ValueError> {
    let j: Json =
        serde_json::from_slice(bytes).map_err(|e| ValueError::new(format!("invalid JSON: {e}")))?;
    from_json(j, ty)
}

/// Decodes an already parsed JSON value (state as stored) of type `ty`.
pub fn from_json_value(j: Json, ty: &Type) -> Result<Value, ValueError> {
    from_json(j, ty)
}

fn seq_from_json(items: Vec<Json>, ety: &Type) -> Result<Vec<Value>, ValueError> {
    let items = items.into_iter().enumerate();
    items
        .map(|(i, v)| from_json(v, ety).map_err(|e| e.at_index(i)))
        .collect()
}

fn from_json(j: Json, ty: &Type) -> Result<Value, ValueError> {
    Ok(match (ty, j) {
        (_, Json::Null) => Value::Null,
        (Type::Bool, Json::Bool(b)) => Value::Bool(b),
        (Type::Bool, Json::String(s)) if s == "true" || s == "false" => Value::Bool(s == "true"),
        (Type::Number, Json::Number(n)) => Value::Number(Number::from_json_number(&n)),
        (Type::Number, Json::String(s)) => Value::Number(
            Number::parse(&s).ok_or_else(|| ValueError::new(format!("invalid number {s:?}")))?,
        ),
        (Type::String, Json::String(s)) => Value::String(s),
        (Type::String, Json::Number(n)) => Value::String(n.to_string()),
        (Type::String, Json::Bool(b)) => Value::String(b.to_string()),
        (Type::List(ety), Json::Array(items)) => Value::List(seq_from_json(items, ety)?),
        (Type::Set(ety), Json::Array(items)) => Value::Set(seq_from_json(items, ety)?),
        (Type::Tuple(etys), Json::Array(items)) => {
            tuple_len(etys.len(), items.len())?;
            let items = items.into_iter().zip(etys).enumerate();
            Value::Tuple(
                items
                    .map(|(i, (v, t))| from_json(v, t).map_err(|e| e.at_index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Type::Map(ety), Json::Object(m)) => {
            let entries = m
                .into_iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v, ety).map_err(|e| e.at_key(&k))?)));
            Value::Map(entries.collect::<Result<_, ValueError>>()?)
        }
        (Type::Object(attrs), Json::Object(mut m)) => {
            if let Some(k) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(unsupported_attr(k));
            }
            let entries = attrs.iter().map(|(k, t)| {
                let v = m.remove(k).map_or(Ok(Value::Null), |v| {
                    from_json(v, t).map_err(|e| e.at_attr(k))
                })?;
                Ok((k.clone(), v))
            });
            Value::Object(entries.collect::<Result<_, ValueError>>()?)
        }
        (Type::Dynamic, Json::Object(mut m)) => {
            if let Some(k) = m.keys().find(|k| *k != "type" && *k != "value") {
                return Err(ValueError::new(format!(
                    "invalid key \"{k}\" in dynamically-typed value"
                )));
            }
            let (Some(t), Some(v)) = (m.remove("type"), m.remove("value")) else {
                return Err(ValueError::new(
                    "dynamically-typed value needs \"type\" and \"value\"",
                ));
            };
            let t = Type::from_json(&t)?;
            let v = from_json(v, &t)?;
            Value::Dynamic(t, Box::new(v))
        }
        (ty, other) => return Err(mismatch(ty, json_kind(&other))),
    })
}

/// Encodes `v` as JSON of type `ty`. Fails on unknowns, which JSON cannot hold.
pub fn encode_json(v: &Value, ty: &Type) -> Result<Vec<u8>, ValueError> {
    let mut out = String::new();
    write_json(v, ty, &mut out)?;
    Ok(out.into_bytes())
}

fn write_json_seq<'a>(
    items: impl Iterator<Item = (&'a Value, &'a Type)>,
    out: &mut String,
) -> Result<(), ValueError> {
    out.push('[');
    for (i, (v, t)) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json(v, t, out).map_err(|e| e.at_index(i))?;
    }
    out.push(']');
    Ok(())
}

fn write_json(v: &Value, ty: &Type, out: &mut String) -> Result<(), ValueError> {
    match (v, ty) {
        (Value::Null, _) => out.push_str("null"),
        (Value::Unknown(_), _) => {
            return Err(ValueError::new(
                "value is not known; JSON cannot represent unknown values",
            ))
        }
        (Value::Dynamic(t, inner), Type::Dynamic) => {
            out.push_str("{\"value\":");
            write_json(inner, t, out)?;
            out.push_str(&format!(",\"type\":{t}}}"));
        }
        (v, Type::Dynamic) => {
            return Err(ValueError::new(format!(
                "a {} at a dynamic position needs Value::Dynamic",
                value_kind(v)
            )));
        }
        (Value::Dynamic(t, inner), ty) if t == ty => write_json(inner, ty, out)?,
        (Value::Bool(b), Type::Bool) => out.push_str(if *b { "true" } else { "false" }),
        (Value::Number(n), Type::Number) => out.push_str(&n.json_text()?),
        (Value::String(s), Type::String) => out.push_str(&Json::from(s.as_str()).to_string()),
        (Value::List(items), Type::List(ety)) | (Value::Set(items), Type::Set(ety)) => {
            write_json_seq(items.iter().zip(std::iter::repeat(&**ety)), out)?
        }
        (Value::Tuple(items), Type::Tuple(etys)) => {
            tuple_len(etys.len(), items.len())?;
            write_json_seq(items.iter().zip(etys), out)?
        }
        (Value::Map(m), Type::Map(ety)) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                out.push_str(&format!(
                    "{}{}:",
                    if i > 0 { "," } else { "" },
                    Json::from(k.as_str())
                ));
                write_json(v, ety, out).map_err(|e| e.at_key(k))?;
            }
            out.push('}');
        }
        (Value::Object(m), Type::Object(attrs)) => {
            if let Some(k) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(unsupported_attr(k));
            }
            out.push('{');
            for (i, (k, t)) in attrs.iter().enumerate() {
                out.push_str(&format!(
                    "{}{}:",
                    if i > 0 { "," } else { "" },
                    Json::from(k.as_str())
                ));
                write_json(m.get(k).unwrap_or(&Value::Null), t, out).map_err(|e| e.at_attr(k))?;
            }
            out.push('}');
        }
        (v, ty) => return Err(mismatch(ty, value_kind(v))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(attrs: &[(&str, Type)]) -> Type {
        Type::object(attrs.iter().cloned())
    }

    fn n(i: i64) -> Value {
        Value::from(i)
    }

    fn ext(code: i8, data: Vec<u8>) -> Vec<u8> {
        write_msgpack(&Mp::Ext(code, data)).unwrap()
    }

    fn mp_bytes(mp: Mp) -> Vec<u8> {
        write_msgpack(&mp).unwrap()
    }

    /// Asserts msgpack (and, for wholly known values, JSON) round trips.
    fn round_trip(v: &Value, ty: &Type) {
        let bytes = encode_msgpack(v, ty).unwrap();
        assert_eq!(&decode_msgpack(&bytes, ty).unwrap(), v, "msgpack {ty}");
        if v.is_wholly_known() {
            let json = encode_json(v, ty).unwrap();
            assert_eq!(
                &decode_json(&json, ty).unwrap(),
                v,
                "json {}",
                String::from_utf8_lossy(&json)
            );
        }
    }

    fn nested_type() -> Type {
        obj(&[
            ("name", Type::String),
            ("count", Type::Number),
            ("enabled", Type::Bool),
            ("tags", Type::map(Type::String)),
            ("ids", Type::set(Type::Number)),
            ("pair", Type::Tuple(vec![Type::String, Type::Bool])),
            (
                "rules",
                Type::list(obj(&[
                    ("port", Type::Number),
                    ("cidrs", Type::list(Type::String)),
                ])),
            ),
            ("extra", Type::Dynamic),
        ])
    }

    #[test]
    fn round_trips_primitives_and_nulls() {
        for ty in [Type::Bool, Type::Number, Type::String, Type::Dynamic] {
            round_trip(&Value::Null, &ty);
            round_trip(&Value::unknown(), &ty);
        }
        round_trip(&Value::Bool(true), &Type::Bool);
        round_trip(&Value::Bool(false), &Type::Bool);
        round_trip(&Value::string("héllo"), &Type::String);
        round_trip(&Value::string(""), &Type::String);
        round_trip(&n(-42), &Type::Number);
        round_trip(&Value::from(1.5), &Type::Number);
    }

    #[test]
    fn round_trips_collections() {
        round_trip(&Value::List(vec![]), &Type::list(Type::String));
        round_trip(
            &Value::List(vec![Value::string("a"), Value::Null]),
            &Type::list(Type::String),
        );
        round_trip(
            &Value::Set(vec![n(3), n(1), n(2)]),
            &Type::set(Type::Number),
        );
        let m = Value::Map(
            [
                ("a".to_owned(), Value::Bool(true)),
                ("b".to_owned(), Value::Null),
            ]
            .into(),
        );
        round_trip(&m, &Type::map(Type::Bool));
        round_trip(&Value::Map(BTreeMap::new()), &Type::map(Type::Bool));
        let tup = Type::Tuple(vec![Type::String, Type::Number, Type::list(Type::Bool)]);
        round_trip(
            &Value::Tuple(vec![
                Value::string("x"),
                n(1),
                Value::List(vec![Value::Bool(true)]),
            ]),
            &tup,
        );
        round_trip(
            &Value::Tuple(vec![Value::Null, Value::Null, Value::Null]),
            &tup,
        );
        round_trip(&Value::Tuple(vec![]), &Type::Tuple(vec![]));
        round_trip(
            &Value::object::<_, String>([]),
            &Type::Object(BTreeMap::new()),
        );
    }

    #[test]
    fn round_trips_nested_objects_with_nulls_at_every_level() {
        let ty = nested_type();
        let full = Value::object([
            ("name", Value::string("guide")),
            ("count", n(3)),
            ("enabled", Value::Bool(true)),
            (
                "tags",
                Value::Map([("env".to_owned(), Value::string("prod"))].into()),
            ),
            ("ids", Value::Set(vec![n(2), n(1)])),
            (
                "pair",
                Value::Tuple(vec![Value::string("k"), Value::Bool(false)]),
            ),
            (
                "rules",
                Value::List(vec![
                    Value::object([
                        ("port", n(443)),
                        ("cidrs", Value::List(vec![Value::string("10.0.0.0/8")])),
                    ]),
                    Value::object([("port", Value::Null), ("cidrs", Value::Null)]),
                    Value::Null,
                ]),
            ),
            (
                "extra",
                Value::Dynamic(
                    Type::list(Type::String),
                    Box::new(Value::List(vec![Value::string("d")])),
                ),
            ),
        ]);
        round_trip(&full, &ty);
        round_trip(&Value::Null, &ty);
        let Type::Object(attrs) = &ty else {
            unreachable!()
        };
        round_trip(
            &Value::Object(attrs.keys().map(|k| (k.clone(), Value::Null)).collect()),
            &ty,
        );
        let mut partly_unknown = full.clone();
        *partly_unknown.get_mut("count").unwrap() = Value::unknown();
        *partly_unknown.get_mut("tags").unwrap() = Value::unknown();
        round_trip(&partly_unknown, &ty);
        assert!(!partly_unknown.is_wholly_known() && partly_unknown.is_known());
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(
            encode_msgpack(&Value::unknown(), &Type::String).unwrap(),
            [0xd4, 0x00, 0x00]
        );
        assert_eq!(
            encode_msgpack(&Value::unknown(), &Type::Dynamic).unwrap(),
            [0xd4, 0x00, 0x00]
        );
        assert_eq!(encode_msgpack(&Value::Null, &Type::String).unwrap(), [0xc0]);
        let ty = obj(&[("a", Type::String), ("b", Type::Number)]);
        let v = Value::object([("a", Value::string("x"))]);
        assert_eq!(
            encode_msgpack(&v, &ty).unwrap(),
            [0x82, 0xa1, b'a', 0xa1, b'x', 0xa1, b'b', 0xc0]
        );
        assert_eq!(encode_json(&v, &ty).unwrap(), br#"{"a":"x","b":null}"#);
    }

    #[test]
    fn any_extension_decodes_as_unknown() {
        for bytes in [
            ext(0, vec![0]),
            ext(5, vec![1, 2, 3]),
            ext(12, vec![]),
            ext(12, vec![0]),
        ] {
            assert_eq!(
                decode_msgpack(&bytes, &Type::String).unwrap(),
                Value::unknown()
            );
        }
        assert_eq!(
            decode_msgpack(&ext(12, vec![0x81, 0x01, 0xc2]), &Type::Dynamic).unwrap(),
            Value::unknown()
        );
    }

    #[test]
    fn refined_unknown_decodes() {
        let payload = mp_bytes(Mp::Map(vec![
            (1.into(), false.into()),
            (2.into(), "arn:".into()),
        ]));
        let v = decode_msgpack(&ext(12, payload), &Type::String).unwrap();
        let Value::Unknown(r) = v else {
            panic!("not unknown: {v:?}")
        };
        assert_eq!(r.not_null, Some(true));
        assert_eq!(r.string_prefix.as_deref(), Some("arn:"));
    }

    #[test]
    fn malformed_refinements_give_plain_unknown() {
        for payload in [
            vec![0xc1, 0xff],
            vec![0x93, 1, 2, 3],
            vec![0x81, 0x01, 0xa1, b'x'],
            vec![0x82, 0x01],
        ] {
            assert_eq!(
                decode_msgpack(&ext(12, payload), &Type::String).unwrap(),
                Value::unknown()
            );
        }
    }

    #[test]
    fn unknown_refinement_key_is_ignored() {
        let payload = mp_bytes(Mp::Map(vec![
            (99.into(), "future".into()),
            (5.into(), 2.into()),
        ]));
        let v = decode_msgpack(&ext(12, payload), &Type::list(Type::String)).unwrap();
        assert_eq!(
            v,
            Value::Unknown(Refinements {
                length_min: Some(2),
                ..Default::default()
            })
        );
    }

    #[test]
    fn refined_unknown_round_trips() {
        let r = Refinements {
            not_null: Some(true),
            number_lower: Some((Number::from_i64(0), true)),
            number_upper: Some((Number::from_f64(10.5), false)),
            ..Default::default()
        };
        let bytes = encode_msgpack(&Value::Unknown(r.clone()), &Type::Number).unwrap();
        assert_eq!(bytes[..3], [0xc7, bytes.len() as u8 - 3, 12]);
        assert_eq!(
            decode_msgpack(&bytes, &Type::Number).unwrap(),
            Value::Unknown(r)
        );
        let r = Refinements {
            string_prefix: Some("i-".into()),
            length_max: Some(4),
            not_null: Some(false),
            ..Default::default()
        };
        round_trip(&Value::Unknown(r), &Type::String);
    }

    #[test]
    fn numbers_decode_from_every_form() {
        let dec = |mp: Mp| decode_msgpack(&mp_bytes(mp), &Type::Number).unwrap();
        assert_eq!(dec(7.into()).as_i64(), Some(7));
        assert_eq!(dec((-7).into()).as_i64(), Some(-7));
        assert_eq!(
            dec(u64::MAX.into()).as_number().unwrap().to_string(),
            u64::MAX.to_string()
        );
        assert_eq!(dec(Mp::F64(1.5)), Value::from(1.5));
        assert_eq!(dec(Mp::F32(1.5)), Value::from(1.5));
        assert_eq!(dec(Mp::F64(3.0)).as_i64(), Some(3));
        assert_eq!(
            dec(Mp::F64(f64::INFINITY)).as_number().unwrap().as_f64(),
            f64::INFINITY
        );
        assert_eq!(
            dec(Mp::F64(f64::NEG_INFINITY)),
            Value::from(f64::NEG_INFINITY)
        );
        assert_eq!(dec("-2.5".into()), Value::from(-2.5));
        assert_eq!(dec("1e3".into()), n(1000));
        assert!(decode_msgpack(&mp_bytes("abc".into()), &Type::Number).is_err());
    }

    #[test]
    fn big_decimal_kept_exactly() {
        let big = "12345678901234567890123";
        let v = decode_msgpack(&mp_bytes(big.into()), &Type::Number).unwrap();
        assert_eq!(v.as_number().unwrap().to_string(), big);
        assert_eq!(v.as_i64(), None);
        assert_eq!(
            encode_msgpack(&v, &Type::Number).unwrap(),
            mp_bytes(big.into())
        );
        assert_eq!(encode_json(&v, &Type::Number).unwrap(), big.as_bytes());
        // Not exactly representable as f64, so it stays a string; 0.5 is exact.
        assert_eq!(
            encode_msgpack(&Value::from(Number::parse("0.1").unwrap()), &Type::Number).unwrap(),
            mp_bytes("0.1".into())
        );
        assert_eq!(
            encode_msgpack(&Value::from(Number::parse("0.5").unwrap()), &Type::Number).unwrap(),
            mp_bytes(Mp::F64(0.5))
        );
    }

    #[test]
    fn numbers_encode_compactly_and_compare_by_value() {
        assert_eq!(encode_msgpack(&n(1), &Type::Number).unwrap(), [0x01]);
        assert_eq!(encode_msgpack(&n(-1), &Type::Number).unwrap(), [0xff]);
        assert_eq!(
            encode_msgpack(&Value::from(2.0), &Type::Number).unwrap(),
            [0x02]
        );
        assert_eq!(
            encode_msgpack(&Value::from(1.5), &Type::Number).unwrap(),
            mp_bytes(Mp::F64(1.5))
        );
        assert_eq!(
            encode_msgpack(&Value::from(f64::INFINITY), &Type::Number).unwrap(),
            mp_bytes(Mp::F64(f64::INFINITY))
        );
        assert!(encode_json(&Value::from(f64::INFINITY), &Type::Number).is_err());
        assert_eq!(Number::from_i64(1), Number::from_f64(1.0));
        assert_eq!(
            Number::parse("100").unwrap(),
            Number::parse("1.00e2").unwrap()
        );
        assert_eq!(Number::parse("0.05").unwrap(), Number::from_f64(0.05));
        assert_ne!(Number::from_i64(1), Number::from_f64(1.5));
        assert_ne!(Number::from_f64(f64::NAN), Number::from_f64(f64::NAN));
        assert_eq!(Number::parse("-0").unwrap(), Number::from_i64(0));
        assert!(
            Number::parse("1.2.3").is_none()
                && Number::parse("").is_none()
                && Number::parse("inf").is_none()
        );
        assert_eq!(
            encode_json(&Value::from(Number::parse(".5").unwrap()), &Type::Number).unwrap(),
            b"0.5e0"
        );
    }

    #[test]
    fn dynamic_values() {
        let inner = mp_bytes("hi".into());
        for type_field in [Mp::Binary(b"\"string\"".to_vec()), Mp::from("\"string\"")] {
            let mut bytes = mp_bytes(Mp::Array(vec![type_field, Mp::Nil]));
            bytes.truncate(bytes.len() - 1);
            bytes.extend_from_slice(&inner);
            let v = decode_msgpack(&bytes, &Type::Dynamic).unwrap();
            assert_eq!(
                v,
                Value::Dynamic(Type::String, Box::new(Value::string("hi")))
            );
            assert_eq!(v.as_str(), Some("hi"));
        }
        let v = Value::Dynamic(Type::String, Box::new(Value::string("hi")));
        let mut expected = vec![0x92, 0xc4, 8];
        expected.extend_from_slice(b"\"string\"");
        expected.extend_from_slice(&inner);
        assert_eq!(encode_msgpack(&v, &Type::Dynamic).unwrap(), expected);
        assert_eq!(
            decode_msgpack(&[0xc0], &Type::Dynamic).unwrap(),
            Value::Null
        );
        assert_eq!(
            decode_msgpack(&[0xd4, 0, 0], &Type::Dynamic).unwrap(),
            Value::unknown()
        );
        round_trip(
            &Value::Dynamic(Type::Number, Box::new(Value::unknown())),
            &Type::Dynamic,
        );
        round_trip(
            &Value::Dynamic(Type::String, Box::new(Value::Null)),
            &Type::Dynamic,
        );
        let err = encode_msgpack(&Value::string("bare"), &Type::Dynamic).unwrap_err();
        assert!(err.message.contains("Value::Dynamic"), "{err}");
        assert!(decode_msgpack(
            &mp_bytes(Mp::Array(vec![Mp::Binary(b"\"nope\"".to_vec()), Mp::Nil])),
            &Type::Dynamic
        )
        .is_err());
        // A Dynamic wrapper at a matching concrete position is transparent.
        assert_eq!(encode_msgpack(&v, &Type::String).unwrap(), inner);
    }

    #[test]
    fn object_attribute_count_enforced() {
        let ty = obj(&[("a", Type::String), ("b", Type::String)]);
        let missing = mp_bytes(Mp::Map(vec![("a".into(), "x".into())]));
        let err = decode_msgpack(&missing, &ty).unwrap_err();
        assert_eq!(err.path, ".b");
        assert!(err.message.contains("\"b\""), "{err}");
        let extra = mp_bytes(Mp::Map(vec![
            ("a".into(), Mp::Nil),
            ("b".into(), Mp::Nil),
            ("c".into(), Mp::Nil),
        ]));
        let err = decode_msgpack(&extra, &ty).unwrap_err();
        assert!(err.message.contains("unsupported attribute \"c\""), "{err}");
        let err = encode_msgpack(&Value::object([("zzz", Value::Null)]), &ty).unwrap_err();
        assert_eq!(err.path, ".zzz");
    }

    #[test]
    fn type_mismatch_reports_path() {
        let ty = obj(&[("aws", obj(&[("endpoints", Type::list(Type::String))]))]);
        let bad = mp_bytes(Mp::Map(vec![(
            "aws".into(),
            Mp::Map(vec![(
                "endpoints".into(),
                Mp::Array(vec![Mp::Boolean(true)]),
            )]),
        )]));
        let err = decode_msgpack(&bad, &ty).unwrap_err();
        assert_eq!(err.path, ".aws.endpoints[0]");
        assert_eq!(
            err.to_string(),
            ".aws.endpoints[0]: expected \"string\", found bool"
        );
        let v = Value::object([(
            "aws",
            Value::object([("endpoints", Value::List(vec![n(1)]))]),
        )]);
        assert_eq!(
            encode_msgpack(&v, &ty).unwrap_err().path,
            ".aws.endpoints[0]"
        );
        let m = Value::Map([("k".to_owned(), n(1))].into());
        assert_eq!(
            encode_msgpack(&m, &Type::map(Type::Bool)).unwrap_err().path,
            "[\"k\"]"
        );
        assert!(decode_msgpack(&[0x92, 1, 2], &Type::Tuple(vec![Type::Number])).is_err());
        assert!(decode_msgpack(&[0xc0, 0xc0], &Type::String).is_err());
        assert!(
            decode_json(br#"{"aws":{"endpoints":[{}]}}"#, &ty)
                .unwrap_err()
                .path
                == ".aws.endpoints[0]"
        );
    }

    #[test]
    fn type_json_round_trips() {
        let types = [
            Type::Bool,
            Type::Number,
            Type::String,
            Type::Dynamic,
            Type::list(Type::String),
            Type::set(Type::Number),
            Type::map(Type::Bool),
            Type::Tuple(vec![Type::String, Type::Dynamic]),
            Type::Tuple(vec![]),
            nested_type(),
        ];
        for ty in types {
            assert_eq!(Type::from_json_bytes(&ty.json_bytes()).unwrap(), ty);
        }
        assert_eq!(Type::String.json_bytes(), b"\"string\"");
        assert_eq!(
            Type::list(Type::String).json_bytes(),
            br#"["list","string"]"#
        );
        assert_eq!(
            obj(&[("a", Type::Number)]).json_bytes(),
            br#"["object",{"a":"number"}]"#
        );
        let with_optional = br#"["object",{"a":"string","b":"number"},["b"]]"#;
        assert_eq!(
            Type::from_json_bytes(with_optional).unwrap(),
            obj(&[("a", Type::String), ("b", Type::Number)])
        );
        for bad in [
            &br#"["object",{"a":"string"},["zz"]]"#[..],
            br#""float""#,
            br#"["list"]"#,
            br#"["tuple","string"]"#,
            b"3",
        ] {
            assert!(
                Type::from_json_bytes(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn json_decode_is_lenient_on_missing_attributes() {
        let ty = obj(&[
            ("a", Type::String),
            ("b", Type::list(Type::Number)),
            ("c", Type::Bool),
        ]);
        let v = decode_json(br#"{"a":"x","c":"true"}"#, &ty).unwrap();
        assert_eq!(
            v,
            Value::object([
                ("a", Value::string("x")),
                ("b", Value::Null),
                ("c", Value::Bool(true))
            ])
        );
        let err = decode_json(br#"{"a":"x","nope":1}"#, &ty).unwrap_err();
        assert_eq!(err.path, ".nope");
        assert_eq!(
            decode_json(br#"{"b":["1", 2.5]}"#, &ty)
                .unwrap()
                .get("b")
                .unwrap()
                .as_list()
                .unwrap()[1],
            Value::from(2.5)
        );
    }

    #[test]
    fn json_dynamic_form_and_unknowns() {
        let v = decode_json(
            br#"{"value":["a"],"type":["list","string"]}"#,
            &Type::Dynamic,
        )
        .unwrap();
        assert_eq!(
            v,
            Value::Dynamic(
                Type::list(Type::String),
                Box::new(Value::List(vec![Value::string("a")]))
            )
        );
        assert_eq!(
            encode_json(&v, &Type::Dynamic).unwrap(),
            br#"{"value":["a"],"type":["list","string"]}"#
        );
        assert_eq!(decode_json(b"null", &Type::Dynamic).unwrap(), Value::Null);
        assert!(decode_json(br#"{"value":1}"#, &Type::Dynamic).is_err());
        assert!(decode_json(br#"{"value":1,"type":"number","x":1}"#, &Type::Dynamic).is_err());
        let err = encode_json(
            &Value::object([("a", Value::unknown())]),
            &obj(&[("a", Type::String)]),
        )
        .unwrap_err();
        assert_eq!(err.path, ".a");
    }

    #[test]
    fn accessors() {
        let mut v = Value::object([
            ("s", Value::string("x")),
            ("b", Value::Bool(true)),
            ("n", n(5)),
        ]);
        assert_eq!(v.get("s").and_then(Value::as_str), Some("x"));
        assert_eq!(v.get("b").and_then(Value::as_bool), Some(true));
        assert_eq!(v.get("n").and_then(Value::as_i64), Some(5));
        assert!(v.get("missing").is_none() && Value::string("x").get("s").is_none());
        *v.get_mut("s").unwrap() = Value::Null;
        assert!(v.get("s").unwrap().is_null() && !Value::unknown().is_known());
        assert_eq!(Value::null_for(&Type::String), Value::Null);
        assert!(Value::Dynamic(Type::String, Box::new(Value::Null)).is_null());
    }
}
