//! The value model and what holds for both encodings: values round-trip through MessagePack
//! and JSON alike, and types through their type JSON. Helpers here serve the codecs' tests too.
use super::*;

pub(super) fn obj(attrs: &[(&str, Type)]) -> Type {
    Type::object(attrs.iter().cloned())
}

pub(super) fn n(i: i64) -> Value {
    Value::from(i)
}

/// Asserts msgpack (and, for wholly known values, JSON) round trips.
pub(super) fn round_trip(v: &Value, ty: &Type) {
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
