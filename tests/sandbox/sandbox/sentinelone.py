"""SentinelOne Management API v2.1 emulator under /web/api/v2.1.

Shapes follow the public SDKs (s1buildpartners/sentinelone-go-sdk, ayol377/sentinelone-rs;
docs/guides/api-assumptions.md#sentinelone); the seed, the permission catalogue, the predefined
roles, the error codes and the rate-limit table are data in sentinelone_data.json, where each
fact carries its label ([V] verified, [D] documented, [G] guess).

Strict on purpose:
- `Authorization: ApiToken <token>` (scheme case-insensitive) on every route; a missing, unknown,
  revoked or expired token is 401 in the vendor envelope `{"errors": [{code, title, message, detail}]}`;
- every route needs a permission of the token owner's role(s): 403 names the missing one;
- bodies: JSON objects only; unknown fields, missing required fields and wrong types are 400 naming
  the field (`data.permissionIds[2]`); unknown query parameters are 400;
- lists answer `{"data": [...], "pagination": {"nextCursor", "totalItems"}}` with an opaque base64
  cursor (`limit` 1-1000, default 10 [G]; `skip` 0-1000; `countOnly`, `skipCount`, `sortBy`,
  `sortOrder`);
- token buckets per (path prefix, token) answer 429 with Retry-After.

Choices where the vendor's behaviour is unknown ([G]) are stated where they are made:
- creates answer 200 (the vendor's style), deletes `{"data": {"success": true}}`, bulk actions
  `{"data": {"affected": N}}`;
- role names are unique per scope, case-insensitively, predefined names included (409);
- a role held by users cannot be deleted without `data.targetId` (400);
- console user emails are unique (409) and cannot be changed by PUT (400); creating a console user
  without a password sends the invitation (`invitationSent: true`, `emailVerified: false`);
- service user names are unique per scope (409); the name cannot be changed by PUT (400);
- a token is revoked with `POST /users/revoke-api-token {"data": {"id": <user or service user
  id>, "currentPassword"?, "twoFaCode"?}}` (ayol377/sentinelone-rs `services/users.rs`
  `UserIdBody`, from the vendor's Swagger `users.schemas_UserIdSchema`; `{"data": {"userId"}}`,
  s1buildpartners/sentinelone-go-sdk `users.go` `UserIDRequest`, is 400 there). PUT
  /_admin/sentinelone/revoke-body {"idField": "userId"} makes the console take the go-sdk's
  shape instead and refuse `id` [G: which shape a given console takes is not public];
- a service user's `name` is nullable (ayol377 `models/service_users.rs`, `x-nullable` [V]);
  POST /_admin/sentinelone/nameless-service-user adds one (how a console comes to hold one is
  not public [G]); lists and filters carry it with `"name": null`;
- the sandbox tenant starts as one account with one site; more accounts (each with a default
  site) are added with POST /_admin/sentinelone/accounts. The admin token's user is an Admin of
  every account (one scopeRoles entry per account), so tenant-scoped objects are refused (403);
- a console user or service user holds one `scope` and a role per scope id in `scopeRoles`
  (go-sdk `types/users.go`, ayol377 `models/service_users.rs`); names of service users are
  unique per scope id [G];
- account roles are usable in the account's sites [G].
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import itertools
import json
import math
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from flask import Blueprint, Request, Response, g, jsonify, request

from .config import Option, SandboxConfig
from .emulator import Emulator, HealthCheck

DATA_FILE = Path(__file__).with_name("sentinelone_data.json")
API_PREFIX = "/web/api/v2.1"
# The seeded admin user's API token (Admin role on the seeded account;
# `Authorization: ApiToken <token>`).
ADMIN_TOKEN = Option("--s1-admin-token", "sandbox-s1-admin-token",
                     "SentinelOne emulator: the seeded admin API token")
DEFAULT_LIMIT = 10  # [G]
MAX_LIMIT = 1000
MAX_SKIP = 1000
INCIDENT_STATUSES = ("unresolved", "in_progress", "resolved")
ANALYST_VERDICTS = ("true_positive", "false_positive", "suspicious", "undefined")
SCOPES = ("tenant", "account", "site")
EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 date-time with a time zone, or None."""
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


