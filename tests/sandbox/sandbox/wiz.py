"""Wiz emulator under /wiz: OAuth client credentials and a GraphQL API (shapes from
AxtonGrams/terraform-provider-wiz; docs/guides/api-assumptions.md#wiz).

  POST /wiz/oauth/token   form grant_type=client_credentials, client_id, client_secret,
                          audience=wiz-api -> {access_token, token_type, expires_in, scope}
  POST /wiz/graphql       {"query", "variables", "operationName"} with `Authorization: Bearer`

The GraphQL schema is the SDL in wiz_schema.graphql (names marked [V] come from public client
code, everything else is a guess [G]); documents are parsed, validated and executed by
graphql-core, resolvers are the `_r_*` methods below. Unknown fields, unknown input fields and
wrong enum values fail graphql-core's validation with its own messages ("Cannot query field
'role' on type 'User'.") and code GRAPHQL_VALIDATION_FAILED.

Choices where the real behaviour is unknown [G]:
- GraphQL errors, authentication included, come back with HTTP 200 in `errors[]`, each with
  `extensions.code`: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, BAD_USER_INPUT,
  UNAUTHENTICATED, FORBIDDEN (scope missing), NOT_FOUND, INTERNAL. The HTTP status of
  UNAUTHENTICATED is a setting (PUT /_admin/wiz/settings) so clients can be tested with 401 too.
  A body that is not a JSON object with a `query` string is HTTP 400 (errors[] envelope).
- The token endpoint answers OAuth errors `{"error", "error_description"}`: 401 access_denied
  for unknown credentials, 400 for a bad grant_type/audience/body.
- Tokens are JWT-shaped (HS256, sandbox key) but the server looks them up: they die with
  their service account, when they expire (ttl setting), and on /_admin/reset (except those
  of the seeded admin client). Rotating a secret keeps tokens already issued.
- Scopes are "<action>:<resource>"; every root field needs one (SCOPES). `read:X` is also
  granted by `write:X`, `admin:X`, `read:all`, `admin:all`; `write:X` by `admin:X`, `admin:all`.
- Each enabled automation rule whose trigger matches a new issue (ISSUES/CREATED) or detection
  (DETECTIONS/CREATED, a guessed source) and whose `filters.severity` (absent = all) has its
  severity delivers its WEBHOOK actions: HTTP POST on a background thread (3 s timeout) with
  the integration's basic/bearer auth and headers. The body is the action's mustache `body`
  (required) rendered over the variables Wiz documents for its templates, named as in the
  public example body (AxtonGrams examples/resources/wiz_automation_rule_aws_sns/resource.tf):
  triggerSource, triggerType, ruleId, ruleName, issue.{id,status,severity,createdAt,projects,
  entitySnapshot,control}; detection.{...} for DETECTIONS is [G] (see `_template_context`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import re
import secrets
import string
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from flask import Blueprint, Request, Response, g, jsonify, request
from graphql import GraphQLError, OperationDefinitionNode, build_schema, execute, parse, validate

from .config import Option, SandboxConfig
from .emulator import Emulator, HealthCheck

log = logging.getLogger("sandbox.wiz")

SCHEMA_FILE = Path(__file__).with_name("wiz_schema.graphql")
# The seeded admin service account (client credentials, scope admin:all) and the lifetime
# of OAuth tokens.
DEFAULT_CLIENT_ID = "sandbox-wiz-admin-client"
DEFAULT_CLIENT_SECRET = "sandbox-wiz-admin-secret"
CLIENT_ID = Option("--wiz-client-id", DEFAULT_CLIENT_ID,
                   "Wiz emulator: client id of the seeded admin service account")
CLIENT_SECRET = Option("--wiz-client-secret", DEFAULT_CLIENT_SECRET,
                       "Wiz emulator: client secret of the seeded admin service account")
TOKEN_TTL = Option("--wiz-token-ttl", 86400.0, "Wiz emulator: OAuth token lifetime in seconds")
AUDIENCE = "wiz-api"
PAGE_DEFAULT = 50
PAGE_MAX = 500
DELIVERY_TIMEOUT = 3.0
SEVERITIES = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
ISSUE_STATUSES = ["OPEN", "IN_PROGRESS", "RESOLVED", "REJECTED"]
ISSUE_TYPES = ["TOXIC_COMBINATION", "THREAT_DETECTION", "CLOUD_CONFIGURATION"]
FILTER_KEYS = {"severity"}  # [G] the only automation-rule filter key the sandbox knows
SCOPE_PATTERN = re.compile(r"^[a-z_]+:[a-z_]+$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@([a-z0-9-]+(\.[a-z0-9-]+)+)$", re.IGNORECASE)
DOMAIN_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

# [G] the scope every root field needs (names in the Wiz style, the list is ours).
SCOPES: dict[str, str] = {
    "projects": "read:projects",
    "serviceAccount": "read:service_accounts", "serviceAccounts": "read:service_accounts",
    "createServiceAccount": "write:service_accounts",
    "deleteServiceAccount": "write:service_accounts",
    "rotateServiceAccountSecret": "write:service_accounts",
    "user": "read:users", "users": "read:users", "userRoles": "read:users",
    "createUser": "write:users", "updateUser": "write:users", "deleteUser": "write:users",
    "loginSettings": "read:security_settings",
    "addAllowedLoginDomain": "write:security_settings",
    "removeAllowedLoginDomain": "write:security_settings",
    "integration": "read:integrations", "integrations": "read:integrations",
    "createIntegration": "write:integrations", "updateIntegration": "write:integrations",
    "deleteIntegration": "write:integrations",
    "automationRule": "read:automation_rules", "automationRules": "read:automation_rules",
    "createAutomationRule": "write:automation_rules",
    "updateAutomationRule": "write:automation_rules",
    "deleteAutomationRule": "write:automation_rules",
    "issues": "read:issues", "detections": "read:detections",
}

SEED_PROJECTS = [
    {"id": "3b9c1d2e-7f40-4a5b-8c6d-1e2f3a4b5c6d", "name": "Production", "slug": "production"},
    {"id": "8e7d6c5b-4a39-4281-b7f6-e5d4c3b2a190", "name": "Staging", "slug": "staging"},
]

# Built-in role ids in the Wiz style [V style]; "Global Incident Response Analyst" has an
# opaque id on purpose: its real id is unknown [G], clients must look it up by name.
SEED_ROLES = [
    {"id": "GLOBAL_ADMIN", "name": "GlobalAdmin", "description": "Full access to the tenant",
     "isProjectScoped": False, "scopes": ["admin:all"]},
    {"id": "GLOBAL_READER", "name": "GlobalReader", "description": "Read everything",
     "isProjectScoped": False, "scopes": ["read:all"]},
    {"id": "GLOBAL_CONTRIBUTOR", "name": "GlobalContributor",
     "description": "Read everything, update issues", "isProjectScoped": False,
     "scopes": ["read:all", "write:issues"]},
    {"id": "d2a6f3c1-5b8e-4f07-9c4a-7e1b2d3c4f50", "name": "Global Incident Response Analyst",
     "description": "Investigate and respond to issues and detections in every project",
     "isProjectScoped": False,
     "scopes": ["read:all", "write:issues", "write:detections"]},
    {"id": "PROJECT_ADMIN", "name": "ProjectAdmin", "description": "Administer assigned projects",
     "isProjectScoped": True, "scopes": ["admin:projects"]},
    {"id": "PROJECT_READER", "name": "ProjectReader", "description": "Read assigned projects",
     "isProjectScoped": True, "scopes": ["read:projects"]},
]

SEED_ADMIN_SA_ID = "0f4c3b2a-1e9d-4c8b-a7f6-5e4d3c2b1a00"
SEED_ADMIN_USER = {"id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "name": "Sandbox Admin",
                   "email": "admin@acme.example", "role": "GLOBAL_ADMIN"}
SEED_ALLOWED_DOMAINS = ["acme.example"]  # [G] login-domain allow list of the tenant

ALPHANUM = string.ascii_lowercase + string.digits


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def random_string(n: int) -> str:
    return "".join(secrets.choice(ALPHANUM) for _ in range(n))


def fail(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def bad_input(message: str) -> GraphQLError:
    return fail("BAD_USER_INPUT", message)


def not_found(kind: str, ident: str) -> GraphQLError:
    return fail("NOT_FOUND", f"{kind} {ident!r} not found")


def scope_granted(required: str, granted: list[str]) -> bool:
    action, _, resource = required.partition(":")
    have = set(granted)
    if {"admin:all", required, f"admin:{resource}"} & have:
        return True
    return action == "read" and bool({"read:all", f"write:{resource}"} & have)


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


# ---- a small mustache subset for webhook bodies: {{a.b}}, {{{a}}}, {{#list}}..{{/list}}, {{^x}}

MUSTACHE_TAG = re.compile(r"\{\{(\{)?\s*([#^/]?)\s*([\w.]+)\s*\}?\}\}")


def _lookup(name: str, stack: list[Any]) -> Any:
    if name == ".":
        return stack[-1]
    first, *rest = name.split(".")
    for ctx in reversed(stack):
        if isinstance(ctx, dict) and first in ctx:
            value = ctx[first]
            for part in rest:
                value = value.get(part) if isinstance(value, dict) else None
            return value
    return None


def render_mustache(template: str, stack: list[Any]) -> str:
    """Render `template`; string values are JSON-escaped (bodies are JSON documents) [G]."""
    out, pos = [], 0
    while (m := MUSTACHE_TAG.search(template, pos)) is not None:
        out.append(template[pos:m.start()])
        kind, name = m.group(2), m.group(3)
        if kind in ("#", "^"):
            depth, scan, end = 1, m.end(), None
            while (t := MUSTACHE_TAG.search(template, scan)) is not None:
                if t.group(3) == name and t.group(2) in ("#", "^"):
                    depth += 1
                elif t.group(3) == name and t.group(2) == "/":
                    depth -= 1
                    if depth == 0:
                        end = t
                        break
                scan = t.end()
            inner = template[m.end():end.start()] if end else template[m.end():]
            value = _lookup(name, stack)
            if kind == "#" and isinstance(value, list):
                out.extend(render_mustache(inner, stack + [item]) for item in value)
            elif kind == "#" and value:
                out.append(render_mustache(inner, stack + [value]))
            elif kind == "^" and not value:
                out.append(render_mustache(inner, stack))
            pos = end.end() if end else len(template)
            continue
        if kind == "":
            value = _lookup(name, stack)
            if value is None:
                text = ""
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (dict, list)):
                text = json.dumps(value)
            else:
                text = json.dumps(str(value))[1:-1]
            out.append(text)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out)


class WizEmulator(Emulator):
    name = "wiz"
    prefix = "/wiz"
    options = (CLIENT_ID, CLIENT_SECRET, TOKEN_TTL)

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.schema = build_schema(SCHEMA_FILE.read_text())
        self.lock = threading.RLock()
        self.signing_key = secrets.token_bytes(32)
        self.projects = {p["id"]: dict(p) for p in SEED_PROJECTS}
        self.roles = {r["id"]: dict(r) for r in SEED_ROLES}
        self.domain_verification_code = "wiz-domain-verification=" + hashlib.sha256(
            f"{config.org_id}/{config.setting(CLIENT_ID)}".encode()).hexdigest()[:32]
        self.tokens: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self._seed()
        self.root = self._build_root()
        self.blueprint = self._build_blueprint()

    # ---- state ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _seed(self) -> None:
        created = "2024-01-01T00:00:00.000Z"
        self.settings = {"token_ttl_seconds": float(self.config.setting(TOKEN_TTL)),
                         "unauthenticated_http_status": 200,
                         "refuse_service_account_tokens": False,
                         "govcloud": False}
        self.service_accounts: dict[str, dict[str, Any]] = {SEED_ADMIN_SA_ID: {
            "id": SEED_ADMIN_SA_ID, "name": "Sandbox admin (seed)",
            "clientId": self.config.setting(CLIENT_ID),
            "clientSecret": self.config.setting(CLIENT_SECRET),
            "scopes": ["admin:all"], "type": "THIRD_PARTY", "createdAt": created,
            "lastRotatedAt": None, "assignedProjectIds": [], "seq": self._next_seq(),
            "seeded": True}}
        self.users: dict[str, dict[str, Any]] = {SEED_ADMIN_USER["id"]: {
            **SEED_ADMIN_USER, "assignedProjectIds": [], "isSuspended": False,
            "sendEmailInvite": False, "createdAt": created, "seq": self._next_seq(),
            "seeded": True}}
        self.allowed_domains: list[str] = list(SEED_ALLOWED_DOMAINS)
        self.integrations: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.issues: dict[str, dict[str, Any]] = {}
        self.detections: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []

    def health_checks(self) -> dict[str, HealthCheck]:
        return {"wiz": check_device_health}

    def client_env(self, base_url: str) -> dict[str, str]:
        return {"WIZ_CLIENT_ID": self.config.setting(CLIENT_ID),
                "WIZ_CLIENT_SECRET": self.config.setting(CLIENT_SECRET),
                "WIZ_AUTH_URL": f"{base_url}{self.prefix}/oauth/token",
                "WIZ_API_URL": f"{base_url}{self.prefix}/graphql"}

    def admin_blueprint(self) -> Blueprint:
        """/_admin/wiz:

  POST   /_admin/wiz/issues             body {"severity", "title", "status"?, "type"?,
                                        "project_ids"?, "resource"?}; 201 {"issue",
                                        "deliveries": [{id, rule_id, integration_id}]}; 400
  POST   /_admin/wiz/detections         body {"severity", "title", "description"?,
                                        "cloud_platform"?}; 201 {"detection", "deliveries"}
  GET    /_admin/wiz/deliveries         200 {"deliveries": [{id, rule_id, url, status:
                                        pending|delivered|failed, status_code, error, body}]}
  GET|PUT /_admin/wiz/settings          {"token_ttl_seconds", "unauthenticated_http_status":
                                        200|401, "refuse_service_account_tokens": bool (every
                                        client but the seeded admin gets 401 access_denied, over
                                        HTTP and in Workbench's health check), "govcloud": bool
                                        (the tenant is a Wiz GovCloud tenant: Workbench's health
                                        check of a device stays unhealthy until POST
                                        /_admin/workbench/security_devices/<id>/enable-ingestion,
                                        as Expel enables ingestion by hand after the legal
                                        addendum)}; PUT changes them until /_admin/reset
  POST   /_admin/wiz/expire-tokens      200 {"expired": n}: every issued token expires now
  POST   /_admin/wiz/console-edit       body {"serviceAccount": id, "scopes": [...]} or
                                        {"integration": id, "projectId": id}: an edit made in
                                        the Wiz console that the API has no mutation for [G]
                                        (UpdateServiceAccount and UpdateIntegration patches
                                        carry neither); 200 {"edited": id}; 400; 404
"""
        bp = Blueprint("wiz_admin", __name__)

        @bp.post("/issues")
        def create_issue():
            status, body = self.admin_create_issue(request.get_json(force=True, silent=True))
            return jsonify(body), status

        @bp.post("/detections")
        def create_detection():
            status, body = self.admin_create_detection(
                request.get_json(force=True, silent=True))
            return jsonify(body), status

        @bp.get("/deliveries")
        def deliveries():
            return jsonify(deliveries=self.admin_deliveries())

        @bp.route("/settings", methods=["GET", "PUT"])
        def settings():
            body = request.get_json(force=True, silent=True) if request.method == "PUT" else None
            if request.method == "PUT" and body is None:
                return jsonify(error="body must be a JSON object"), 400
            status, out = self.admin_settings(body)
            return jsonify(out), status

        @bp.post("/expire-tokens")
        def expire_tokens():
            return jsonify(expired=self.admin_expire_tokens())

        @bp.post("/console-edit")
        def console_edit():
            status, out = self.admin_console_edit(request.get_json(force=True, silent=True))
            return jsonify(out), status

        return bp

    def reset(self) -> None:
        with self.lock:
            self._seed()
            self.tokens = {t: info for t, info in self.tokens.items()
                           if info["service_account_id"] == SEED_ADMIN_SA_ID
                           and info["client_secret"] == self.config.setting(CLIENT_SECRET)}

    def dump(self) -> dict[str, Any]:
        def strip(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: copy.deepcopy(v) for k, v in r.items() if k not in ("seq", "seeded")}
                    for r in sorted(records.values(), key=lambda r: r["seq"])
                    if not r.get("seeded")]
        with self.lock:
            return {
                "service_accounts": strip(self.service_accounts),
                "users": strip(self.users),
                "allowed_domains": list(self.allowed_domains),
                "integrations": strip(self.integrations),
                "automation_rules": strip(self.rules),
                "issues": strip(self.issues),
                "detections": strip(self.detections),
                "deliveries": copy.deepcopy(self.deliveries),
                "settings": dict(self.settings),
                "live_tokens": sum(1 for t in self.tokens.values()
                                   if t["expires_at"] > time.time()),
                "seed": {
                    "service_accounts": [{k: v for k, v in sa.items() if k != "seq"}
                                         for sa in self.service_accounts.values()
                                         if sa.get("seeded")],
                    "users": [{k: v for k, v in u.items() if k != "seq"}
                              for u in self.users.values() if u.get("seeded")],
                    "allowed_domains": list(SEED_ALLOWED_DOMAINS),
                    "projects": copy.deepcopy(SEED_PROJECTS),
                    "roles": copy.deepcopy(SEED_ROLES),
                },
            }

    # ---- OAuth ----------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any]) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self.signing_key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64(sig)}"

    def issue_token(self, client_id: str, client_secret: str) -> dict[str, Any]:
        """A token for these client credentials, or OAuthError (also used by health checks)."""
        with self.lock:
            account = next((sa for sa in self.service_accounts.values()
                            if sa["clientId"] == client_id), None)
            if account is None or not hmac.compare_digest(
                    account["clientSecret"].encode(), (client_secret or "").encode()):
                raise OAuthError(401, "access_denied", "Unauthorized")
            if self.settings["refuse_service_account_tokens"] and not account.get("seeded"):
                raise OAuthError(401, "access_denied",
                                 "this client is not allowed to sign in (sandbox setting)")
            ttl = self.settings["token_ttl_seconds"]
            issued = time.time()
            claims = {"iss": "sandbox-wiz", "sub": client_id, "aud": AUDIENCE,
                      "iat": int(issued), "exp": int(issued + ttl), "dc": "sandbox",
                      "scope": " ".join(account["scopes"]), "jti": uuid.uuid4().hex}
            token = self._sign(claims)
            self.tokens[token] = {"service_account_id": account["id"], "client_id": client_id,
                                  "client_secret": account["clientSecret"],
                                  "scopes": list(account["scopes"]),
                                  "expires_at": issued + ttl}
            return {"access_token": token, "token_type": "Bearer",
                    "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                    "scope": " ".join(account["scopes"])}

    def _token_endpoint(self) -> Response:
        try:
            mimetype = request.mimetype
            if mimetype != "application/x-www-form-urlencoded":
                raise OAuthError(400, "invalid_request",
                                 "Content-Type must be application/x-www-form-urlencoded")
            form = request.form
            grant = form.get("grant_type")
            if grant is None:
                raise OAuthError(400, "invalid_request", "missing grant_type")
            if grant != "client_credentials":
                raise OAuthError(400, "unsupported_grant_type",
                                 f"grant_type {grant!r} is not supported; use client_credentials")
            if not form.get("client_id") or not form.get("client_secret"):
                raise OAuthError(400, "invalid_request", "client_id and client_secret are required")
            audience = form.get("audience")
            if audience != AUDIENCE:
                raise OAuthError(400, "invalid_request",
                                 f"audience must be {AUDIENCE!r} (got {audience!r}; "
                                 "'beyond-api' is the legacy Auth0 audience)")
            body = self.issue_token(form["client_id"], form["client_secret"])
        except OAuthError as err:
            return self._oauth_error(err.status, err.error, err.description)
        resp = jsonify(body)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @staticmethod
    def _oauth_error(status: int, error: str, description: str,
                     headers: dict[str, str] | None = None) -> Response:
        resp = jsonify(error=error, error_description=description)
        resp.status_code = status
        for key, value in (headers or {}).items():
            resp.headers[key] = value
        return resp

    # ---- Emulator interface ---------------------------------------------------------------

    def operations(self, req: Request) -> frozenset[str]:
        """A GraphQL call's operationName and root field names (for faults that pick one
        mutation out of the single /graphql route)."""
        if req.path != f"{self.prefix}/graphql":
            return frozenset()
        body = req.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return frozenset()
        names = {body["operationName"]} if isinstance(body.get("operationName"), str) else set()
        try:
            document = parse(body["query"])
        except GraphQLError:
            return frozenset(names)
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                names.update(sel.name.value for sel in definition.selection_set.selections
                             if hasattr(sel, "name"))
        return frozenset(names)

    def check_request(self, req: Request) -> Response | None:
        if req.path != f"{self.prefix}/graphql" or req.method != "POST":
            return None
        auth = req.headers.get("Authorization", "").strip()
        scheme, _, token = auth.partition(" ")
        if not auth:
            return self._unauthenticated("missing Authorization header; send 'Bearer <token>'")
        if scheme.lower() != "bearer" or not token.strip():
            return self._unauthenticated("Authorization must be 'Bearer <access token>'")
        with self.lock:
            info = self.tokens.get(token.strip())
            if info is None:
                return self._unauthenticated("invalid access token")
            if info["expires_at"] <= time.time():
                return self._unauthenticated("access token expired")
            g.wiz_token = dict(info)
        return None

    def _unauthenticated(self, message: str) -> Response:
        status = self.settings["unauthenticated_http_status"]
        resp = jsonify(data=None, errors=[
            {"message": message, "extensions": {"code": "UNAUTHENTICATED"}}])
        resp.status_code = status
        if status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="wiz-api"'
        return resp

    def error_response(self, status: int, detail: str,
                       headers: dict[str, str] | None = None) -> Response:
        if request.path.startswith(f"{self.prefix}/oauth"):
            error = {429: "too_many_requests", 404: "not_found", 405: "invalid_request"}.get(
                status, "server_error" if status >= 500 else "invalid_request")
            return self._oauth_error(status, error, detail, headers)
        code = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                405: "METHOD_NOT_ALLOWED", 429: "RATE_LIMIT_EXCEEDED"}.get(
                    status, "INTERNAL" if status >= 500 else "BAD_REQUEST")
        resp = jsonify(errors=[{"message": detail, "extensions": {"code": code}}])
        resp.status_code = status
        for key, value in (headers or {}).items():
            resp.headers[key] = value
        return resp

    # ---- GraphQL --------------------------------------------------------------------------

    def _graphql_endpoint(self) -> Response:
        if request.mimetype != "application/json":
            return self.error_response(400, "Content-Type must be application/json")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) \
                or not body["query"].strip():
            return self.error_response(
                400, 'body must be a JSON object {"query": "...", "variables": {...}}')
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return self.error_response(400, "variables must be a JSON object")
        operation = body.get("operationName")
        if operation is not None and not isinstance(operation, str):
            return self.error_response(400, "operationName must be a string")
        token = g.get("wiz_token") or {}
        return jsonify(self.run_graphql(body["query"], variables, operation,
                                        token.get("scopes", [])))

    def run_graphql(self, query: str, variables: dict[str, Any] | None,
                    operation: str | None, scopes: list[str]) -> dict[str, Any]:
        try:
            document = parse(query)
        except GraphQLError as err:
            return {"errors": [self._format(err, "GRAPHQL_PARSE_FAILED")]}
        problems = validate(self.schema, document)
        if problems:
            return {"errors": [self._format(e, "GRAPHQL_VALIDATION_FAILED") for e in problems]}
        with self.lock:
            result = execute(self.schema, document, root_value=self.root,
                             context_value={"scopes": scopes}, variable_values=variables,
                             operation_name=operation)
        out: dict[str, Any] = {}
        if result.errors:
            out["errors"] = [self._format(e, "BAD_USER_INPUT") for e in result.errors]
        out["data"] = result.data
        return out

    @staticmethod
    def _format(err: GraphQLError, default_code: str) -> dict[str, Any]:
        formatted = dict(err.formatted)
        extensions = dict(formatted.get("extensions") or {})
        original = err.original_error
        if "code" not in extensions:
            if original is not None and not isinstance(original, GraphQLError):
                log.error("wiz resolver crashed: %s",
                          "".join(traceback.format_exception(original)))
                formatted["message"] = f"internal error: {type(original).__name__}: {original}"
                extensions["code"] = "INTERNAL"
            else:
                extensions["code"] = default_code
        formatted["extensions"] = extensions
        return formatted

    def _build_root(self) -> dict[str, Callable[..., Any]]:
        root: dict[str, Callable[..., Any]] = {}
        for field, scope in SCOPES.items():
            method = getattr(self, f"_r_{field}")

            def guarded(info, _method=method, _scope=scope, _field=field, **args):
                if not scope_granted(_scope, info.context["scopes"]):
                    raise fail("FORBIDDEN", f"{_field} needs scope {_scope!r}; "
                                            f"the token has {info.context['scopes']}")
                return _method(**args)
            root[field] = guarded
        return root

    # ---- views (dicts for graphql-core's default resolver; callables are resolved lazily) --

    def _project_view(self, project_id: str | None) -> dict[str, Any] | None:
        project = self.projects.get(project_id or "")
        return dict(project) if project else None

    def _sa_view(self, sa: dict[str, Any], reveal: bool = False) -> dict[str, Any]:
        return {"id": sa["id"], "name": sa["name"], "clientId": sa["clientId"],
                "clientSecret": sa["clientSecret"] if reveal else None,
                "scopes": list(sa["scopes"]), "type": sa["type"], "createdAt": sa["createdAt"],
                "lastRotatedAt": sa["lastRotatedAt"],
                "assignedProjects": [self._project_view(p) for p in sa["assignedProjectIds"]]}

    def _role_view(self, role_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.roles[role_id])

    def _user_view(self, user: dict[str, Any]) -> dict[str, Any]:
        projects = [self._project_view(p) for p in user["assignedProjectIds"]]
        role = self._role_view(user["role"])
        return {"id": user["id"], "name": user["name"], "email": user["email"],
                "effectiveRole": role, "manualOverrideRole": copy.deepcopy(role),
                "identityProviderRole": None, "effectiveAssignedProjects": projects,
                "manualOverrideAssignedProjects": copy.deepcopy(projects),
                "identityProviderAssignedProjects": [], "identityProvider": None,
                "identityProviderType": "WIZ", "isSuspended": user["isSuspended"],
                "isProjectScoped": role["isProjectScoped"], "createdAt": user["createdAt"]}

    def _login_settings_view(self) -> dict[str, Any]:
        return {"domainVerificationCode": self.domain_verification_code,
                "allowedDomains": list(self.allowed_domains)}

    def _integration_view(self, integ: dict[str, Any]) -> dict[str, Any]:
        hook = integ["params"]["webhook"]
        auth = hook.get("authorization")
        auth_view = None
        if auth and auth.get("token"):
            auth_view = {"__typename": "WebhookIntegrationBearerAuthorization", "token": None}
        elif auth:
            auth_view = {"__typename": "WebhookIntegrationBasicAuthorization",
                         "username": auth["username"], "password": None}
        integ_id = integ["id"]
        return {
            "id": integ_id, "name": integ["name"], "type": integ["type"],
            "isAccessibleToAllProjects": integ["isAccessibleToAllProjects"],
            "project": self._project_view(integ["projectId"]),
            "createdAt": integ["createdAt"], "updatedAt": integ["updatedAt"],
            "usedByRules": lambda info: [self._rule_view(r) for r in self._rules_using(integ_id)],
            "params": {"__typename": "WebhookIntegrationParams", "url": hook["url"],
                       "onPremConfig": {"isOnPrem": hook["isOnPrem"], "tunnelDomain": None,
                                        "tunnelToken": None},
                       "authorization": auth_view, "headers": copy.deepcopy(hook["headers"])},
        }

    def _rules_using(self, integration_id: str) -> list[dict[str, Any]]:
        return [r for r in sorted(self.rules.values(), key=lambda r: r["seq"])
                if any(a["integrationId"] == integration_id for a in r["actions"])]

    def _rule_view(self, rule: dict[str, Any]) -> dict[str, Any]:
        def action_view(action: dict[str, Any]) -> dict[str, Any]:
            integ_id = action["integrationId"]
            hook = action["actionTemplateParams"]["webhook"]
            return {"id": action["id"], "actionTemplateType": action["actionTemplateType"],
                    "integration": lambda info: (
                        self._integration_view(self.integrations[integ_id])
                        if integ_id in self.integrations else None),
                    "actionTemplateParams": {"__typename": "WebhookActionTemplateParams",
                                             "body": hook["body"],
                                             "headers": copy.deepcopy(hook["headers"])}}
        return {"id": rule["id"], "name": rule["name"], "description": rule["description"],
                "createdAt": rule["createdAt"], "updatedAt": rule["updatedAt"],
                "triggerSource": rule["triggerSource"], "triggerType": list(rule["triggerType"]),
                "filters": copy.deepcopy(rule["filters"]), "enabled": rule["enabled"],
                "project": self._project_view(rule["projectId"]),
                "actions": [action_view(a) for a in rule["actions"]]}

    def _issue_view(self, issue: dict[str, Any]) -> dict[str, Any]:
        view = {k: copy.deepcopy(v) for k, v in issue.items()
                if k not in ("seq", "projectIds")}
        view["projects"] = [self._project_view(p) for p in issue["projectIds"]]
        return view

    def _detection_view(self, detection: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in detection.items() if k != "seq"}

    # ---- pagination -----------------------------------------------------------------------

    @staticmethod
    def _cursor(seq: int) -> str:
        return base64.b64encode(f"cursor:{seq}".encode()).decode()

    def _connection(self, records: list[dict[str, Any]], first: int | None, after: str | None,
                    view: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        first = PAGE_DEFAULT if first is None else first
        if first < 0 or first > PAGE_MAX:
            raise bad_input(f"first must be between 0 and {PAGE_MAX}, got {first}")
        records = sorted(records, key=lambda r: r["seq"])
        if after is not None:
            try:
                kind, _, seq = base64.b64decode(after, validate=True).decode().partition(":")
                if kind != "cursor":
                    raise ValueError(after)
                after_seq = int(seq)
            except (ValueError, UnicodeDecodeError):
                raise bad_input(f"invalid cursor {after!r}") from None
            records_after = [r for r in records if r["seq"] > after_seq]
        else:
            records_after = records
        page = records_after[:first]
        edges = [{"cursor": self._cursor(r["seq"]), "node": view(r)} for r in page]
        return {"nodes": [e["node"] for e in edges], "edges": edges,
                "pageInfo": {"hasNextPage": len(records_after) > len(page),
                             "endCursor": edges[-1]["cursor"] if edges else None},
                "totalCount": len(records)}

    # ---- validation helpers ---------------------------------------------------------------

    @staticmethod
    def _name(value: Any, field: str = "name") -> str:
        if not isinstance(value, str) or not value.strip():
            raise bad_input(f"{field} must not be empty")
        if len(value) > 255:
            raise bad_input(f"{field} is longer than 255 characters")
        return value

    def _project_ids(self, ids: list[str] | None, field: str) -> list[str]:
        ids = list(ids or [])
        for pid in ids:
            if pid not in self.projects:
                raise bad_input(f"{field}: unknown project {pid!r}")
        if len(set(ids)) != len(ids):
            raise bad_input(f"{field} has duplicates")
        return ids

    def _find(self, table: dict[str, dict[str, Any]], kind: str, ident: str) -> dict[str, Any]:
        record = table.get(ident)
        if record is None:
            raise not_found(kind, ident)
        return record

    # ---- resolvers: projects, service accounts --------------------------------------------

    def _r_projects(self, first=None, after=None):
        records = [dict(p, seq=i) for i, p in enumerate(self.projects.values(), 1)]
        return self._connection(records, first, after,
                                lambda r: {k: v for k, v in r.items() if k != "seq"})

    def _r_serviceAccount(self, id):
        return self._sa_view(self._find(self.service_accounts, "service account", id))

    def _r_serviceAccounts(self, first=None, after=None, filterBy=None):
        items = list(self.service_accounts.values())
        f = filterBy or {}
        if f.get("type"):
            items = [sa for sa in items if sa["type"] in f["type"]]
        if f.get("search"):
            items = [sa for sa in items if f["search"].lower() in sa["name"].lower()]
        return self._connection(items, first, after, self._sa_view)

    def _r_createServiceAccount(self, input):
        name = self._name(input["name"])
        sa_type = input["type"] or "THIRD_PARTY"
        scopes = list(input.get("scopes") or [])
        for scope in scopes:
            if not SCOPE_PATTERN.match(scope):
                raise bad_input(f"scope {scope!r} is not of the form <action>:<resource>")
        if len(set(scopes)) != len(scopes):
            raise bad_input("scopes has duplicates")
        if sa_type == "THIRD_PARTY" and not scopes:
            raise bad_input("a THIRD_PARTY service account needs at least one scope")
        projects = self._project_ids(input.get("assignedProjectIds"), "assignedProjectIds")
        sa = {"id": str(uuid.uuid4()), "name": name, "clientId": random_string(52),
              "clientSecret": random_string(64), "scopes": scopes, "type": sa_type,
              "createdAt": now_iso(), "lastRotatedAt": None, "assignedProjectIds": projects,
              "seq": self._next_seq()}
        self.service_accounts[sa["id"]] = sa
        return {"serviceAccount": self._sa_view(sa, reveal=True)}

    def _r_deleteServiceAccount(self, input):
        sa = self._find(self.service_accounts, "service account", input["id"])
        del self.service_accounts[sa["id"]]
        self.tokens = {t: i for t, i in self.tokens.items() if i["service_account_id"] != sa["id"]}
        return {"_stub": None}

    def _r_rotateServiceAccountSecret(self, ID):
        sa = self._find(self.service_accounts, "service account", ID)
        sa["clientSecret"] = random_string(64)
        sa["lastRotatedAt"] = now_iso()
        return {"serviceAccount": self._sa_view(sa, reveal=True)}

    # ---- users, roles, login settings -----------------------------------------------------

    def _r_user(self, id):
        return self._user_view(self._find(self.users, "user", id))

    def _r_users(self, first=None, after=None, filterBy=None):
        items = list(self.users.values())
        f = filterBy or {}
        if f.get("source") == "LEGACY":
            items = []  # [G] every sandbox user signs in the MODERN way
        if f.get("search"):
            needle = f["search"].lower()
            items = [u for u in items if needle in u["name"].lower() or needle in u["email"].lower()]
        if f.get("role"):
            items = [u for u in items if u["role"] in f["role"]]
        return self._connection(items, first, after, self._user_view)

    def _r_userRoles(self, first=None, after=None):
        records = [dict(r, seq=i) for i, r in enumerate(self.roles.values(), 1)]
        return self._connection(records, first, after,
                                lambda r: {k: v for k, v in r.items() if k != "seq"})

    def _check_user(self, user: dict[str, Any], except_id: str | None,
                    new_email: bool = True) -> None:
        user["name"] = self._name(user["name"])
        email = user["email"]
        m = EMAIL_PATTERN.match(email or "")
        if m is None:
            raise bad_input(f"email {email!r} is not a valid e-mail address")
        domain = m.group(1).lower()
        if new_email and self.allowed_domains and domain not in self.allowed_domains:
            raise bad_input(f"e-mail domain {domain!r} is not an allowed login domain of this "
                            f"tenant (allowed: {', '.join(self.allowed_domains)}); add it first")
        for other in self.users.values():
            if other["id"] != except_id and other["email"].lower() == email.lower():
                raise bad_input(f"a user with e-mail {email!r} already exists (id {other['id']})")
        role = self.roles.get(user["role"])
        if role is None:
            raise bad_input(f"unknown role {user['role']!r}; query userRoles for the ids")
        user["assignedProjectIds"] = self._project_ids(user["assignedProjectIds"],
                                                       "assignedProjectIds")
        if role["isProjectScoped"] and not user["assignedProjectIds"]:
            raise bad_input(f"role {role['name']!r} is project-scoped: assignedProjectIds required")
        if not role["isProjectScoped"] and user["assignedProjectIds"]:
            raise bad_input(f"role {role['name']!r} is global: assignedProjectIds must be empty")

    def _r_createUser(self, input):
        user = {"id": str(uuid.uuid4()), "name": input["name"], "email": input["email"],
                "role": input["role"], "assignedProjectIds": input.get("assignedProjectIds"),
                "isSuspended": False,
                "sendEmailInvite": input["sendEmailInvite"], "createdAt": now_iso()}
        self._check_user(user, except_id=None)
        user["seq"] = self._next_seq()
        self.users[user["id"]] = user
        return {"user": self._user_view(user)}

    def _r_updateUser(self, input):
        user = self._find(self.users, "user", input["id"])
        patch = input["patch"]
        merged = copy.deepcopy(user)
        for key in ("name", "email", "role"):
            if key in patch:
                if patch[key] is None:
                    raise bad_input(f"patch.{key} cannot be null")
                merged[key] = patch[key]
        if "assignedProjectIds" in patch:
            merged["assignedProjectIds"] = patch["assignedProjectIds"]
        if patch.get("isSuspended") is not None:
            merged["isSuspended"] = patch["isSuspended"]
        # The allowed-domain rule applies to a new address only (it held when it was set).
        self._check_user(merged, except_id=user["id"],
                         new_email=merged["email"].lower() != user["email"].lower())
        self.users[user["id"]] = merged
        return {"user": self._user_view(merged)}

    def _r_deleteUser(self, input):
        user = self._find(self.users, "user", input["id"])
        del self.users[user["id"]]
        return {"_stub": None}

    def _r_loginSettings(self):
        return self._login_settings_view()

    @staticmethod
    def _domain(value: str) -> str:
        domain = (value or "").strip().lower()
        if not DOMAIN_PATTERN.match(domain):
            raise bad_input(f"{value!r} is not a domain name")
        return domain

    def _r_addAllowedLoginDomain(self, input):
        domain = self._domain(input["domain"])
        if domain in self.allowed_domains:
            raise bad_input(f"domain {domain!r} is already allowed")
        self.allowed_domains.append(domain)
        return {"loginSettings": self._login_settings_view()}

    def _r_removeAllowedLoginDomain(self, input):
        domain = self._domain(input["domain"])
        if domain not in self.allowed_domains:
            raise not_found("allowed login domain", domain)
        self.allowed_domains.remove(domain)
        return {"loginSettings": self._login_settings_view()}

    # ---- integrations ---------------------------------------------------------------------

    @staticmethod
    def _headers(headers: list[dict[str, str]] | None, field: str) -> list[dict[str, str]]:
        out = []
        for h in headers or []:
            if not h["key"].strip():
                raise bad_input(f"{field}: header key must not be empty")
            out.append({"key": h["key"], "value": h["value"]})
        return out

    @staticmethod
    def _authorization(auth: dict[str, Any] | None, field: str) -> dict[str, Any] | None:
        if auth is None:
            return None
        user, password, token = auth.get("username"), auth.get("password"), auth.get("token")
        if token and (user or password):
            raise bad_input(f"{field}: give username+password (basic) or token (bearer), not both")
        if token:
            return {"token": token}
        if not user or not password:
            raise bad_input(f"{field}: basic authorization needs both username and password")
        return {"username": user, "password": password}

    @staticmethod
    def _url(url: str, field: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url or ""):
            raise bad_input(f"{field} must be an http(s) URL, got {url!r}")
        return url

    def _check_scope(self, integ: dict[str, Any], prefix: str) -> None:
        if integ["isAccessibleToAllProjects"]:
            if integ["projectId"] is not None:
                raise bad_input(f"{prefix}projectId must be empty when isAccessibleToAllProjects")
        elif integ["projectId"] is None:
            raise bad_input(f"{prefix}projectId is required unless isAccessibleToAllProjects")
        elif integ["projectId"] not in self.projects:
            raise bad_input(f"{prefix}projectId: unknown project {integ['projectId']!r}")

    def _r_integration(self, id):
        return self._integration_view(self._find(self.integrations, "integration", id))

    def _r_integrations(self, first=None, after=None, filterBy=None):
        items = list(self.integrations.values())
        f = filterBy or {}
        if f.get("type"):
            items = [i for i in items if i["type"] in f["type"]]
        if f.get("search"):
            items = [i for i in items if f["search"].lower() in i["name"].lower()]
        return self._connection(items, first, after, self._integration_view)

    def _r_createIntegration(self, input):
        if input["type"] != "WEBHOOK":
            raise bad_input(f"the sandbox emulates WEBHOOK integrations only, not {input['type']}")
        hook = (input["params"] or {}).get("webhook")
        if hook is None:
            raise bad_input("params.webhook is required for a WEBHOOK integration")
        now = now_iso()
        integ = {
            "id": str(uuid.uuid4()), "name": self._name(input["name"]), "type": "WEBHOOK",
            "isAccessibleToAllProjects": bool(input["isAccessibleToAllProjects"]),
            "projectId": input.get("projectId"), "createdAt": now, "updatedAt": now,
            "params": {"webhook": {
                "url": self._url(hook["url"], "params.webhook.url"),
                "isOnPrem": bool(hook["isOnPrem"]),
                "authorization": self._authorization(hook.get("authorization"),
                                                     "params.webhook.authorization"),
                "headers": self._headers(hook.get("headers"), "params.webhook.headers")}},
        }
        self._check_scope(integ, "")
        integ["seq"] = self._next_seq()
        self.integrations[integ["id"]] = integ
        return {"integration": self._integration_view(integ)}

    def _r_updateIntegration(self, input):
        integ = self._find(self.integrations, "integration", input["id"])
        patch = input["patch"]
        merged = copy.deepcopy(integ)
        if "name" in patch:
            merged["name"] = self._name(patch["name"], "patch.name")
        hook_patch = (patch.get("params") or {}).get("webhook")
        if hook_patch:
            hook = merged["params"]["webhook"]
            if "url" in hook_patch:
                hook["url"] = self._url(hook_patch["url"], "patch.params.webhook.url")
            if "isOnPrem" in hook_patch:
                hook["isOnPrem"] = bool(hook_patch["isOnPrem"])
            if "authorization" in hook_patch:
                hook["authorization"] = self._authorization(
                    hook_patch["authorization"], "patch.params.webhook.authorization")
            if "headers" in hook_patch:
                hook["headers"] = self._headers(hook_patch["headers"],
                                                "patch.params.webhook.headers")
        merged["updatedAt"] = now_iso()
        self.integrations[integ["id"]] = merged
        return {"integration": self._integration_view(merged)}

    def _r_deleteIntegration(self, input):
        integ = self._find(self.integrations, "integration", input["id"])
        users = self._rules_using(integ["id"])
        if users:
            raise bad_input(f"integration {integ['id']!r} is used by automation rules "
                            f"{[r['id'] for r in users]}; delete or change them first")
        del self.integrations[integ["id"]]
        return {"_stub": None}

    # ---- automation rules -----------------------------------------------------------------

    @staticmethod
    def _filters(filters: Any, field: str) -> dict[str, Any] | None:
        if filters is None:
            return None
        if not isinstance(filters, dict):
            raise bad_input(f"{field} must be a JSON object, got {type(filters).__name__}")
        unknown = set(filters) - FILTER_KEYS
        if unknown:
            raise bad_input(f"{field}: unknown filter key(s) {sorted(unknown)}; the sandbox "
                            f"knows {sorted(FILTER_KEYS)}")
        if "severity" in filters:
            sev = filters["severity"]
            if not isinstance(sev, list) or not sev or any(s not in SEVERITIES for s in sev):
                raise bad_input(f"{field}.severity must be a non-empty list of {SEVERITIES}")
            if len(set(sev)) != len(sev):
                raise bad_input(f"{field}.severity has duplicates")
        return copy.deepcopy(filters)

    def _actions(self, actions: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
        if not actions:
            raise bad_input(f"{field} needs at least one action")
        out = []
        for i, action in enumerate(actions):
            where = f"{field}[{i}]"
            integ = self.integrations.get(action["integrationId"])
            if integ is None:
                raise bad_input(f"{where}.integrationId: integration "
                                f"{action['integrationId']!r} not found")
            if action["actionTemplateType"] != "WEBHOOK":
                raise bad_input(f"{where}: the sandbox runs WEBHOOK actions only")
            if integ["type"] != "WEBHOOK":
                raise bad_input(f"{where}: a WEBHOOK action needs a WEBHOOK integration")
            hook = (action["actionTemplateParams"] or {}).get("webhook")
            if hook is None:
                raise bad_input(f"{where}.actionTemplateParams.webhook is required")
            if not hook["body"].strip():
                raise bad_input(f"{where}.actionTemplateParams.webhook.body must not be empty")
            out.append({"id": str(uuid.uuid4()), "integrationId": integ["id"],
                        "actionTemplateType": "WEBHOOK",
                        "actionTemplateParams": {"webhook": {
                            "body": hook["body"],
                            "headers": self._headers(hook.get("headers"), f"{where}.headers")}}})
        return out

    def _check_rule(self, rule: dict[str, Any], prefix: str) -> None:
        triggers = rule["triggerType"]
        if not triggers:
            raise bad_input(f"{prefix}triggerType needs at least one value")
        if len(set(triggers)) != len(triggers):
            raise bad_input(f"{prefix}triggerType has duplicates")
        if rule["triggerSource"] == "DETECTIONS" and triggers != ["CREATED"]:
            raise bad_input(f"{prefix}triggerType of a DETECTIONS rule must be [CREATED]")
        if rule["projectId"] is not None and rule["projectId"] not in self.projects:
            raise bad_input(f"{prefix}projectId: unknown project {rule['projectId']!r}")

    def _r_automationRule(self, id):
        return self._rule_view(self._find(self.rules, "automation rule", id))

    def _r_automationRules(self, first=None, after=None, filterBy=None):
        items = list(self.rules.values())
        f = filterBy or {}
        if f.get("search"):
            items = [r for r in items if f["search"].lower() in r["name"].lower()]
        if f.get("enabled") is not None:
            items = [r for r in items if r["enabled"] == f["enabled"]]
        if f.get("triggerSource"):
            items = [r for r in items if r["triggerSource"] in f["triggerSource"]]
        if f.get("integrationId"):
            items = [r for r in items
                     if any(a["integrationId"] in f["integrationId"] for a in r["actions"])]
        return self._connection(items, first, after, self._rule_view)

    def _r_createAutomationRule(self, input):
        now = now_iso()
        rule = {"id": str(uuid.uuid4()), "name": self._name(input["name"]),
                "description": input.get("description"),
                "enabled": True if input["enabled"] is None else input["enabled"],
                "triggerSource": input["triggerSource"], "triggerType": list(input["triggerType"]),
                "filters": self._filters(input.get("filters"), "filters"),
                "projectId": input.get("projectId"),
                "actions": self._actions(input["actions"], "actions"),
                "createdAt": now, "updatedAt": now}
        self._check_rule(rule, "")
        rule["seq"] = self._next_seq()
        self.rules[rule["id"]] = rule
        return {"automationRule": self._rule_view(rule)}

    def _r_updateAutomationRule(self, input):
        rule = self._find(self.rules, "automation rule", input["id"])
        patch = input["patch"]
        merged = copy.deepcopy(rule)
        for key in ("enabled", "triggerSource", "triggerType", "actions"):
            if key in patch and patch[key] is None:
                raise bad_input(f"patch.{key} cannot be null")
        if "name" in patch:
            merged["name"] = self._name(patch["name"], "patch.name")
        for key in ("description", "enabled", "triggerSource"):
            if key in patch:
                merged[key] = patch[key]
        if "triggerType" in patch:
            merged["triggerType"] = list(patch["triggerType"])
        if "filters" in patch:
            merged["filters"] = self._filters(patch["filters"], "patch.filters")
        if "actions" in patch:
            merged["actions"] = self._actions(patch["actions"], "patch.actions")
        self._check_rule(merged, "patch.")
        merged["updatedAt"] = now_iso()
        self.rules[rule["id"]] = merged
        return {"automationRule": self._rule_view(merged)}

    def _r_deleteAutomationRule(self, input):
        rule = self._find(self.rules, "automation rule", input["id"])
        del self.rules[rule["id"]]
        return {"_stub": None}

    # ---- issues and detections (read-only through GraphQL) --------------------------------

    def _r_issues(self, first=None, after=None, filterBy=None):
        items = list(self.issues.values())
        f = filterBy or {}
        if f.get("severity"):
            items = [i for i in items if i["severity"] in f["severity"]]
        if f.get("status"):
            items = [i for i in items if i["status"] in f["status"]]
        return self._connection(items, first, after, self._issue_view)

    def _r_detections(self, first=None, after=None, filterBy=None):
        items = list(self.detections.values())
        f = filterBy or {}
        if f.get("severity"):
            items = [d for d in items if d["severity"] in f["severity"]]
        return self._connection(items, first, after, self._detection_view)

    # ---- admin hooks (/_admin/wiz/...) ----------------------------------------------------

    def admin_settings(self, body: Any) -> tuple[int, dict[str, Any]]:
        """GET (body None) or PUT {token_ttl_seconds?, unauthenticated_http_status?,
        refuse_service_account_tokens?, govcloud?}."""
        with self.lock:
            if body is None:
                return 200, dict(self.settings)
            if not isinstance(body, dict):
                return 400, {"error": "body must be a JSON object"}
            unknown = set(body) - set(self.settings)
            if unknown:
                return 400, {"error": f"unknown settings {sorted(unknown)}; "
                                      f"known: {sorted(self.settings)}"}
            refuse = body.get("refuse_service_account_tokens",
                              self.settings["refuse_service_account_tokens"])
            if not isinstance(refuse, bool):
                return 400, {"error": "refuse_service_account_tokens must be true or false"}
            govcloud = body.get("govcloud", self.settings["govcloud"])
            if not isinstance(govcloud, bool):
                return 400, {"error": "govcloud must be true or false"}
            ttl = body.get("token_ttl_seconds", self.settings["token_ttl_seconds"])
            status = body.get("unauthenticated_http_status",
                              self.settings["unauthenticated_http_status"])
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
                return 400, {"error": "token_ttl_seconds must be a positive number"}
            if status not in (200, 401):
                return 400, {"error": "unauthenticated_http_status must be 200 or 401"}
            self.settings.update(token_ttl_seconds=float(ttl), unauthenticated_http_status=status,
                                 refuse_service_account_tokens=refuse, govcloud=govcloud)
            return 200, dict(self.settings)

    def admin_create_issue(self, body: Any) -> tuple[int, dict[str, Any]]:
        """{severity, title, status?, type?, project_ids?, resource?{id,name,type,cloudPlatform}}"""
        problem = self._admin_common(body, {"status", "type", "project_ids", "resource"})
        if problem:
            return 400, {"error": problem}
        status = body.get("status", "OPEN")
        issue_type = body.get("type", "THREAT_DETECTION")
        if status not in ISSUE_STATUSES:
            return 400, {"error": f"status must be one of {ISSUE_STATUSES}"}
        if issue_type not in ISSUE_TYPES:
            return 400, {"error": f"type must be one of {ISSUE_TYPES}"}
        project_ids = body.get("project_ids", [])
        resource = body.get("resource")
        if resource is not None and not isinstance(resource, dict):
            return 400, {"error": "resource must be an object"}
        with self.lock:
            if not isinstance(project_ids, list) or any(p not in self.projects
                                                        for p in project_ids):
                return 400, {"error": f"project_ids must list known projects {list(self.projects)}"}
            now = now_iso()
            issue_id = str(uuid.uuid4())
            resource = resource or {}
            issue = {"id": issue_id, "title": body["title"], "type": issue_type,
                     "status": status, "severity": body["severity"],
                     "createdAt": now, "updatedAt": now,
                     "sourceRule": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, body["title"])),
                                    "name": body["title"]},
                     "entitySnapshot": {
                         "id": str(resource.get("id", f"resource-{issue_id[:8]}")),
                         "name": str(resource.get("name", "sandbox-resource")),
                         "type": str(resource.get("type", "VIRTUAL_MACHINE")),
                         "cloudPlatform": resource.get("cloudPlatform", "AWS")},
                     "projectIds": list(project_ids), "seq": self._next_seq()}
            self.issues[issue_id] = issue
            deliveries = self._fire("ISSUES", issue)
            return 201, {"issue": self._issue_view(issue), "deliveries": deliveries}

    def admin_create_detection(self, body: Any) -> tuple[int, dict[str, Any]]:
        """{severity, title, description?, cloud_platform?}"""
        problem = self._admin_common(body, {"description", "cloud_platform"})
        if problem:
            return 400, {"error": problem}
        with self.lock:
            detection = {"id": str(uuid.uuid4()), "title": body["title"],
                         "description": body.get("description"), "severity": body["severity"],
                         "createdAt": now_iso(),
                         "cloudPlatform": body.get("cloud_platform", "AWS"),
                         "seq": self._next_seq()}
            self.detections[detection["id"]] = detection
            deliveries = self._fire("DETECTIONS", detection)
            return 201, {"detection": self._detection_view(detection), "deliveries": deliveries}

    @staticmethod
    def _admin_common(body: Any, optional: set[str]) -> str | None:
        if not isinstance(body, dict):
            return "body must be a JSON object"
        unknown = set(body) - {"severity", "title"} - optional
        if unknown:
            return f"unknown fields {sorted(unknown)}"
        if body.get("severity") not in SEVERITIES:
            return f"severity must be one of {SEVERITIES}"
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            return "title must be a non-empty string"
        return None

    def admin_expire_tokens(self) -> int:
        """Every token issued so far expires now (clients must fetch a new one)."""
        with self.lock:
            now = time.time()
            live = [t for t in self.tokens.values() if t["expires_at"] > now]
            for info in live:
                info["expires_at"] = now
            return len(live)

    def admin_console_edit(self, body: Any) -> tuple[int, dict[str, Any]]:
        """A service account's scopes, or an integration limited to one project, changed
        by a person in the Wiz console."""
        if not isinstance(body, dict) or len(body) != 2:
            return 400, {"error": 'body must be {"serviceAccount", "scopes"} or '
                                  '{"integration", "projectId"}'}
        with self.lock:
            if "serviceAccount" in body and isinstance(body.get("scopes"), list):
                sa = self.service_accounts.get(body["serviceAccount"])
                if sa is None:
                    return 404, {"error": f"no service account {body['serviceAccount']!r}"}
                bad = [x for x in body["scopes"]
                       if not isinstance(x, str) or not SCOPE_PATTERN.match(x)]
                if bad:
                    return 400, {"error": f"scopes not of the form <action>:<resource>: {bad}"}
                sa["scopes"] = list(body["scopes"])
                return 200, {"edited": sa["id"]}
            if "integration" in body and "projectId" in body:
                integ = self.integrations.get(body["integration"])
                if integ is None:
                    return 404, {"error": f"no integration {body['integration']!r}"}
                if body["projectId"] not in self.projects:
                    return 400, {"error": f"unknown project {body['projectId']!r}"}
                integ.update(isAccessibleToAllProjects=False, projectId=body["projectId"])
                return 200, {"edited": integ["id"]}
            return 400, {"error": 'body must be {"serviceAccount", "scopes"} or '
                                  '{"integration", "projectId"}'}

    def admin_deliveries(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.deliveries)

    # ---- webhook delivery -----------------------------------------------------------------

    def _template_context(self, source: str, rule: dict[str, Any],
                          subject: dict[str, Any]) -> dict[str, Any]:
        """The variables a body template sees. Names as the public example body uses them
        (AxtonGrams examples/resources/wiz_automation_rule_aws_sns/resource.tf): trigger
        fields, issue.{id,status,severity,createdAt,projects[].name}, issue.entitySnapshot.
        {providerId,name,nativeType,cloudPlatform,...}, issue.control.{id,name,...}. Which
        sandbox value fills each is [G]; `issue.title` and the whole `detection` object (for
        the guessed DETECTIONS source) are [G]."""
        context: dict[str, Any] = {"triggerSource": source, "triggerType": "Created",
                                   "ruleId": rule["id"], "ruleName": rule["name"]}
        if source == "DETECTIONS":
            context["detection"] = {k: copy.deepcopy(v) for k, v in subject.items()
                                    if k != "seq"}
            return context
        snapshot = subject["entitySnapshot"]
        context["issue"] = {
            "id": subject["id"], "title": subject["title"], "status": subject["status"],
            "severity": subject["severity"], "type": subject["type"],
            "createdAt": subject["createdAt"],
            "projects": [dict(self.projects[p]) for p in subject["projectIds"]],
            "entitySnapshot": {"providerId": snapshot["id"], "name": snapshot["name"],
                               "nativeType": snapshot["type"],
                               "cloudPlatform": snapshot["cloudPlatform"]},
            "control": {"id": subject["sourceRule"]["id"],
                        "name": subject["sourceRule"]["name"],
                        "severity": subject["severity"]}}
        return context

    def _fire(self, source: str, subject: dict[str, Any]) -> list[dict[str, Any]]:
        """Deliveries (recorded as pending) of every matching enabled rule; call under lock."""
        scheduled = []
        for rule in sorted(self.rules.values(), key=lambda r: r["seq"]):
            if not rule["enabled"] or rule["triggerSource"] != source \
                    or "CREATED" not in rule["triggerType"]:
                continue
            severities = (rule["filters"] or {}).get("severity")
            if severities is not None and subject["severity"] not in severities:
                continue
            context = self._template_context(source, rule, subject)
            for action in rule["actions"]:
                integ = self.integrations.get(action["integrationId"])
                if integ is None:
                    continue
                hook = integ["params"]["webhook"]
                body = render_mustache(action["actionTemplateParams"]["webhook"]["body"],
                                       [context])
                headers = {"Content-Type": "application/json",
                           "User-Agent": "sandbox-wiz-webhook/1"}
                for h in hook["headers"] + action["actionTemplateParams"]["webhook"]["headers"]:
                    headers[h["key"]] = h["value"]
                auth = hook.get("authorization")
                if auth and auth.get("token"):
                    headers["Authorization"] = f"Bearer {auth['token']}"
                elif auth:
                    cred = base64.b64encode(
                        f"{auth['username']}:{auth['password']}".encode()).decode()
                    headers["Authorization"] = f"Basic {cred}"
                delivery = {"id": str(uuid.uuid4()), "rule_id": rule["id"],
                            "action_id": action["id"], "integration_id": integ["id"],
                            "url": hook["url"], "trigger": {"source": source, "type": "CREATED"},
                            "subject_id": subject["id"], "severity": subject["severity"],
                            "status": "pending", "status_code": None, "error": None,
                            "created_at": now_iso(), "finished_at": None, "body": body}
                self.deliveries.append(delivery)
                scheduled.append({"id": delivery["id"], "rule_id": rule["id"],
                                  "integration_id": integ["id"]})
                threading.Thread(target=self._deliver, args=(delivery, headers), daemon=True,
                                 name=f"wiz-webhook-{delivery['id'][:8]}").start()
        return scheduled

    def _deliver(self, delivery: dict[str, Any], headers: dict[str, str]) -> None:
        req = urllib.request.Request(delivery["url"], data=delivery["body"].encode(),
                                     headers=headers, method="POST")
        code, error = None, None
        try:
            with urllib.request.urlopen(req, timeout=DELIVERY_TIMEOUT) as resp:
                code = resp.status
                resp.read()
        except urllib.error.HTTPError as err:
            code = err.code
        except (urllib.error.URLError, OSError, ValueError) as err:
            error = f"{type(err).__name__}: {err}"
        with self.lock:
            delivery.update(status_code=code, error=error, finished_at=now_iso(),
                            status="delivered" if code is not None and 200 <= code < 300
                            else "failed")

    # ---- routes ---------------------------------------------------------------------------

    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("wiz", __name__)
        bp.add_url_rule("/oauth/token", "token", self._token_endpoint, methods=["POST"])
        bp.add_url_rule("/graphql", "graphql", self._graphql_endpoint, methods=["POST"])
        return bp


# ---- the Workbench health check of a "wiz" device (WizEmulator.health_checks) -------------

HEALTH_QUERIES = {  # product -> (root field, query); needs read:issues / read:detections
    "cloud": ("issues", "query ExpelHealthCheck { issues(first: 1) { totalCount } }"),
    "defend": ("detections", "query ExpelHealthCheck { detections(first: 1) { totalCount } }"),
}


GOVCLOUD_PENDING = ("Wiz GovCloud: event ingestion is not enabled yet. Expel enables it by hand "
                    "once the GovCloud legal addendum is complete (contact your Customer Success "
                    "Manager or Expel Support).")


def check_device_health(device: dict[str, Any], ctx: Any) -> tuple[str, dict[str, Any]]:
    """Healthy when the device's client credentials get a token from the Wiz emulator
    (in process: Workbench knows the auth service) and a one-item issues (cloud) or
    detections (defend) query over HTTP to the device's api_endpoint_url succeeds.
    The GraphQL call is a real request, so it shows in /_admin/calls and meets faults."""
    spec = device.get("device_spec") or {}
    wiz: WizEmulator = ctx.emulator("wiz")
    checks: list[dict[str, Any]] = []

    def unhealthy(name: str, detail: str) -> tuple[str, dict[str, Any]]:
        checks.append({"name": name, "result": "failed", "detail": detail})
        return "unhealthy", {"checks": checks}

    try:
        token = wiz.issue_token(str(spec.get("client_id", "")), str(spec.get("client_secret", "")))
    except OAuthError as err:
        return unhealthy("wiz_token", f"{err.error}: {err.description} (client_id "
                                      f"{spec.get('client_id')!r})")
    checks.append({"name": "wiz_token", "result": "ok"})
    field, query = HEALTH_QUERIES.get(spec.get("product", "cloud"), HEALTH_QUERIES["cloud"])
    req = urllib.request.Request(
        str(spec.get("api_endpoint_url", "")), method="POST",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "sandbox-workbench-health",
                 "Authorization": f"{token['token_type']} {token['access_token']}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = json.loads(resp.read().decode() or "null")
    except urllib.error.HTTPError as err:
        return unhealthy("wiz_graphql", f"HTTP {err.code} from {req.full_url}")
    except (urllib.error.URLError, OSError, ValueError) as err:
        return unhealthy("wiz_graphql", f"{type(err).__name__}: {err} ({req.full_url})")
    if not isinstance(body, dict):
        return unhealthy("wiz_graphql", f"not a GraphQL response: {body!r}")
    if body.get("errors"):
        first = body["errors"][0]
        code = (first.get("extensions") or {}).get("code")
        return unhealthy("wiz_graphql", f"{code}: {first.get('message')}")
    if not isinstance(body.get("data"), dict) or body["data"].get(field) is None:
        return unhealthy("wiz_graphql", f"no {field} in the response")
    checks.append({"name": "wiz_graphql", "result": "ok", "query": field})
    with wiz.lock:
        govcloud = wiz.settings["govcloud"]
    if govcloud and not device.get("ingestion_enabled"):
        # The guide (Wiz, step 2): in GovCloud a legal addendum comes first, then "Expel will
        # manually enable event ingestion for the integration and the device will appear
        # healthy". [G] Workbench's wording of that state is not public; this is the sandbox's.
        return unhealthy("event_ingestion", GOVCLOUD_PENDING)
    return "healthy", {"checks": checks}
