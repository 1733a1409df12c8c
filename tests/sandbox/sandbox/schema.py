"""A small JSON Schema validator: only the keywords the plugin catalogue uses.

Supported: type (string or list), required, properties, additionalProperties (bool),
enum, pattern, format "uri", minLength, maxLength, default (applied by
`apply_defaults`), and the annotations title, description, writeOnly (ignored here).
Any other keyword is refused when the catalogue loads, so a schema never silently
means more than this validator checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SUPPORTED_KEYWORDS = {
    "type",
    "required",
    "properties",
    "additionalProperties",
    "enum",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "default",
    "title",
    "description",
    "writeOnly",
}
SUPPORTED_FORMATS = {"uri"}


@dataclass
class SchemaError:
    pointer: str  # JSON pointer of the offending (or missing) member
    field: str  # dotted name, e.g. "device_spec.role_arn"
    message: str

    @property
    def detail(self) -> str:
        return f"{self.field}: {self.message}"


def check_schema(schema: dict[str, Any], where: str = "#") -> None:
    """Raise ValueError if `schema` uses something this validator does not implement."""
    unknown = set(schema) - SUPPORTED_KEYWORDS
    if unknown:
        raise ValueError(f"{where}: unsupported JSON Schema keywords {sorted(unknown)}")
    fmt = schema.get("format")
    if fmt is not None and fmt not in SUPPORTED_FORMATS:
        raise ValueError(f"{where}: unsupported format {fmt!r}")
    if "pattern" in schema:
        re.compile(schema["pattern"])
    if not isinstance(schema.get("additionalProperties", False), bool):
        raise ValueError(f"{where}: additionalProperties must be a boolean here")
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, f"{where}/properties/{name}")


def _type_ok(value: Any, type_name: str) -> bool:
    if type_name == "object":
        return isinstance(value, dict)
    if type_name == "array":
        return isinstance(value, list)
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "null":
        return value is None
    raise ValueError(f"unknown JSON Schema type {type_name!r}")


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_uri(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc) and " " not in value


def validate(value: Any, schema: dict[str, Any], pointer: str, field: str) -> list[SchemaError]:
    """Every way `value` breaks `schema`; an empty list when it conforms."""
    errors: list[SchemaError] = []
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_type_ok(value, t) for t in names):
            expected = " or ".join(names)
            errors.append(
                SchemaError(pointer, field, f"must be {expected}, got {json_type_name(value)}")
            )
            return errors
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        errors.append(SchemaError(pointer, field, f"must be one of {allowed}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(
                SchemaError(pointer, field, f"must be at least {schema['minLength']} characters")
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(
                SchemaError(pointer, field, f"must be at most {schema['maxLength']} characters")
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(
                SchemaError(pointer, field, f"does not match pattern {schema['pattern']}")
            )
        if schema.get("format") == "uri" and not _is_uri(value):
            errors.append(SchemaError(pointer, field, "must be an absolute URI"))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(
                    SchemaError(f"{pointer}/{name}", f"{field}.{name}", "is required")
                )
        for name, member in value.items():
            if name in properties:
                errors.extend(
                    validate(member, properties[name], f"{pointer}/{name}", f"{field}.{name}")
                )
            elif schema.get("additionalProperties", True) is False:
                allowed = ", ".join(sorted(properties)) or "none"
                errors.append(
                    SchemaError(
                        f"{pointer}/{name}",
                        f"{field}.{name}",
                        f"is not a known field (allowed: {allowed})",
                    )
                )
    return errors


def apply_defaults(value: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `value` with the schema's top-level defaults filled in."""
    out = dict(value)
    for name, sub in schema.get("properties", {}).items():
        if name not in out and "default" in sub:
            out[name] = sub["default"]
    return out


def write_only_fields(schema: dict[str, Any]) -> set[str]:
    """Top-level properties marked writeOnly (secrets: never returned on reads)."""
    return {n for n, s in schema.get("properties", {}).items() if s.get("writeOnly")}