class S1Error(Exception):
    """Raised by handlers; rendered in the vendor's error envelope."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


# ---- body validation ----------------------------------------------------------------------


@dataclass
class F:
    """The expected shape of one JSON value."""

    kind: str  # string | datetime | boolean | boolish | integer | array | object | any_object
    required: bool = False
    nullable: bool = False
    min_len: int | None = None
    max_len: int | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    items: "F | None" = None
    fields: dict[str, "F"] | None = None
    min_items: int | None = None
    max_items: int | None = None
    hint: dict[str, str] = field(default_factory=dict)  # field -> why it is refused


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def validate(value: Any, spec: F, path: str) -> None:
    def bad(expected: str) -> S1Error:
        return S1Error(400, f"{path}: expected {expected}, got {_describe(value)}")

    if value is None:
        if spec.nullable:
            return
        raise S1Error(400, f"{path}: must not be null")
    kind = spec.kind
    if kind in ("string", "datetime"):
        if not isinstance(value, str):
            raise bad("a string" if kind == "string" else "an ISO 8601 date-time string")
        if spec.min_len is not None and len(value) < spec.min_len:
            raise S1Error(400, f"{path}: must be at least {spec.min_len} characters long")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise S1Error(400, f"{path}: must be at most {spec.max_len} characters long")
        if spec.enum is not None and value not in spec.enum:
            raise S1Error(400, f"{path}: must be one of {', '.join(spec.enum)}; got {value!r}")
        if spec.pattern is not None and not re.search(spec.pattern, value):
            raise S1Error(400, f"{path}: {value!r} does not match {spec.pattern}")
        if kind == "datetime" and parse_datetime(value) is None:
            raise S1Error(400, f"{path}: {value!r} is not an ISO 8601 date-time with a time zone")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise bad("a boolean")
    elif kind == "boolish":  # the Splunk connector sends "tenant": "true" [V]
        if not isinstance(value, bool) and value not in ("true", "false"):
            raise bad("a boolean")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("an integer")
    elif kind == "array":
        if not isinstance(value, list):
            raise bad("an array")
        if spec.min_items is not None and len(value) < spec.min_items:
            raise S1Error(400, f"{path}: needs at least {spec.min_items} item(s)")
        if spec.max_items is not None and len(value) > spec.max_items:
            raise S1Error(400, f"{path}: takes at most {spec.max_items} items")
        if spec.items is not None:
            for i, item in enumerate(value):
                validate(item, spec.items, f"{path}[{i}]")
    elif kind == "object":
        if not isinstance(value, dict):
            raise bad("an object")
        fields = spec.fields or {}
        for key in value:
            if key not in fields:
                why = spec.hint.get(key)
                if why:
                    raise S1Error(400, f"{_join(path, key)}: {why}")
                allowed = ", ".join(fields) or "none"
                raise S1Error(400, f"{_join(path, key)}: unknown field (allowed: {allowed})")
        for key, sub in fields.items():
            if key not in value:
                if sub.required:
                    raise S1Error(400, f"{_join(path, key)}: required field is missing")
                continue
            validate(value[key], sub, _join(path, key))
    elif kind == "any_object":
        if not isinstance(value, dict):
            raise bad("an object")
    else:  # pragma: no cover - a bug in a spec
        raise AssertionError(f"unknown kind {kind}")


ID_LIST = F("array", items=F("string", min_len=1), min_items=1, max_items=5000)
SCOPE_ROLE = F("object", fields={
    "id": F("string", min_len=1),
    "roleId": F("string", min_len=1),
    "roleName": F("string", min_len=1),
}, hint={"roles": "deprecated; give roleId"})
SCOPE_FILTER = F("object", required=True, fields={
    "accountIds": F("array", items=F("string", min_len=1), min_items=1, max_items=500),
    "siteIds": F("array", items=F("string", min_len=1), min_items=1, max_items=500),
    "groupIds": F("array", items=F("string", min_len=1), min_items=1, max_items=500),
    "tenant": F("boolish"),
})
THREAT_FILTER = F("object", required=True, fields={
    "ids": ID_LIST,
    "accountIds": ID_LIST,
    "siteIds": ID_LIST,
    "tenant": F("boolish"),
})

ROLE_DATA = {
    "name": F("string", required=True, min_len=1, max_len=255),
    "description": F("string", required=True, nullable=True, max_len=255),
    "permissionIds": F("array", items=F("string", min_len=1)),
}
BODY_CREATE_ROLE = {"data": F("object", required=True, fields=ROLE_DATA), "filter": SCOPE_FILTER}
BODY_UPDATE_ROLE = {"data": F("object", required=True, fields=ROLE_DATA),
                    "filter": F("object", fields=SCOPE_FILTER.fields)}
BODY_DELETE_ROLE = {"data": F("object", required=True, fields={"targetId": F("string", min_len=1)})}

USER_DATA_CREATE = {
    "email": F("string", required=True, min_len=3, max_len=255, pattern=EMAIL_RE),
    "fullName": F("string", required=True, min_len=1, max_len=255),
    "scope": F("string", required=True, enum=SCOPES),
    "scopeRoles": F("array", items=SCOPE_ROLE),
    "tenantRoles": F("array", items=F("string", min_len=1)),
    "twoFaEnabled": F("boolean"),
    "password": F("string", min_len=10, max_len=255),
    "forceCredentialAuth": F("boolean"),
}
USER_DATA_UPDATE = {
    "email": F("string", min_len=3, max_len=255, pattern=EMAIL_RE),
    "fullName": F("string", min_len=1, max_len=255),
    "scope": F("string", enum=SCOPES),
    "scopeRoles": F("array", items=SCOPE_ROLE),
    "tenantRoles": F("array", items=F("string", min_len=1)),
    "twoFaEnabled": F("boolean"),
}
BODY_CREATE_USER = {"data": F("object", required=True, fields=USER_DATA_CREATE)}
BODY_UPDATE_USER = {"data": F("object", required=True, fields=USER_DATA_UPDATE)}
BODY_BULK_DELETE_USERS = {"filter": F("object", required=True, fields={"ids": ID_LIST}),
                          "data": F("any_object", nullable=True)}
# ayol377/sentinelone-rs services/users.rs UserIdBody / UserIdData [V]
BODY_TOKEN_BY_ID = {"data": F("object", required=True, fields={
    "id": F("string", required=True, min_len=1), "currentPassword": F("string"),
    "twoFaCode": F("string")})}
# s1buildpartners/sentinelone-go-sdk users.go UserIDRequest / UserIDData [V]
BODY_TOKEN_BY_USER_ID = {"data": F("object", required=True, fields={
    "userId": F("string", required=True, min_len=1)})}

SERVICE_USER_CREATE = {
    "name": F("string", required=True, min_len=1, max_len=255, pattern=r"^[^<>=]+$"),
    "description": F("string", nullable=True, max_len=255),
    "expirationDate": F("datetime", required=True),
    "scope": F("string", required=True, enum=SCOPES),
    "scopeRoles": F("array", items=SCOPE_ROLE),
    "forceLegacy": F("boolean"),
}
SERVICE_USER_UPDATE = {
    "description": F("string", nullable=True, max_len=255),
    "scope": F("string", nullable=True, enum=SCOPES),
    "scopeRoles": F("array", items=SCOPE_ROLE),
}
BODY_CREATE_SERVICE_USER = {"data": F("object", required=True, fields=SERVICE_USER_CREATE)}
BODY_UPDATE_SERVICE_USER = {"data": F("object", required=True, fields=SERVICE_USER_UPDATE, hint={
    "name": "cannot be changed; delete the service user and create a new one"})}
BODY_GENERATE_TOKEN = {"data": F("object", required=True, fields={
    "expirationDate": F("datetime", required=True)})}
BODY_BULK_DELETE_SERVICE_USERS = {
    "filter": F("object", required=True, fields={
        "ids": ID_LIST, "accountIds": ID_LIST, "siteIds": ID_LIST, "roleIds": ID_LIST,
        "query": F("string", min_len=1)}),
    "data": F("any_object", nullable=True),
}
BODY_INCIDENT = {"filter": THREAT_FILTER, "data": F("object", required=True, fields={
    "incidentStatus": F("string", required=True, enum=INCIDENT_STATUSES),
    "analystVerdict": F("string", enum=ANALYST_VERDICTS)})}
BODY_VERDICT = {"filter": THREAT_FILTER, "data": F("object", required=True, fields={
    "analystVerdict": F("string", required=True, enum=ANALYST_VERDICTS)})}
BODY_NOTES = {"filter": THREAT_FILTER, "data": F("object", required=True, fields={
    "text": F("string", required=True, min_len=1, max_len=4000)})}


def read_body(fields: dict[str, F]) -> dict[str, Any]:
    raw = request.get_data()
    if not raw.strip():
        raise S1Error(400, "the request needs a JSON object body")
    if request.mimetype and request.mimetype != "application/json":
        raise S1Error(415, f"send the body as application/json, not {request.mimetype}")
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise S1Error(400, f"the body is not valid JSON: {err}") from None
    validate(body, F("object", fields=fields), "")
    return body


# ---- query parameters and pagination ------------------------------------------------------

LIST_PARAMS = {"limit": "int", "cursor": "str", "skip": "int", "countOnly": "bool",
               "skipCount": "bool", "sortBy": "str", "sortOrder": "str"}


def parse_query(allowed: dict[str, str], sort_fields: tuple[str, ...] | None = None
                ) -> dict[str, Any]:
    """Parse request.args: kinds str | int | bool | csv. Unknown parameters are 400."""
    spec = dict(allowed)
    if sort_fields is not None:
        spec.update(LIST_PARAMS)
    out: dict[str, Any] = {}
    for name in request.args:
        kind = spec.get(name)
        if kind is None:
            raise S1Error(400, f"unknown query parameter {name!r} (supported here: "
                               f"{', '.join(sorted(spec)) or 'none'})")
        values = request.args.getlist(name)
        if len(values) > 1:
            raise S1Error(400, f"query parameter {name!r} given more than once; "
                               "join list values with commas")
        value = values[0]
        if kind == "str":
            out[name] = value
        elif kind == "csv":
            items = [v.strip() for v in value.split(",") if v.strip()]
            if not items:
                raise S1Error(400, f"query parameter {name!r} is empty")
            out[name] = items
        elif kind == "int":
            if not re.fullmatch(r"-?[0-9]+", value):
                raise S1Error(400, f"query parameter {name!r} must be an integer, got {value!r}")
            out[name] = int(value)
        elif kind == "bool":
            if value not in ("true", "false"):
                raise S1Error(400, f"query parameter {name!r} must be true or false, got {value!r}")
            out[name] = value == "true"
    if sort_fields is not None:
        if "sortBy" in out and out["sortBy"] not in sort_fields:
            raise S1Error(400, f"sortBy must be one of {', '.join(sort_fields)}")
        if out.get("sortOrder", "asc") not in ("asc", "desc"):
            raise S1Error(400, "sortOrder must be asc or desc")
        if not 1 <= out.get("limit", DEFAULT_LIMIT) <= MAX_LIMIT:
            raise S1Error(400, f"limit must be between 1 and {MAX_LIMIT}")
        if not 0 <= out.get("skip", 0) <= MAX_SKIP:
            raise S1Error(400, f"skip must be between 0 and {MAX_SKIP}; use cursor beyond that")
    return out


def encode_cursor(route: str, offset: int) -> str:
    return base64.b64encode(f"sandbox:{route}:{offset}".encode()).decode()


def decode_cursor(route: str, cursor: str) -> int:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S1Error(400, "cursor is not a cursor this API returned") from None
    tag, _, rest = text.partition(":")
    cursor_route, _, offset = rest.rpartition(":")
    if tag != "sandbox" or not offset.isdigit():
        raise S1Error(400, "cursor is not a cursor this API returned")
    if cursor_route != route:
        raise S1Error(400, "cursor belongs to another list")
    return int(offset)


def paginate(items: list[dict[str, Any]], q: dict[str, Any], route: str,
             getter: Callable[[dict[str, Any], str], Any] | None = None
             ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if "sortBy" in q:
        get = getter or (lambda item, key: item.get(key))
        present = [i for i in items if get(i, q["sortBy"]) is not None]
        missing = [i for i in items if get(i, q["sortBy"]) is None]
        present.sort(key=lambda i: get(i, q["sortBy"]), reverse=q.get("sortOrder") == "desc")
        items = present + missing
    elif q.get("sortOrder") == "desc":
        items = list(reversed(items))
    total = len(items)
    if q.get("countOnly"):
        return [], {"nextCursor": None, "totalItems": total}
    offset = decode_cursor(route, q["cursor"]) if "cursor" in q else q.get("skip", 0)
    limit = q.get("limit", DEFAULT_LIMIT)
    page = items[offset:offset + limit]
    next_cursor = encode_cursor(route, offset + limit) if offset + limit < total else None
    # [G] with skipCount the total is not computed; we answer 0.
    return page, {"nextCursor": next_cursor, "totalItems": 0 if q.get("skipCount") else total}


def answer(data: Any, status: int = 200, pagination: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"data": data}
    if pagination is not None:
        body["pagination"] = pagination
    return Response(json.dumps(body), status=status, mimetype="application/json")


# ---- rate limits --------------------------------------------------------------------------


@dataclass
class RateRule:
    prefix: str
    rate: float  # tokens per second
    burst: int

    def matches(self, path: str) -> bool:
        if self.prefix.endswith("/"):
            return path.startswith(self.prefix) and len(path) > len(self.prefix)
        return path == self.prefix or path.startswith(self.prefix + "/")


def parse_rate_rules(rules: Any) -> list[RateRule]:
    if not isinstance(rules, list):
        raise ValueError("rules must be a list of {prefix, rate, burst}")
    out = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) != {"prefix", "rate", "burst"}:
            raise ValueError(f"rules[{i}] must be exactly {{prefix, rate, burst}}")
        prefix, rate, burst = rule["prefix"], rule["rate"], rule["burst"]
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ValueError(f"rules[{i}].prefix must be a path under {API_PREFIX} starting "
                             "with /, e.g. /threats")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
            raise ValueError(f"rules[{i}].rate must be a number > 0 (requests per second)")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"rules[{i}].burst must be an integer >= 1")
        out.append(RateRule(prefix, float(rate), burst))
    return out


class RateLimiter:
    """Token buckets per (rule, API token)."""

    def __init__(self, rules: list[RateRule]) -> None:
        self.lock = threading.Lock()
        self.rules = rules
        self.buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)

    def configure(self, rules: list[RateRule]) -> None:
        with self.lock:
            self.rules = rules
            self.buckets.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"prefix": r.prefix, "rate": r.rate, "burst": r.burst} for r in self.rules]

    def take(self, path: str, key: str) -> int | None:
        """None when the call may go on, else the seconds to wait (Retry-After)."""
        with self.lock:
            matching = [r for r in self.rules if r.matches(path)]
            if not matching:
                return None
            rule = max(matching, key=lambda r: len(r.prefix))
            now = time.monotonic()
            tokens, at = self.buckets.get((rule.prefix, key), (float(rule.burst), now))
            tokens = min(float(rule.burst), tokens + (now - at) * rule.rate)
            if tokens >= 1.0:
                self.buckets[(rule.prefix, key)] = (tokens - 1.0, now)
                return None
            self.buckets[(rule.prefix, key)] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rule.rate))


# ---- the emulator -------------------------------------------------------------------------


@dataclass
class Principal:
    kind: str  # "user" | "serviceUser"
    id: str
    token: str


class SentinelOneEmulator(Emulator):
    name = "sentinelone"
    prefix = API_PREFIX
    options = (ADMIN_TOKEN,)

    def __init__(self, config: SandboxConfig, data_file: Path = DATA_FILE) -> None:
        self.config = config
        self.data = json.loads(data_file.read_text())
        self.error_codes = self.data["errors"]["codes"]
        tenant = self.data["tenant"]
        self.account = dict(tenant["account"])
        self.site = dict(tenant["site"], accountId=self.account["id"],
                         accountName=self.account["name"])
        self.account["numberOfSites"] = 1
        self.pages = self.data["permissions"]["pages"]
        self.permissions: dict[str, dict[str, Any]] = {}
        for page in self.pages:
            for perm in page["permissions"]:
                self.permissions[perm["identifier"]] = dict(perm, page=page["name"])
        for ident, perm in self.permissions.items():
            for dep in perm["dependsOn"]:
                if dep not in self.permissions:
                    raise ValueError(f"{data_file}: {ident} depends on unknown {dep}")
        self.status_sync_permissions = self.data["status_syncing_permissions"]["required"]
        self.default_rate_rules = parse_rate_rules(self.data["rate_limits"]["rules"])
        self.limiter = RateLimiter(list(self.default_rate_rules))
        # The member of revoke-api-token's data naming the owner: "id" or "userId".
        self.revoke_id_field = "id"
        self.lock = threading.RLock()
        self._ids = itertools.count(1491600000000000001)
        self._seed()
        self.blueprint = self._build_blueprint()

    # ---- seed / Emulator interface --------------------------------------------------------

    def _seed(self) -> None:
        created = "2023-06-01T00:00:00.000000Z"
        self.accounts: dict[str, dict[str, Any]] = {
            self.account["id"]: copy.deepcopy(self.account)}
        self.sites: dict[str, dict[str, Any]] = {self.site["id"]: copy.deepcopy(self.site)}
        self.roles: dict[str, dict[str, Any]] = {}
        for role in self.data["predefined_roles"]["roles"]:
            ids = role["permissionIds"]
            perms = list(self.permissions) if ids == "*" else list(ids)
            unknown = [p for p in perms if p not in self.permissions]
            if unknown:
                raise ValueError(f"predefined role {role['name']}: unknown permissions {unknown}")
            self.roles[role["id"]] = {
                "id": role["id"], "name": role["name"], "description": role["description"],
                "scope": "Tenant", "scopeId": None, "predefinedRole": True,
                "permissionIds": perms, "createdAt": created, "updatedAt": created,
                "creator": None, "creatorId": None, "updatedBy": None, "updatedById": None,
            }
        admin = self.data["tenant"]["admin_user"]
        admin_role = self._predefined(admin["role"])
        self.users: dict[str, dict[str, Any]] = {admin["id"]: {
            "id": admin["id"], "email": admin["email"], "fullName": admin["fullName"],
            "scope": "account", "scopeRoles": [{"id": self.account["id"], "roleId": admin_role}],
            "tenantRoles": [], "twoFaEnabled": False, "emailVerified": True,
            "invitationSent": False, "dateJoined": created, "firstLogin": created,
            "lastLogin": None, "source": "mgmt", "isSystem": False,
        }}
        self.service_users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.tokens[self.config.setting(ADMIN_TOKEN)] = {
            "value": self.config.setting(ADMIN_TOKEN), "ownerKind": "user", "ownerId": admin["id"],
            "createdAt": admin["tokenCreatedAt"], "expiresAt": admin["tokenExpiresAt"],
            "revokedAt": None,
        }
        self.threats: dict[str, dict[str, Any]] = {
            t["id"]: copy.deepcopy(t) for t in self.data["threats"]["items"]}
        self.notes: dict[str, list[dict[str, Any]]] = {}

    def _predefined(self, name: str) -> str:
        for role in self.roles.values():
            if role["predefinedRole"] and role["name"] == name:
                return role["id"]
        raise ValueError(f"no predefined role {name!r}")

    def check_request(self, req: Request) -> Response | None:
        header = req.headers.get("Authorization", "").strip()
        if not header:
            return self.error_response(
                401, "missing Authorization header; send 'Authorization: ApiToken <token>'")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "apitoken" or not token:
            return self.error_response(
                401, f"unsupported authorization scheme {scheme!r}; send 'ApiToken <token>'")
        with self.lock:
            principal, why = self._authenticate(token)
        if principal is None:
            return self.error_response(401, why)
        g.s1_principal = principal
        wait = self.limiter.take(req.path[len(self.prefix):], token)
        if wait is not None:
            return self.error_response(429, f"rate limit exceeded; retry in {wait} s",
                                       {"Retry-After": str(wait)})
        return None

    def error_response(self, status: int, detail: str,
                       headers: dict[str, str] | None = None) -> Response:
        code = self.error_codes.get(str(status), self.data["errors"]["default"])
        body = {"errors": [{"code": code["code"], "title": code["title"],
                            "message": code["title"], "detail": detail}]}
        return Response(json.dumps(body), status=status, mimetype="application/json",
                        headers=headers or {})

    def health_checks(self) -> dict[str, HealthCheck]:
        return {"sentinelone": check_device_health}

    def client_env(self, base_url: str) -> dict[str, str]:
        return {"SENTINELONE_CONSOLE_URL": base_url,
                "SENTINELONE_API_TOKEN": self.config.setting(ADMIN_TOKEN),
                "SENTINELONE_ACCOUNT_ID": self.account["id"]}

    def admin_blueprint(self) -> Blueprint:
        """/_admin/sentinelone:

  GET    /_admin/sentinelone/rate-limits  200 {"rules": [{"prefix", "rate", "burst"}]}
  POST   /_admin/sentinelone/rate-limits  body {"rules": [...]} (replace; [] = none) or
                                        {"defaults": true}; 200 as GET, or 400
  POST   /_admin/sentinelone/expire-token body {"serviceUserId": id} or {"userId": id}
                                        200 {"ownerKind", "ownerId", "expiresAt"}; 404; 400
  POST   /_admin/sentinelone/accounts body {"name"}: a new account with its default site, the
                                        admin user its Admin; 201 {"account", "site"}; 400
  PUT    /_admin/sentinelone/revoke-body  body {"idField": "id"|"userId"}: the member of
                                        revoke-api-token's data the console takes (the other
                                        is 400); default "id"; 200 as body; 400. Until reset.
  POST   /_admin/sentinelone/nameless-service-user  body {"accountId"?, "description"?}: a
                                        service user whose name is null (Viewer role); 201
                                        service user; 400
  PUT    /_admin/sentinelone/predefined-role  body {"name", "permissionIds"}: replaces the
                                        permissions of a predefined role; 200 role; 400
