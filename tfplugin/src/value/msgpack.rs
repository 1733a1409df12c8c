//! The MessagePack value encoding (`DynamicValue.msgpack`, as go-cty writes it): every object
//! attribute present, unknowns as extension values carrying their refinements.

use std::collections::BTreeMap;

use rmpv::Value as Mp;

use super::{
    canon_decimal, mismatch, tuple_len, unsupported_attr, value_kind, Number, Refinements, Repr,
    Type, Value, ValueError,
};

impl Number {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::tests::{n, obj, round_trip};
    use crate::value::{decode_json, encode_json};

    fn ext(code: i8, data: Vec<u8>) -> Vec<u8> {
        write_msgpack(&Mp::Ext(code, data)).unwrap()
    }

    fn mp_bytes(mp: Mp) -> Vec<u8> {
        write_msgpack(&mp).unwrap()
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
}
