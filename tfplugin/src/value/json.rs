//! The JSON value encoding (`DynamicValue.json` and state as stored, `RawState.json`, as go-cty
//! reads and writes it). JSON cannot hold unknowns.

use serde_json::Value as Json;

use super::{
    mismatch, tuple_len, unsupported_attr, value_kind, Canon, Number, Repr, Type, Value, ValueError,
};

impl Number {
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
    use crate::value::tests::obj;

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
}