"""
        bp = Blueprint("sentinelone_admin", __name__)

        def answer(action: Callable[[Any], Any], status: int, not_found: bool):
            """`action(body)` as JSON with `status`; ValueError is 400, and with `not_found`
            LookupError is 404."""
            try:
                out = action(request.get_json(force=True, silent=True))
            except LookupError as err:
                if not not_found:
                    raise
                return jsonify(error=str(err)), 404
            except ValueError as err:
                return jsonify(error=str(err)), 400
            return jsonify(out), status

        @bp.route("/rate-limits", methods=["GET", "POST"])
        def rate_limits():
            if request.method == "POST":
                try:
                    self.set_rate_limits(request.get_json(force=True, silent=True))
                except ValueError as err:
                    return jsonify(error=str(err)), 400
            return jsonify(self.rate_limits())

        # rule, method, what it does with the body, status on success, LookupError is 404
        for rule, method, action, status, not_found in (
            ("/expire-token", "POST", self.expire_token, 200, True),
            ("/accounts", "POST", self.add_account, 201, False),
            ("/revoke-body", "PUT", self.set_revoke_body, 200, False),
            ("/nameless-service-user", "POST", self.add_nameless_service_user, 201, False),
            ("/predefined-role", "PUT", self.set_predefined_role, 200, False),
        ):
            bp.add_url_rule(rule, action.__name__, functools.partial(
                answer, action, status, not_found), methods=[method])

        return bp

    def reset(self) -> None:
        with self.lock:
            self._seed()
            self.revoke_id_field = "id"
        self.limiter.configure(list(self.default_rate_rules))

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accounts": [copy.deepcopy(a) for a in self.accounts.values()],
                "sites": [copy.deepcopy(s) for s in self.sites.values()],
                "roles": [copy.deepcopy(r) for r in self.roles.values()],
                "custom_roles": [copy.deepcopy(r) for r in self.roles.values()
                                 if not r["predefinedRole"]],
                "users": [copy.deepcopy(u) for u in self.users.values()],
                "service_users": [copy.deepcopy(s) for s in self.service_users.values()],
                "tokens": [dict(t, active=self._token_problem(t) is None)
                           for t in self.tokens.values()],
                "threats": [copy.deepcopy(t) for t in self.threats.values()],
                "notes": copy.deepcopy(self.notes),
                "rate_limits": self.limiter.describe(),
            }

    # ---- admin hooks ----------------------------------------------------------------------

    def rate_limits(self) -> dict[str, Any]:
        return {"rules": self.limiter.describe()}

    def set_rate_limits(self, body: Any) -> None:
        """{"rules": [...]} replaces the table ([] = no limits); {"defaults": true} restores it."""
        if not isinstance(body, dict) or not body or set(body) - {"rules", "defaults"} \
                or len(body) != 1:
            raise ValueError('body must be {"rules": [{"prefix", "rate", "burst"}, ...]} '
                             'or {"defaults": true}')
        if "defaults" in body:
            if body["defaults"] is not True:
                raise ValueError("defaults must be true")
            self.limiter.configure(list(self.default_rate_rules))
        else:
            self.limiter.configure(parse_rate_rules(body["rules"]))

    def set_revoke_body(self, body: Any) -> dict[str, Any]:
        """PUT /_admin/sentinelone/revoke-body {"idField": "id"|"userId"}: the shape
        revoke-api-token takes (the other is 400). ValueError on a bad body."""
        if not isinstance(body, dict) or set(body) != {"idField"} \
                or body["idField"] not in ("id", "userId"):
            raise ValueError('body must be {"idField": "id"} or {"idField": "userId"}')
        with self.lock:
            self.revoke_id_field = body["idField"]
        return {"idField": body["idField"]}

    def add_nameless_service_user(self, body: Any) -> dict[str, Any]:
        """POST /_admin/sentinelone/nameless-service-user {"accountId"?, "description"?}: a
        service user whose name is null, with the Viewer role in the account (the seeded one
        by default)."""
        if not isinstance(body, dict) or set(body) - {"accountId", "description"} \
                or not isinstance(body.get("description", ""), str):
            raise ValueError('body must be {"accountId"?: "<id>", "description"?: "<text>"}')
        with self.lock:
            account_id = body.get("accountId", self.account["id"])
            if account_id not in self.accounts:
                raise ValueError(f"no account {account_id!r}")
            now = iso(utcnow())
            su = {"id": str(next(self._ids)), "name": None,
                  "description": body.get("description"),
                  "scope": "account",
                  "scopeRoles": [{"id": account_id, "roleId": self._predefined("Viewer")}],
                  "createdAt": now, "updatedAt": now, "lastActivation": None,
                  "createdBy": None, "updatedBy": None}
            self.service_users[su["id"]] = su
            return self._service_user_out(su)

    def expire_token(self, body: Any) -> dict[str, Any]:
        """Make the live token of a service user (or console user) expired, out of band."""
        if not isinstance(body, dict) or len(body) != 1 or \
                not (set(body) <= {"serviceUserId", "userId"}) or \
                not isinstance(next(iter(body.values())), str):
            raise ValueError('body must be {"serviceUserId": "<id>"} or {"userId": "<id>"}')
        kind = "serviceUser" if "serviceUserId" in body else "user"
        owner = next(iter(body.values()))
        with self.lock:
            store = self.service_users if kind == "serviceUser" else self.users
            if owner not in store:
                raise LookupError(f"no {kind} {owner}")
            token = self._live_token(kind, owner)
            if token is None:
                raise LookupError(f"{kind} {owner} has no live API token")
            token["expiresAt"] = iso(utcnow() - timedelta(seconds=1))
            return {"ownerKind": kind, "ownerId": owner, "expiresAt": token["expiresAt"]}

    # ---- tokens, principals, permissions --------------------------------------------------

    def _token_problem(self, token: dict[str, Any]) -> str | None:
        if token["revokedAt"] is not None:
            return "API token was revoked"
        expires = parse_datetime(token["expiresAt"])
        if expires is not None and expires <= utcnow():
            return "API token expired"
        return None

    def _authenticate(self, value: str) -> tuple[Principal | None, str]:
        token = self.tokens.get(value)
        if token is None:
            return None, "invalid API token"
        problem = self._token_problem(token)
        if problem is not None:
            return None, problem
        store = self.users if token["ownerKind"] == "user" else self.service_users
        owner = store.get(token["ownerId"])
        if owner is None:
            return None, "the API token's user no longer exists"
        if token["ownerKind"] == "serviceUser":
            owner["lastActivation"] = iso(utcnow())
        return Principal(token["ownerKind"], token["ownerId"], value), ""

    def _live_token(self, kind: str, owner_id: str) -> dict[str, Any] | None:
        for token in self.tokens.values():
            if token["ownerKind"] == kind and token["ownerId"] == owner_id \
                    and token["revokedAt"] is None:
                return token
        return None

    def _revoke_tokens(self, kind: str, owner_id: str) -> int:
        n = 0
        for token in self.tokens.values():
            if token["ownerKind"] == kind and token["ownerId"] == owner_id \
                    and token["revokedAt"] is None:
                token["revokedAt"] = iso(utcnow())
                n += 1
        return n

    def _new_token(self, kind: str, owner_id: str, expires: datetime) -> dict[str, Any]:
        value = secrets.token_urlsafe(60)
        token = {"value": value, "ownerKind": kind, "ownerId": owner_id,
                 "createdAt": iso(utcnow()), "expiresAt": iso(expires), "revokedAt": None}
        self.tokens[value] = token
        return token

    def _permissions_of(self, principal: Principal) -> set[str]:
        store = self.users if principal.kind == "user" else self.service_users
        owner = store.get(principal.id) or {}
        perms: set[str] = set()
        for sr in owner.get("scopeRoles", []):
            role = self.roles.get(sr["roleId"])
            if role is not None:
                perms.update(role["permissionIds"])
        return perms

    def _perm_name(self, ident: str) -> str:
        perm = self.permissions.get(ident)
        return f"{perm['page']} / {perm['title']} ({ident})" if perm else ident

    def _require(self, *needed: str) -> Principal:
        principal: Principal = g.s1_principal
        with self.lock:
            held = self._permissions_of(principal)
        missing = [p for p in needed if p not in held]
        if missing:
            raise S1Error(403, "the API token's role lacks "
                               + ", ".join(self._perm_name(p) for p in missing))
        return principal

    def _actor(self, principal: Principal) -> tuple[str, str]:
        """(display name, id) of the caller, for creator/updatedBy fields."""
        if principal.kind == "user":
            user = self.users.get(principal.id, {})
            return user.get("email", ""), principal.id
        su = self.service_users.get(principal.id, {})
        return su.get("name", ""), principal.id

    # ---- in-process probes (Workbench health check) ---------------------------------------

    def probe_threats(self, token: str) -> tuple[int, str]:
        """What GET /threats would answer this token (status, detail), without HTTP."""
        with self.lock:
            principal, why = self._authenticate(token)
            if principal is None:
                return 401, why
            if "Threats.view" not in self._permissions_of(principal):
                return 403, "the API token's role lacks " + self._perm_name("Threats.view")
        return 200, "ok"

    def missing_status_sync_permissions(self, token: str) -> list[str]:
        """Status-syncing permissions the token's role lacks, as readable names."""
        with self.lock:
            principal, _ = self._authenticate(token)
            held = self._permissions_of(principal) if principal is not None else set()
            return [self._perm_name(p) for p in self.status_sync_permissions if p not in held]

    # ---- scopes ---------------------------------------------------------------------------

    def set_predefined_role(self, body: Any) -> dict[str, Any]:
        """Admin: replace the permissions of a predefined role (their sets are [G]; a tenant
        whose, say, IR Team lacks the status-syncing permissions is what this models). Body
        {"name": str, "permissionIds": [str]}; undone by /_admin/reset."""
        if not isinstance(body, dict) or set(body) != {"name", "permissionIds"} or \
                not isinstance(body["name"], str) or not isinstance(body["permissionIds"], list) \
                or not all(isinstance(p, str) for p in body["permissionIds"]):
            raise ValueError('body must be {"name": "<predefined role>", "permissionIds": [...]}')
        with self.lock:
            try:
                role = self.roles[self._predefined(body["name"])]
                role["permissionIds"] = self._check_permission_ids(body["permissionIds"])
            except S1Error as e:
                raise ValueError(e.detail) from None
            role["updatedAt"] = iso(utcnow())
            return self._role_out(role, with_pages=False)

    def add_account(self, body: Any) -> dict[str, Any]:
        """Admin: a new account of the tenant with its default site; the admin user becomes
        its Admin. Body {"name": str}."""
        if not isinstance(body, dict) or set(body) != {"name"} or \
                not isinstance(body["name"], str) or not body["name"].strip():
            raise ValueError('body must be {"name": "<account name>"}')
        with self.lock:
            name = body["name"].strip()
            if any(a["name"].lower() == name.lower() for a in self.accounts.values()):
                raise ValueError(f"an account named {name!r} exists")
            now = iso(utcnow())
            account = dict(copy.deepcopy(self.account), id=str(next(self._ids)), name=name,
                           createdAt=now, updatedAt=now)
            site = dict(copy.deepcopy(self.site), id=str(next(self._ids)),
                        name=f"{name} - Default site", accountId=account["id"],
                        accountName=name, createdAt=now, updatedAt=now)
            self.accounts[account["id"]] = account
            self.sites[site["id"]] = site
            admin = self.users[self.data["tenant"]["admin_user"]["id"]]
            admin["scopeRoles"].append({"id": account["id"],
                                        "roleId": self._predefined("Admin")})
            return {"account": copy.deepcopy(account), "site": copy.deepcopy(site)}

    def _account_of(self, scope: str, scope_id: str) -> str:
        """The account id of an account or site id (already validated)."""
        return self.sites[scope_id]["accountId"] if scope == "site" else scope_id

    def _scope_name(self, scope: str, scope_id: str) -> tuple[str, str]:
        """(scope name, account name) of an account or site id (already validated)."""
        account = self.accounts[self._account_of(scope, scope_id)]
        if scope == "site":
            return self.sites[scope_id]["name"], account["name"]
        return account["name"], account["name"]

    def _in_accounts(self, rec: dict[str, Any], account_ids: list[str]) -> bool:
        """A user or service user holds a role in one of the accounts (or their sites)."""
        return any(self._account_of(rec["scope"], sr["id"]) in account_ids
                   for sr in rec["scopeRoles"] if rec["scope"] in ("account", "site"))

    def _check_scope_id(self, scope: str, scope_id: str | None, path: str) -> None:
        if scope == "tenant":
            raise S1Error(403, f"{path}: this API token is scoped to accounts "
                               f"{', '.join(self.accounts)}; tenant-level objects are not "
                               "allowed")
        known = self.accounts if scope == "account" else self.sites
        if scope_id is None:
            raise S1Error(400, f"{path}.id: required for scope {scope}")
        if scope_id not in known:
            raise S1Error(400, f"{path}.id: no {scope} with id {scope_id}")

    def _role_usable(self, role: dict[str, Any], scope: str, scope_id: str) -> bool:
        if role["predefinedRole"]:
            return True
        if role["scope"] == "Account":  # account roles are inherited by the account's sites [G]
            return role["scopeId"] == self._account_of(scope, scope_id)
        return scope == "site" and role["scopeId"] == scope_id

    def _scope_roles(self, scope: str, scope_roles: list[dict[str, Any]] | None, path: str
                     ) -> list[dict[str, str]]:
        """Validate scopeRoles against the scope; returns [{id, roleId}]."""
        if scope == "tenant":
            self._check_scope_id("tenant", None, path)
        if not scope_roles:
            raise S1Error(400, f"{path}: at least one {{id, roleId}} is required for scope {scope}")
        out = []
        seen = set()
        for i, sr in enumerate(scope_roles):
            p = f"{path}[{i}]"
            self._check_scope_id(scope, sr.get("id"), p)
            if sr["id"] in seen:
                raise S1Error(400, f"{p}.id: {sr['id']} is listed twice")
            seen.add(sr["id"])
            if "roleId" in sr:
                role = self.roles.get(sr["roleId"])
                if role is None:
                    raise S1Error(400, f"{p}.roleId: no role with id {sr['roleId']}")
                if "roleName" in sr and sr["roleName"] != role["name"]:
                    raise S1Error(400, f"{p}: roleName does not match roleId")
            elif "roleName" in sr:  # deprecated, predefined roles only [V]
                matches = [r for r in self.roles.values()
                           if r["predefinedRole"] and r["name"] == sr["roleName"]]
                if not matches:
                    raise S1Error(400, f"{p}.roleName: no predefined role named "
                                       f"{sr['roleName']!r}; give roleId")
                role = matches[0]
            else:
                raise S1Error(400, f"{p}.roleId: required field is missing")
            if not self._role_usable(role, scope, sr["id"]):
                raise S1Error(400, f"{p}.roleId: role {role['id']} ({role['name']}) is not "
                                   f"available in {scope} {sr['id']}")
            out.append({"id": sr["id"], "roleId": role["id"]})
        return out

    def _scope_roles_out(self, scope: str, scope_roles: list[dict[str, str]]
                         ) -> list[dict[str, Any]]:
        out = []
        for sr in scope_roles:
            name, account_name = self._scope_name(scope, sr["id"])
            role = self.roles.get(sr["roleId"], {})
            out.append({"id": sr["id"], "name": name, "accountName": account_name,
                        "roleId": sr["roleId"], "roleName": role.get("name"),
                        "roles": [role.get("name")]})
        return out

    def _holders(self, role_id: str) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for kind, store in (("user", self.users), ("serviceUser", self.service_users)):
            for rec in store.values():
                if any(sr["roleId"] == role_id for sr in rec["scopeRoles"]):
                    out.append((kind, rec))
        return out

    # ---- roles ----------------------------------------------------------------------------

    def _role_scope_from_filter(self, flt: dict[str, Any]) -> tuple[str, str]:
        given = [k for k in ("accountIds", "siteIds", "groupIds", "tenant") if k in flt]
        if len(given) != 1:
            raise S1Error(400, "filter: give exactly one of accountIds, siteIds, groupIds, tenant")
        key = given[0]
        if key == "tenant":
            raise S1Error(403, "filter.tenant: this API token is scoped to accounts "
                               f"{', '.join(self.accounts)}; tenant roles are not allowed")
        if key == "groupIds":
            raise S1Error(400, f"filter.groupIds: no group with id {flt['groupIds'][0]}")
        ids = flt[key]
        if len(ids) != 1:
            raise S1Error(400, f"filter.{key}: the sandbox creates a role in one scope; give one id")
        if key == "accountIds":
            if ids[0] not in self.accounts:
                raise S1Error(400, f"filter.accountIds[0]: no account with id {ids[0]}")
            return "Account", ids[0]
        if ids[0] not in self.sites:
            raise S1Error(400, f"filter.siteIds[0]: no site with id {ids[0]}")
        return "Site", ids[0]

    def _check_permission_ids(self, ids: list[str]) -> list[str]:
        for i, pid in enumerate(ids):
            if pid not in self.permissions:
                raise S1Error(400, f"data.permissionIds[{i}]: unknown permission id {pid!r}")
        chosen = set(ids)
        for pid in self.permissions:  # catalogue order: deterministic messages
            if pid not in chosen:
                continue
            for dep in self.permissions[pid]["dependsOn"]:
                if dep not in chosen:
                    raise S1Error(400, f"data.permissionIds: {self._perm_name(pid)} depends on "
                                       f"{self._perm_name(dep)}, which is missing")
        return [p for p in self.permissions if p in chosen]

    def _check_role_name(self, name: str, scope: str, scope_id: str, except_id: str | None
                         ) -> None:
        for role in self.roles.values():
            if role["id"] == except_id or role["name"].lower() != name.lower():
                continue
            if role["predefinedRole"] or (role["scope"] == scope and role["scopeId"] == scope_id):
                raise S1Error(409, f"data.name: a role named {role['name']!r} already exists "
                                   f"in this scope (id {role['id']})")

    def _role_out(self, role: dict[str, Any], with_pages: bool = False) -> dict[str, Any]:
        out = {k: role[k] for k in ("id", "name", "description", "scope", "scopeId",
                                    "predefinedRole", "createdAt", "updatedAt", "creator",
                                    "creatorId", "updatedBy", "updatedById")}
        out["usersInRoles"] = len(self._holders(role["id"]))
        out["accountName"] = None
        out["siteName"] = None
        if role["scope"] in ("Account", "Site"):
            scope = role["scope"].lower()
            name, out["accountName"] = self._scope_name(scope, role["scopeId"])
            if scope == "site":
                out["siteName"] = name
        if with_pages:
            out["pages"] = self._pages(set(role["permissionIds"]))
        return out

    def _pages(self, granted: set[str]) -> list[dict[str, Any]]:
        pages = []
        for page in self.pages:
            pages.append({"name": page["name"], "identifier": page["identifier"], "permissions": [
                {"identifier": p["identifier"], "title": p["title"],
                 "value": p["identifier"] in granted, "description": p["description"],
                 "additionalDescription": None, "type": "checkbox",
                 "dependsOn": list(p["dependsOn"]), "groupName": p["groupName"],
                 "disabledReason": None, "disabledReasonCode": None}
                for p in page["permissions"]]})
        return pages

    def _role_visible(self, role: dict[str, Any], q: dict[str, Any]) -> bool:
        if role["predefinedRole"]:
            return True
        accounts, sites = q.get("accountIds"), q.get("siteIds")
        if accounts is None and sites is None:
            return True
        if role["scope"] == "Account":
            if accounts is not None and role["scopeId"] in accounts:
                return True
            # a site filter shows the parent account's roles only with includeParents
            return bool(sites and q.get("includeParents") and any(
                self.sites[s]["accountId"] == role["scopeId"] for s in sites if s in self.sites))
        if sites is not None and role["scopeId"] in sites:
            return True
        return bool(accounts and q.get("includeChildren")
                    and self.sites[role["scopeId"]]["accountId"] in accounts)

    def _find_role(self, role_id: str) -> dict[str, Any]:
        role = self.roles.get(role_id)
        if role is None:
            raise S1Error(404, f"no role with id {role_id}")
        return role

    # ---- users / service users ------------------------------------------------------------

    def _user_out(self, user: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy({k: v for k, v in user.items() if k != "scopeRoles"})
        out["scopeRoles"] = self._scope_roles_out(user["scope"], user["scopeRoles"])
        out["emailReadOnly"] = False
        out["twoFaConfigured"] = False
        token = self._live_token("user", user["id"])
        out["apiToken"] = ({"createdAt": token["createdAt"], "expiresAt": token["expiresAt"]}
                           if token else None)
        out["canGenerateApiToken"] = True
        return out

    def _service_user_out(self, su: dict[str, Any], token_value: str | None = None,
                          with_account: bool = False) -> dict[str, Any]:
        out = copy.deepcopy({k: v for k, v in su.items() if k != "scopeRoles"})
        out["scopeRoles"] = self._scope_roles_out(su["scope"], su["scopeRoles"])
        token = self._live_token("serviceUser", su["id"])
        api_token: dict[str, Any] | None = None
        if token is not None:
            api_token = {"createdAt": token["createdAt"], "expiresAt": token["expiresAt"]}
            if token_value is not None:  # only the create answer carries the secret [V]
                api_token["value"] = token_value
        out["apiToken"] = api_token
        if with_account:  # only the single GET carries the account [V]
            account = self.accounts[self._account_of(su["scope"], su["scopeRoles"][0]["id"])] \
                if su["scope"] in ("account", "site") and su["scopeRoles"] else self.account
            out["account"] = {"id": account["id"], "name": account["name"]}
        return out

    def _find(self, store: dict[str, dict[str, Any]], what: str, ident: str) -> dict[str, Any]:
        rec = store.get(ident)
        if rec is None:
            raise S1Error(404, f"no {what} with id {ident}")
        return rec

    def _check_future(self, text: str, path: str) -> datetime:
        when = parse_datetime(text)
        assert when is not None  # validated as datetime already
        if when <= utcnow():
            raise S1Error(400, f"{path}: {text} is not in the future")
        return when

    # ---- threats --------------------------------------------------------------------------

    def _threat_out(self, threat: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(threat)
        out["agentRealtimeInfo"].update(
            accountId=self.account["id"], accountName=self.account["name"],
            siteId=self.site["id"], siteName=self.site["name"])
        return out

    def _matching_threats(self, flt: dict[str, Any]) -> list[dict[str, Any]]:
        if not flt:
            raise S1Error(400, "filter: give at least one of ids, accountIds, siteIds, tenant")
        items = list(self.threats.values())
        if "ids" in flt:
            items = [t for t in items if t["id"] in flt["ids"]]
        if "accountIds" in flt and self.account["id"] not in flt["accountIds"]:
            items = []
        if "siteIds" in flt and self.site["id"] not in flt["siteIds"]:
            items = []
        return items

    # ---- routes ---------------------------------------------------------------------------

    def _build_blueprint(self) -> Blueprint:  # noqa: C901 - one closure per route
        bp = Blueprint("sentinelone", __name__)

        @bp.errorhandler(S1Error)
        def s1_error(err: S1Error):
            return self.error_response(err.status, err.detail, err.headers)

        # -- accounts and sites

        @bp.get("/accounts")
        def list_accounts():
            self._require("Accounts.view")
            q = parse_query({"ids": "csv", "accountIds": "csv", "name": "str", "query": "str",
                             "states": "csv"}, ("id", "name", "createdAt", "updatedAt"))
            items = [copy.deepcopy(a) for a in self.accounts.values()]
            for key in ("ids", "accountIds"):
                if key in q:
                    items = [a for a in items if a["id"] in q[key]]
            if "name" in q:
                items = [a for a in items if a["name"] == q["name"]]
            if "query" in q:
                items = [a for a in items if q["query"].lower() in a["name"].lower()]
            if "states" in q:
                items = [a for a in items if a["state"] in q["states"]]
            page, pagination = paginate(items, q, "accounts")
            return answer(page, pagination=pagination)

        @bp.get("/accounts/<account_id>")
        def get_account(account_id: str):
            self._require("Accounts.view")
            parse_query({})
            if account_id not in self.accounts:
                raise S1Error(404, f"no account with id {account_id}")
            return answer(copy.deepcopy(self.accounts[account_id]))

        @bp.get("/sites")
        def list_sites():
            self._require("Sites.view")
            q = parse_query({"ids": "csv", "siteIds": "csv", "accountIds": "csv", "name": "str",
                             "query": "str", "state": "str", "isDefault": "bool"},
                            ("id", "name", "accountName", "createdAt", "updatedAt"))
            items = [copy.deepcopy(s) for s in self.sites.values()]
            for key in ("ids", "siteIds"):
                if key in q:
                    items = [s for s in items if s["id"] in q[key]]
            if "accountIds" in q:
                items = [s for s in items if s["accountId"] in q["accountIds"]]
            if "name" in q:
                items = [s for s in items if s["name"] == q["name"]]
            if "query" in q:
                items = [s for s in items if q["query"].lower() in s["name"].lower()]
            if "state" in q:
                items = [s for s in items if s["state"] == q["state"]]
            if "isDefault" in q:
                items = [s for s in items if s["isDefault"] == q["isDefault"]]
            page, pagination = paginate(items, q, "sites")
            # [V] go-sdk types/sites.go: the list's data is {allSites, sites}
            data = {"allSites": {"activeLicenses": self.site["activeLicenses"],
                                 "totalLicenses": self.site["totalLicenses"]},
                    "sites": page}
            return answer(data, pagination=pagination)

        # -- RBAC roles

        scope_params = {"accountIds": "csv", "siteIds": "csv", "groupIds": "csv",
                        "tenant": "bool"}

        @bp.get("/rbac/roles")
        def list_roles():
            self._require("Roles.view")
            q = parse_query(dict(scope_params, name="str", query="str", ids="csv",
                                 predefinedRole="bool", includeParents="bool",
                                 includeChildren="bool", creator="str", description="str",
                                 accountName="str", siteName="str"),
                            ("id", "description", "usersInRoles", "creator", "siteName",
                             "createdAt", "updatedAt", "updatedBy"))
            with self.lock:
                items = [r for r in self.roles.values() if self._role_visible(r, q)]
                if "groupIds" in q:
                    items = [r for r in items if r["predefinedRole"]]
                if "ids" in q:
                    items = [r for r in items if r["id"] in q["ids"]]
                if "name" in q:
                    items = [r for r in items if r["name"] == q["name"]]
                if "query" in q:
                    needle = q["query"].lower()
                    items = [r for r in items if needle in r["name"].lower()
                             or needle in (r["description"] or "").lower()]
                if "predefinedRole" in q:
                    items = [r for r in items if r["predefinedRole"] == q["predefinedRole"]]
                for key in ("creator", "description"):
                    if key in q:
                        items = [r for r in items if r[key] == q[key]]
                out = [self._role_out(r) for r in items]
            for key in ("accountName", "siteName"):
                if key in q:
                    out = [r for r in out if r[key] == q[key]]
            page, pagination = paginate(out, q, "rbac/roles")
            return answer(page, pagination=pagination)

        @bp.get("/rbac/role")
        def role_template():
            self._require("Roles.view")
            parse_query(scope_params)
            return answer({"description": "", "pages": self._pages(set())})

        @bp.get("/rbac/role/<role_id>")
        def get_role(role_id: str):
            self._require("Roles.view")
            parse_query(dict(scope_params, name="str", query="str"))
            with self.lock:
                return answer(self._role_out(self._find_role(role_id), with_pages=True))

        @bp.post("/rbac/role")
        def create_role():
            principal = self._require("Roles.create")
            body = read_body(BODY_CREATE_ROLE)
            data = body["data"]
            with self.lock:
                scope, scope_id = self._role_scope_from_filter(body["filter"])
                perms = self._check_permission_ids(data.get("permissionIds", []))
                self._check_role_name(data["name"], scope, scope_id, None)
                actor, actor_id = self._actor(principal)
                now = iso(utcnow())
                role = {"id": str(next(self._ids)), "name": data["name"],
                        "description": data["description"], "scope": scope, "scopeId": scope_id,
                        "predefinedRole": False, "permissionIds": perms, "createdAt": now,
                        "updatedAt": now, "creator": actor, "creatorId": actor_id,
                        "updatedBy": actor, "updatedById": actor_id}
                self.roles[role["id"]] = role
                return answer(self._role_out(role, with_pages=True))

        @bp.put("/rbac/role/<role_id>")
        def update_role(role_id: str):
            principal = self._require("Roles.edit")
            body = read_body(BODY_UPDATE_ROLE)
            data = body["data"]
            with self.lock:
                role = self._find_role(role_id)
                if role["predefinedRole"]:
                    raise S1Error(403, f"role {role_id} ({role['name']}) is predefined and "
                                       "cannot be edited; duplicate it instead")
                if "filter" in body:
                    scope, scope_id = self._role_scope_from_filter(body["filter"])
                    if (scope, scope_id) != (role["scope"], role["scopeId"]):
                        raise S1Error(400, "filter: a role cannot move to another scope")
                perms = (self._check_permission_ids(data["permissionIds"])
                         if "permissionIds" in data else role["permissionIds"])
                self._check_role_name(data["name"], role["scope"], role["scopeId"], role_id)
                actor, actor_id = self._actor(principal)
                role.update(name=data["name"], description=data["description"],
                            permissionIds=perms, updatedAt=iso(utcnow()), updatedBy=actor,
                            updatedById=actor_id)
                return answer(self._role_out(role, with_pages=True))

        @bp.delete("/rbac/role/<role_id>")
        def delete_role(role_id: str):
            self._require("Roles.delete")
            body = read_body(BODY_DELETE_ROLE)
            with self.lock:
                role = self._find_role(role_id)
                if role["predefinedRole"]:
                    raise S1Error(403, f"role {role_id} ({role['name']}) is predefined and "
                                       "cannot be deleted")
                holders = self._holders(role_id)
                target_id = body["data"].get("targetId")
                if holders:
                    if target_id is None:
                        raise S1Error(400, f"role {role_id} is held by {len(holders)} user(s); "
                                           "give data.targetId, the role they move to")
                    target = self.roles.get(target_id)
                    if target is None or target_id == role_id:
                        raise S1Error(400, f"data.targetId: no other role with id {target_id}")
                    for _, rec in holders:
                        for sr in rec["scopeRoles"]:
                            if sr["roleId"] == role_id:
                                if not self._role_usable(target, rec["scope"], sr["id"]):
                                    raise S1Error(400, f"data.targetId: role {target_id} is not "
                                                       f"available in {rec['scope']} {sr['id']}")
                    for _, rec in holders:
                        for sr in rec["scopeRoles"]:
                            if sr["roleId"] == role_id:
                                sr["roleId"] = target_id
                del self.roles[role_id]
            return answer({"success": True})

        # -- console users

        @bp.get("/users")
        def list_users():
            self._require("Users.view")
            q = parse_query({"ids": "csv", "email": "str", "emails": "csv", "fullName": "str",
                             "query": "str", "accountIds": "csv", "siteIds": "csv",
                             "roleIds": "csv"},
                            ("id", "email", "fullName", "dateJoined", "firstLogin", "lastLogin"))
            with self.lock:
                items = list(self.users.values())
                if "ids" in q:
                    items = [u for u in items if u["id"] in q["ids"]]
                if "email" in q:
                    items = [u for u in items if u["email"].lower() == q["email"].lower()]
                if "emails" in q:
                    wanted = {e.lower() for e in q["emails"]}
                    items = [u for u in items if u["email"].lower() in wanted]
                if "fullName" in q:
                    items = [u for u in items if u["fullName"] == q["fullName"]]
                if "query" in q:
                    needle = q["query"].lower()
                    items = [u for u in items if needle in u["email"].lower()
                             or needle in u["fullName"].lower()]
                if "accountIds" in q:
                    items = [u for u in items if self._in_accounts(u, q["accountIds"])]
                if "siteIds" in q:
                    items = [u for u in items if u["scope"] == "site" and
                             any(sr["id"] in q["siteIds"] for sr in u["scopeRoles"])]
                if "roleIds" in q:
                    items = [u for u in items
                             if any(sr["roleId"] in q["roleIds"] for sr in u["scopeRoles"])]
                out = [self._user_out(u) for u in items]
            page, pagination = paginate(out, q, "users")
            return answer(page, pagination=pagination)

        @bp.post("/users")
        def create_user():
            self._require("Users.create")
            data = read_body(BODY_CREATE_USER)["data"]
            with self.lock:
                if data["scope"] == "tenant" or data.get("tenantRoles"):
                    self._check_scope_id("tenant", None, "data.scope")
                scope_roles = self._scope_roles(data["scope"], data.get("scopeRoles"),
                                                "data.scopeRoles")
                for user in self.users.values():
                    if user["email"].lower() == data["email"].lower():
                        raise S1Error(409, f"data.email: a user with email {data['email']} "
                                           f"already exists (id {user['id']})")
                now = iso(utcnow())
                user = {"id": str(next(self._ids)), "email": data["email"],
                        "fullName": data["fullName"], "scope": data["scope"],
                        "scopeRoles": scope_roles, "tenantRoles": [],
                        "twoFaEnabled": data.get("twoFaEnabled", False),
                        "emailVerified": False,
                        # [G] no password: the console emails a registration invitation
                        "invitationSent": "password" not in data,
                        "dateJoined": now, "firstLogin": None, "lastLogin": None,
                        "source": "mgmt", "isSystem": False}
                self.users[user["id"]] = user
                return answer(self._user_out(user))

        @bp.get("/users/<user_id>")
        def get_user(user_id: str):
            self._require("Users.view")
            parse_query({})
            with self.lock:
                return answer(self._user_out(self._find(self.users, "user", user_id)))

        @bp.put("/users/<user_id>")
        def update_user(user_id: str):
            self._require("Users.edit")
            data = read_body(BODY_UPDATE_USER)["data"]
            with self.lock:
                user = self._find(self.users, "user", user_id)
                if "email" in data and data["email"].lower() != user["email"].lower():
                    raise S1Error(400, "data.email: a user's email cannot be changed")
                if data.get("scope") == "tenant" or data.get("tenantRoles"):
                    self._check_scope_id("tenant", None, "data.scope")
                if "scope" in data and "scopeRoles" not in data \
                        and data["scope"] != user["scope"]:
                    raise S1Error(400, "data.scopeRoles: required when the scope changes")
                scope = data.get("scope", user["scope"])
                if "scopeRoles" in data:
                    user["scopeRoles"] = self._scope_roles(scope, data["scopeRoles"],
                                                           "data.scopeRoles")
                user["scope"] = scope
                for key in ("fullName", "twoFaEnabled"):
                    if key in data:
                        user[key] = data[key]
                return answer(self._user_out(user))

        @bp.delete("/users/<user_id>")
        def delete_user(user_id: str):
            principal = self._require("Users.delete")
            with self.lock:
                self._find(self.users, "user", user_id)
                if principal.kind == "user" and principal.id == user_id:
                    raise S1Error(400, "a user cannot delete itself")
                del self.users[user_id]
                self._revoke_tokens("user", user_id)
            return answer({"success": True})

        @bp.post("/users/delete-users")
        def bulk_delete_users():
            principal = self._require("Users.delete")
            body = read_body(BODY_BULK_DELETE_USERS)
            with self.lock:
                ids = [i for i in body["filter"]["ids"] if i in self.users]
                if principal.kind == "user" and principal.id in ids:
                    raise S1Error(400, "a user cannot delete itself")
                for user_id in ids:
                    del self.users[user_id]
                    self._revoke_tokens("user", user_id)
            return answer({"affected": len(ids)})

        def token_owner(owner_id: str) -> tuple[str, dict[str, Any]]:
            if owner_id in self.users:
                self._require("Users.edit")
                return "user", self.users[owner_id]
            if owner_id in self.service_users:
                self._require("ServiceUsers.edit")
                return "serviceUser", self.service_users[owner_id]
            raise S1Error(404, f"no user or service user with id {owner_id}")

        @bp.post("/users/revoke-api-token")
        def revoke_api_token():
            field_name = self.revoke_id_field
            body = read_body(BODY_TOKEN_BY_ID if field_name == "id" else BODY_TOKEN_BY_USER_ID)
            with self.lock:
                kind, owner = token_owner(body["data"][field_name])
                n = self._revoke_tokens(kind, owner["id"])
            return answer({"success": n > 0})

        @bp.get("/users/<user_id>/api-token-details")
        def api_token_details(user_id: str):
            parse_query({})
            with self.lock:
                if user_id in self.service_users:
                    self._require("ServiceUsers.view")
                    kind = "serviceUser"
                else:
                    self._require("Users.view")
                    self._find(self.users, "user", user_id)
                    kind = "user"
                token = self._live_token(kind, user_id)
                if token is None:
                    raise S1Error(404, f"{user_id} has no API token")
                return answer({"createdAt": token["createdAt"], "expiresAt": token["expiresAt"]})

        # -- service users

        @bp.get("/service-users")
        def list_service_users():
            self._require("ServiceUsers.view")
            q = parse_query({"ids": "csv", "accountIds": "csv", "siteIds": "csv",
                             "query": "str", "roleIds": "csv"},
                            ("id", "createdAt", "updatedAt", "name", "fullName", "description",
                             "firstLogin", "lastLogin"))
            with self.lock:
                items = list(self.service_users.values())
                if "ids" in q:
                    items = [s for s in items if s["id"] in q["ids"]]
                if "accountIds" in q:
                    items = [s for s in items if self._in_accounts(s, q["accountIds"])]
                if "siteIds" in q:
                    items = [s for s in items if s["scope"] == "site" and
                             any(sr["id"] in q["siteIds"] for sr in s["scopeRoles"])]
                if "query" in q:
                    needle = q["query"].lower()
                    items = [s for s in items if needle in (s["name"] or "").lower()
                             or needle in (s["description"] or "").lower()]
                if "roleIds" in q:
                    items = [s for s in items
                             if any(sr["roleId"] in q["roleIds"] for sr in s["scopeRoles"])]
                out = [self._service_user_out(s) for s in items]
            page, pagination = paginate(out, q, "service-users")
            return answer(page, pagination=pagination)

        @bp.post("/service-users")
        def create_service_user():
            principal = self._require("ServiceUsers.create")
            data = read_body(BODY_CREATE_SERVICE_USER)["data"]
            with self.lock:
                expires = self._check_future(data["expirationDate"], "data.expirationDate")
                scope_roles = self._scope_roles(data["scope"], data.get("scopeRoles"),
                                                "data.scopeRoles")
                wanted = {sr["id"] for sr in scope_roles}
                for su in self.service_users.values():
                    if (su["name"] or "").lower() == data["name"].lower() \
                            and su["scope"] == data["scope"] \
                            and wanted & {sr["id"] for sr in su["scopeRoles"]}:
                        raise S1Error(409, f"data.name: a service user named {su['name']!r} "
                                           f"already exists in this scope (id {su['id']})")
                actor, actor_id = self._actor(principal)
                now = iso(utcnow())
                su = {"id": str(next(self._ids)), "name": data["name"],
                      "description": data.get("description"), "scope": data["scope"],
                      "scopeRoles": scope_roles, "createdAt": now, "updatedAt": now,
                      "lastActivation": None, "createdBy": {"id": actor_id, "name": actor},
                      "updatedBy": {"id": actor_id, "name": actor}}
                self.service_users[su["id"]] = su
                token = self._new_token("serviceUser", su["id"], expires)
                return answer(self._service_user_out(su, token_value=token["value"]))

        @bp.get("/service-users/<su_id>")
        def get_service_user(su_id: str):
            self._require("ServiceUsers.view")
            parse_query({})
            with self.lock:
                su = self._find(self.service_users, "service user", su_id)
                return answer(self._service_user_out(su, with_account=True))

        @bp.put("/service-users/<su_id>")
        def update_service_user(su_id: str):
            principal = self._require("ServiceUsers.edit")
            data = read_body(BODY_UPDATE_SERVICE_USER)["data"]
            with self.lock:
                su = self._find(self.service_users, "service user", su_id)
                scope = data.get("scope") or su["scope"]
                if scope != su["scope"] and "scopeRoles" not in data:
                    raise S1Error(400, "data.scopeRoles: required when the scope changes")
                if "scopeRoles" in data or scope == "tenant":
                    su["scopeRoles"] = self._scope_roles(scope, data.get("scopeRoles"),
                                                         "data.scopeRoles")
                su["scope"] = scope
                if "description" in data:
                    su["description"] = data["description"]
                actor, actor_id = self._actor(principal)
                su["updatedAt"] = iso(utcnow())
                su["updatedBy"] = {"id": actor_id, "name": actor}
                return answer(self._service_user_out(su))

        @bp.delete("/service-users/<su_id>")
        def delete_service_user(su_id: str):
            self._require("ServiceUsers.delete")
            with self.lock:
                self._find(self.service_users, "service user", su_id)
                del self.service_users[su_id]
                self._revoke_tokens("serviceUser", su_id)
            return answer({"success": True})

        @bp.post("/service-users/delete-service-users")
        def bulk_delete_service_users():
            self._require("ServiceUsers.delete")
            flt = read_body(BODY_BULK_DELETE_SERVICE_USERS)["filter"]
            if not flt:
                raise S1Error(400, "filter: give at least one of ids, accountIds, siteIds, "
                                   "roleIds, query")
            with self.lock:
                items = list(self.service_users.values())
                if "ids" in flt:
                    items = [s for s in items if s["id"] in flt["ids"]]
                if "accountIds" in flt:
                    items = [s for s in items if self._in_accounts(s, flt["accountIds"])]
                if "siteIds" in flt:
                    items = [s for s in items if s["scope"] == "site" and
                             any(sr["id"] in flt["siteIds"] for sr in s["scopeRoles"])]
                if "roleIds" in flt:
                    items = [s for s in items
                             if any(sr["roleId"] in flt["roleIds"] for sr in s["scopeRoles"])]
                if "query" in flt:
                    needle = flt["query"].lower()
                    items = [s for s in items if needle in (s["name"] or "").lower()
                             or needle in (s["description"] or "").lower()]
                for su in items:
                    del self.service_users[su["id"]]
                    self._revoke_tokens("serviceUser", su["id"])
            return answer({"affected": len(items)})

        @bp.post("/service-users/<su_id>/generate-api-token")
        def generate_service_user_token(su_id: str):
            self._require("ServiceUsers.edit")
            data = read_body(BODY_GENERATE_TOKEN)["data"]
            with self.lock:
                su = self._find(self.service_users, "service user", su_id)
                expires = self._check_future(data["expirationDate"], "data.expirationDate")
                self._revoke_tokens("serviceUser", su["id"])
                token = self._new_token("serviceUser", su["id"], expires)
                su["updatedAt"] = iso(utcnow())
                return answer({"token": token["value"], "createdAt": token["createdAt"],
                               "expiresAt": token["expiresAt"]})

        # -- threats

        @bp.get("/threats")
        def list_threats():
            self._require("Threats.view")
            q = parse_query({"ids": "csv", "accountIds": "csv", "siteIds": "csv",
                             "incidentStatuses": "csv", "analystVerdicts": "csv",
                             "query": "str"},
                            ("id", "createdAt", "updatedAt", "threatName", "incidentStatus",
                             "analystVerdict"))
            for key, allowed in (("incidentStatuses", INCIDENT_STATUSES),
                                 ("analystVerdicts", ANALYST_VERDICTS)):
                for value in q.get(key, []):
                    if value not in allowed:
                        raise S1Error(400, f"{key}: {value!r} is not one of {', '.join(allowed)}")
            with self.lock:
                items = list(self.threats.values())
                if "ids" in q:
                    items = [t for t in items if t["id"] in q["ids"]]
                if "accountIds" in q and self.account["id"] not in q["accountIds"]:
                    items = []
                if "siteIds" in q and self.site["id"] not in q["siteIds"]:
                    items = []
                if "incidentStatuses" in q:
                    items = [t for t in items
                             if t["threatInfo"]["incidentStatus"] in q["incidentStatuses"]]
                if "analystVerdicts" in q:
                    items = [t for t in items
                             if t["threatInfo"]["analystVerdict"] in q["analystVerdicts"]]
                if "query" in q:
                    needle = q["query"].lower()
                    items = [t for t in items if needle in t["threatInfo"]["threatName"].lower()]
                out = [self._threat_out(t) for t in items]

            def getter(item: dict[str, Any], key: str) -> Any:
                return item["id"] if key == "id" else item["threatInfo"].get(key)

            page, pagination = paginate(out, q, "threats", getter)
            return answer(page, pagination=pagination)

        def set_threat_fields(threats: list[dict[str, Any]], values: dict[str, str]) -> int:
            changed = 0
            now = iso(utcnow())
            for threat in threats:
                info = threat["threatInfo"]
                if any(info.get(k) != v for k, v in values.items()):
                    info.update(values)
                    info["updatedAt"] = now
                    changed += 1
            return changed

        @bp.post("/threats/incident")
        def threats_incident():
            body = read_body(BODY_INCIDENT)
            data = body["data"]
            needed = ["Threats.updateIncidentStatus"]
            if "analystVerdict" in data:
                needed.append("Threats.updateAnalystVerdict")
            self._require(*needed)
            with self.lock:
                threats = self._matching_threats(body["filter"])
                return answer({"affected": set_threat_fields(threats, data)})

        @bp.post("/threats/analyst-verdict")
        def threats_verdict():
            body = read_body(BODY_VERDICT)
            self._require("Threats.updateAnalystVerdict")
            with self.lock:
                threats = self._matching_threats(body["filter"])
                return answer({"affected": set_threat_fields(threats, body["data"])})

        @bp.post("/threats/notes")
        def threats_add_note():
            body = read_body(BODY_NOTES)
            principal = self._require("Threats.addNotes")
            with self.lock:
                threats = self._matching_threats(body["filter"])
                actor, actor_id = self._actor(principal)
                now = iso(utcnow())
                for threat in threats:
                    self.notes.setdefault(threat["id"], []).append({
                        "id": str(next(self._ids)), "text": body["data"]["text"],
                        "createdAt": now, "updatedAt": now, "creator": actor,
                        "creatorId": actor_id})
                return answer({"affected": len(threats)})

        @bp.get("/threats/<threat_id>/notes")
        def threat_notes(threat_id: str):
            self._require("Threats.view")
            q = parse_query({}, ("id", "createdAt", "updatedAt"))
            with self.lock:
                self._find(self.threats, "threat", threat_id)
                items = copy.deepcopy(self.notes.get(threat_id, []))
            page, pagination = paginate(items, q, f"threats/{threat_id}/notes")
            return answer(page, pagination=pagination)

        return bp


# ---- Workbench health check of a "sentinelone" device -------------------------------------


def _http_threats(console_url: str, token: str) -> tuple[int, str]:
    url = console_url.rstrip("/") + API_PREFIX + "/threats?limit=1"
    req = urllib.request.Request(url, headers={"Authorization": f"ApiToken {token}",
                                               "Accept": "application/json",
                                               "User-Agent": "sandbox-workbench-health"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, "ok"
    except urllib.error.HTTPError as err:
        detail = err.reason
        try:
            detail = json.loads(err.read())["errors"][0]["detail"]
        except (ValueError, KeyError, IndexError, TypeError):
            pass
        return err.code, str(detail)
    except (urllib.error.URLError, OSError) as err:
        return 0, f"cannot reach {console_url}: {getattr(err, 'reason', err)}"


def check_device_health(device: dict[str, Any], ctx: Any) -> tuple[str, dict[str, Any]]:
    """GET /threats with the device's API token; with status_syncing, check the role too.

    A console_url on this machine (the sandbox's base URL) is called over HTTP, so a wrong
    port fails as it would in Workbench; any other console_url (a real tenant's hostname)
    is treated as an alias of this emulator and checked in-process.
    """
    spec = device.get("device_spec") or {}
    token = spec.get("api_token") or ""
    console_url = spec.get("console_url") or ""
    s1: SentinelOneEmulator | None = ctx.emulators.get("sentinelone")
    if s1 is None:
        return "unhealthy", {"reason": "the SentinelOne emulator is not running"}
    checks: list[dict[str, Any]] = []
    if urlparse(console_url).hostname in LOOPBACK_HOSTS:
        status, detail = _http_threats(console_url, token)
        via = "http"
    else:
        status, detail = s1.probe_threats(token)
        via = "in-process (console_url taken as an alias of the sandbox)"
    if status != 200:
        checks.append({"name": "list_threats", "result": "failed", "status": status,
                       "detail": detail, "via": via})
        return "unhealthy", {"reason": f"GET {API_PREFIX}/threats answered "
                                       f"{status or 'nothing'}: {detail}", "checks": checks}
    checks.append({"name": "list_threats", "result": "ok", "via": via})
    if spec.get("status_syncing"):
        missing = s1.missing_status_sync_permissions(token)
        if missing:
            checks.append({"name": "status_syncing", "result": "failed",
                           "missing_permissions": missing})
            return "unhealthy", {"reason": "status syncing is enabled but the API token's "
                                           "role lacks " + ", ".join(missing),
                                 "checks": checks}
        checks.append({"name": "status_syncing", "result": "ok"})
    return "healthy", {"checks": checks}
