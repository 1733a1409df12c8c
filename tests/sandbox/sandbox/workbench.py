"""Expel Workbench emulator: JSON:API under /api/v2 (organizations, plugins, security_devices,
remediation_action_settings: see remediation.py).

Shapes follow Expel's Python client pyexclient (PyPI, `pyexclient/workbench.py`; see
docs/guides/api-assumptions.md#expel-workbench). Strict on purpose: Bearer auth on every route,
JSON:API documents only, unknown/read-only attributes and wrong types are 422 with
source.pointer, unknown query parameters are 400, duplicate device names in an organization
are 409.

Listings take what Expel's client sends [V pyexclient workbench.py, `search`, `sort`,
`BaseResourceObject.__iter__`]: `page[limit]`, `sort` repeated with "+"/"-" prefixes (its
default `sort=+created_at&sort=+id` on every search); `links.next` is an absolute URL that
keeps every query parameter, which pyexclient follows as given; an unknown sort field is 400.

Where the real behaviour is unknown ([G] in docs/guides/api-assumptions.md) the choice made
here is stated:
- the plugin catalogue (slugs, device_spec fields) is data in plugins.json, labelled a guess;
- device_spec fields marked writeOnly (secrets) are never returned: they are left out of
  `device_spec` on every read;
- PATCH replaces `device_spec` as a whole, except that secrets left out keep their stored
  value while the plugin_slug stays the same (so a non-secret repair needs no rotation);
- one API key serves several organizations: the seeded one (--org-id/--org-name) and any
  added through POST /_admin/workbench/organizations (gone again after /_admin/reset);
  `GET /organizations` lists them all. The `organization` relationship is required on create
  and must be one of them; a device never moves to another organization;
- soft delete [G] (pyexclient `workbench.py` lists `deleted_at` among the device attributes):
  POST /_admin/workbench/security_devices/<id>/soft-delete sets `deleted_at` as Workbench
  would. A soft-deleted device is still returned by GET and by every list and filter (the
  client must leave it alone), frees its name (a new device may take it), and answers 404 to
  PATCH and DELETE;
- a device with plugin_slug "wiz" gets read-only attributes webhook_url, webhook_username and
  webhook_password (the guide's "Webhook credentials", shown on every read as the UI's Edit
  page shows them); POST <webhook_url> with that basic auth records an alert
  (GET /_admin/workbench/alerts). The URL path /api/v2/webhooks/wiz/<device id> is a guess.

Health checks run `delay_seconds` after each create and PATCH (--health-delay by default).
GET/PUT /_admin/workbench/health also sets `unhealthy_first_checks`: the next N checks of
`aws` devices answer "unhealthy" with the AssumeRole refusal that real Workbench reports while
a new role propagates through IAM, without running the real check [G: Workbench's wording is
not public; this is the sandbox check's own wording for an AccessDenied].
"""

from __future__ import annotations

import copy
import hmac
import json
import secrets
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import Blueprint, Request, Response, jsonify, request

from . import health, jsonapi, schema
from .awshealth import check_aws_cloudtrail
from .config import SandboxConfig
from .emulator import Emulator, HealthCheck
from .jsonapi import ApiError, error_object
from .remediation import RemediationSettings

PLUGINS_FILE = Path(__file__).with_name("plugins.json")

DEVICE_TYPES = ["ENDPOINT", "NETWORK", "SIEM", "OTHER", "CLOUD"]
TASK_SOURCES = ["CUSTOMER_PREMISE", "EXPEL_TASKPOOL"]

# Writable attributes of security_devices and the JSON Schema of each.
DEVICE_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "location": {"type": ["string", "null"], "maxLength": 255},
    "device_type": {"type": "string", "enum": DEVICE_TYPES},
    "plugin_slug": {"type": ["string", "null"]},
    "device_spec": {"type": ["object", "null"]},
    "properties": {"type": ["object", "null"]},
    "task_source": {"type": ["string", "null"], "enum": TASK_SOURCES + [None]},
    "no_alert_threshold_hours": {"type": ["number", "null"]},
}
REQUIRED_ON_CREATE = ("name", "device_type")
READ_ONLY_ATTRIBUTES = {
    "status", "status_details", "status_updated_at", "is_verifying_status",
    "has_console_credentials", "has_two_factor_secret", "deleted_at", "created_at", "updated_at",
    "webhook_url", "webhook_username", "webhook_password",
}
WEBHOOK_ATTRIBUTES = ("webhook_url", "webhook_username", "webhook_password")
DEVICE_FILTERS = {"name", "plugin_slug", "device_type", "location", "organization.id"}
# Sortable fields: `id` and every attribute pyexclient's SecurityDevices table does not mark
# "no-sort" (device_spec, properties and status_details are) [V pyexclient workbench.py].
DEVICE_SORTS = {
    "id", "created_at", "deleted_at", "device_type", "has_console_credentials",
    "has_two_factor_secret", "is_verifying_status", "location", "name",
    "no_alert_threshold_hours", "plugin_slug", "status", "status_updated_at", "task_source",
    "updated_at",
}
# pyexclient's default sort (+created_at, +id) is sent on every search, so every listing
# takes it [V]; plugins carry no created_at: those sort as all-equal on it.
ORGANIZATION_SORTS = {"id", "name", "short_name", "created_at", "updated_at"}
PLUGIN_SORTS = {"id", "created_at", "plugin_slug", "display_name", "vendor_name"}
TOP_LEVEL_KEYS = {"data", "meta", "jsonapi", "id"}  # pyexclient adds a top-level "id" on PATCH
DATA_KEYS = {"type", "id", "attributes", "relationships", "meta"}


def resource_field(item: dict[str, Any], name: str) -> Any:
    """A field to sort a stored record or resource by: its id or one of its attributes."""
    return item["id"] if name == "id" else item["attributes"].get(name)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_organization(org_id: str, name: str, created_at: str) -> dict[str, Any]:
    return {
        "id": org_id,
        "attributes": {
            "name": name,
            "short_name": "".join(w[0] for w in name.split()).upper()[:8] or "ORG",
            "created_at": created_at,
            "updated_at": created_at,
        },
    }


def load_plugins(path: Path = PLUGINS_FILE) -> list[dict[str, Any]]:
    catalogue = json.loads(path.read_text())
    plugins = catalogue["plugins"]
    for plugin in plugins:
        slug = plugin["attributes"]["plugin_slug"]
        schema.check_schema(plugin["attributes"]["device_spec_json"], f"plugins.json:{slug}")
    return plugins


# What PUT /_admin/workbench/security_devices/<id>/status accepts.
DEVICE_STATUSES = {"healthy", "unhealthy", "health_checks_not_supported", None}


class WorkbenchEmulator(Emulator):
    name = "workbench"
    prefix = "/api/v2"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.health_context = health.HealthContext(config)
        self.lock = threading.RLock()
        self.devices: dict[str, dict[str, Any]] = {}
        self.remediation = RemediationSettings(self, now_iso)
        self.alerts: list[dict[str, Any]] = []  # received through Wiz webhooks
        # /_admin/workbench/health: check delay, and N first aws checks forced unhealthy
        self.health_delay = config.health_delay
        self.unhealthy_first_checks = 0
        self.unhealthy_remaining = 0
        self.plugins = load_plugins()
        self.plugins_by_slug = {p["attributes"]["plugin_slug"]: p for p in self.plugins}
        self.seeded_organization = new_organization(config.org_id, config.org_name,
                                                    "2023-06-01T00:00:00.000Z")
        # slug -> the device_spec_json GET /plugins shows instead of the catalogue's
        # (PUT /_admin/workbench/plugins/<slug>/published-schema); validation keeps the latter.
        self.published_schemas: dict[str, Any] = {}
        # Organizations the API key serves, in the order they were added.
        self.organizations: dict[str, dict[str, Any]] = {}
        self._seed_organizations()
        self.blueprint = self._build_blueprint()

    # ---- Emulator interface -------------------------------------------------------------

    def check_request(self, req: Request) -> Response | None:
        if req.path.startswith(f"{self.prefix}/webhooks/"):
            return None  # basic auth with the device's webhook credentials, in the handler
        auth = req.headers.get("Authorization", "")
        if not auth.strip():
            return self.error_response(
                401, "missing Authorization header; send 'Authorization: Bearer <api key>'")
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.config.api_key:
            return self.error_response(401, "invalid API key")
        if req.headers.get("Accept") and req.accept_mimetypes.best_match(
                ["application/vnd.api+json", "application/json"]) is None:
            return self.error_response(406, "this API answers application/vnd.api+json")
        return None

    def error_response(self, status: int, detail: str,
                       headers: dict[str, str] | None = None) -> Response:
        return jsonapi.errors_response(status, [error_object(status, detail)], headers)

    def _seed_organizations(self) -> None:
        self.organizations = {self.config.org_id: copy.deepcopy(self.seeded_organization)}

    def reset(self) -> None:
        with self.lock:
            self._seed_organizations()
            self.published_schemas.clear()
            self.devices.clear()
            self.remediation.reset()
            self.alerts.clear()
            self.health_delay = self.config.health_delay
            self.unhealthy_first_checks = self.unhealthy_remaining = 0

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "organizations": [copy.deepcopy(o) for o in self.organizations.values()],
                "security_devices": [
                    {"id": r["id"], "organization_id": r["organization_id"],
                     "attributes": copy.deepcopy(r["attributes"])}
                    for r in self.devices.values()
                ],
                "remediation_action_settings": self.remediation.dump(),
                "alerts": copy.deepcopy(self.alerts),
            }

    def list_alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.alerts)

    def _sync_webhook_credentials(self, attrs: dict[str, Any], device_id: str) -> None:
        """Wiz devices give back webhook credentials (kept across PATCHes); others have none."""
        if attrs.get("plugin_slug") != "wiz":
            for key in WEBHOOK_ATTRIBUTES:
                attrs.pop(key, None)
        elif not attrs.get("webhook_password"):
            attrs["webhook_url"] = f"{self._base()}/webhooks/wiz/{device_id}"
            attrs["webhook_username"] = f"wiz-{device_id[:8]}"
            attrs["webhook_password"] = secrets.token_urlsafe(24)

    def health_checks(self) -> dict[str, HealthCheck]:
        # The AWS plugin's check reads moto (no emulator of its own).
        return {"aws": check_aws_cloudtrail}

    def client_env(self, base_url: str) -> dict[str, str]:
        return {"EXPEL_WORKBENCH_URL": base_url, "EXPEL_API_KEY": self.config.api_key,
                "EXPEL_ORGANIZATION_ID": self.config.org_id}

    def admin_blueprint(self) -> Blueprint:
        """/_admin/workbench:

  PUT    /_admin/workbench/security_devices/<id>/status
                                        body {"status": "healthy|unhealthy|...", "status_details": {}}
                                        204, or 404 (sets health out of band)
  GET    /_admin/workbench/alerts       200 {"alerts": [...]} received by Wiz webhook devices
  POST   /_admin/workbench/organizations
                                        body {"name": "Globex", "id"?: "<guid>"} (id generated
                                        when left out): 201 {"id", "attributes": {"name", ...}},
                                        one more organization served to the API key (listed by
                                        GET /api/v2/organizations, usable in a device's
                                        organization relationship); 400 {"error"} on a bad body
                                        or an id already served. POST /_admin/reset leaves only
                                        the seeded organization (--org-id).
  POST   /_admin/workbench/security_devices/<id>/soft-delete
                                        200 {"id", "deleted_at"}: sets the device's deleted_at
                                        as a Workbench soft delete would (kept when already
                                        set); the device stays readable and listed, its name is
                                        free again, PATCH and DELETE answer 404. 404 {"error"}.
  POST   /_admin/workbench/security_devices/<id>/enable-ingestion
                                        200 {"id", "ingestion_enabled": true}: what Expel does
                                        by hand for a Wiz GovCloud device once the legal
                                        addendum is complete (the guide, Wiz step 2); the
                                        device's health is checked again at once. Until then a
                                        device of a GovCloud tenant (PUT /_admin/wiz/settings
                                        {"govcloud": true}) is unhealthy. 404 {"error"}.
  PUT    /_admin/workbench/plugins/<slug>/published-schema
                                        body {"device_spec_json": {...}}: what GET /api/v2/plugins
                                        shows as that plugin's schema (e.g. {}, as pyexclient's
                                        docs example shows it); the emulator keeps validating
                                        devices against its own schema. 200 {"plugin_slug",
                                        "device_spec_json"}; 404; 400. Until /_admin/reset.
  GET|PUT /_admin/workbench/health      {"unhealthy_first_checks": N, "delay_seconds": 0.2,
                                        "unhealthy_remaining": n (read-only)}; PUT any subset:
                                        200 as GET, or 400 {"error"} (nothing changed).
                                        delay_seconds: from a device create/PATCH to its health
                                        result (default --health-delay). unhealthy_first_checks:
                                        the next N health checks of `aws` devices (counted from
                                        the PUT) answer "unhealthy", status_details {"checks":
                                        [{"name": "assume_role", "result": "failed", ...}],
                                        "reason": "cannot assume role <role_arn>: AccessDenied"}
                                        without running the real check (what Workbench reports
                                        while a new role propagates through IAM); later ones
                                        run the real check. POST /_admin/reset restores 0 and
                                        --health-delay.
"""
        bp = Blueprint("workbench_admin", __name__)

        @bp.put("/security_devices/<device_id>/status")
        def force_device_status(device_id: str):
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict) or body.get("status", "") not in DEVICE_STATUSES:
                return jsonify(error=f"status must be one of "
                                     f"{sorted(s for s in DEVICE_STATUSES if s)} or null"), 400
            details = body.get("status_details", {})
            if not isinstance(details, dict):
                return jsonify(error="status_details must be an object"), 400
            if not self.force_status(device_id, body["status"], details):
                return jsonify(error=f"no security device {device_id}"), 404
            return Response(status=204)

        @bp.route("/health", methods=["GET", "PUT"])
        def health_settings():
            body = None
            if request.method == "PUT":
                body = request.get_json(force=True, silent=True)
                if body is None:
                    return jsonify(error="body must be a JSON object"), 400
            try:
                return jsonify(self.health_settings(body))
            except ValueError as err:
                return jsonify(error=str(err)), 400

        @bp.post("/organizations")
        def add_organization():
            try:
                return jsonify(self.add_organization(
                    request.get_json(force=True, silent=True))), 201
            except ValueError as err:
                return jsonify(error=str(err)), 400

        @bp.post("/security_devices/<device_id>/soft-delete")
        def soft_delete(device_id: str):
            done = self.soft_delete(device_id)
            if done is None:
                return jsonify(error=f"no security device {device_id}"), 404
            return jsonify(done)

        @bp.post("/security_devices/<device_id>/enable-ingestion")
        def enable_ingestion(device_id: str):
            if not self.enable_ingestion(device_id):
                return jsonify(error=f"no security device {device_id}"), 404
            return jsonify(id=device_id, ingestion_enabled=True)

        @bp.put("/plugins/<slug>/published-schema")
        def published_schema(slug: str):
            try:
                return jsonify(self.publish_schema(
                    slug, request.get_json(force=True, silent=True)))
            except LookupError as err:
                return jsonify(error=str(err)), 404
            except ValueError as err:
                return jsonify(error=str(err)), 400

        @bp.get("/alerts")
        def alerts():
            return jsonify(alerts=self.list_alerts())

        return bp

    # ---- admin hooks ----------------------------------------------------------------------

    def force_status(self, device_id: str, status: str, details: dict[str, Any]) -> bool:
        """Set a device's health out of band (cancels a pending check)."""
        with self.lock:
            record = self.devices.get(device_id)
            if record is None:
                return False
            record["generation"] += 1
            attrs = record["attributes"]
            attrs.update(status=status, status_details=details,
                         status_updated_at=now_iso(), is_verifying_status=False)
            return True

    def enable_ingestion(self, device_id: str) -> bool:
        """Expel enables event ingestion for a device (false: no such device); its health is
        checked again."""
        with self.lock:
            record = self.devices.get(device_id)
            if record is None:
                return False
            record["ingestion_enabled"] = True
            self._schedule_health_check(record)
            return True

    def add_organization(self, body: Any) -> dict[str, Any]:
        """POST /_admin/workbench/organizations {"name", "id"?}: one more organization served
        to the API key. ValueError on bad input or an id already served."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object {\"name\": ..., \"id\"?: ...}")
        unknown = set(body) - {"name", "id"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; allowed: ['id', 'name']")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be a non-empty string")
        org_id = body.get("id", str(uuid.uuid4()))
        try:
            org_id = str(uuid.UUID(org_id)) if isinstance(org_id, str) else None
        except ValueError:
            org_id = None
        if org_id is None:
            raise ValueError("id must be a GUID such as 0b5e0c1e-7a4f-4f7e-9a55-2d1c7b3e9f00")
        with self.lock:
            if org_id in self.organizations:
                raise ValueError(f"organization {org_id} exists already")
            org = new_organization(org_id, name.strip(), now_iso())
            self.organizations[org_id] = org
            return copy.deepcopy(org)

    def publish_schema(self, slug: str, body: Any) -> dict[str, Any]:
        """What GET /plugins shows as `slug`'s device_spec_json: pyexclient's docs example
        shows `{}` [V], so a client may find no schema to check against. LookupError for an
        unknown slug, ValueError on a bad body."""
        if slug not in self.plugins_by_slug:
            raise LookupError(f"no plugin {slug!r}; known: {', '.join(sorted(self.plugins_by_slug))}")
        if not isinstance(body, dict) or set(body) != {"device_spec_json"} \
                or not isinstance(body["device_spec_json"], dict):
            raise ValueError('body must be {"device_spec_json": {...}}')
        with self.lock:
            self.published_schemas[slug] = copy.deepcopy(body["device_spec_json"])
        return {"plugin_slug": slug, "device_spec_json": body["device_spec_json"]}

    def soft_delete(self, device_id: str) -> dict[str, Any] | None:
        """Set a device's `deleted_at` (kept if already set); None when there is no such device."""
        with self.lock:
            record = self.devices.get(device_id)
            if record is None:
                return None
            attrs = record["attributes"]
            if attrs.get("deleted_at") is None:
                attrs["deleted_at"] = attrs["updated_at"] = now_iso()
                record["generation"] += 1  # a pending health check no longer applies
                attrs["is_verifying_status"] = False
            return {"id": device_id, "deleted_at": attrs["deleted_at"]}

    def health_settings(self, body: Any = None) -> dict[str, Any]:
        """GET (body None) or PUT /_admin/workbench/health; ValueError on bad input."""
        if body is not None:
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            allowed = {"unhealthy_first_checks", "delay_seconds"}
            unknown = set(body) - allowed - {"unhealthy_remaining"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
            n = body.get("unhealthy_first_checks", 0)
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1000:
                raise ValueError("unhealthy_first_checks must be an integer in [0, 1000]")
            delay = body.get("delay_seconds", 0)
            if not isinstance(delay, (int, float)) or isinstance(delay, bool) or \
                    not 0 <= delay <= 600:
                raise ValueError("delay_seconds must be a number in [0, 600]")
            with self.lock:
                if "unhealthy_first_checks" in body:
                    self.unhealthy_first_checks = self.unhealthy_remaining = n
                if "delay_seconds" in body:
                    self.health_delay = float(delay)
        with self.lock:
            return {"unhealthy_first_checks": self.unhealthy_first_checks,
                    "delay_seconds": self.health_delay,
                    "unhealthy_remaining": self.unhealthy_remaining}

    # ---- serialisation --------------------------------------------------------------------

    def _base(self) -> str:
        return request.host_url.rstrip("/") + self.prefix

    def _org_resource(self, org_id: str) -> dict[str, Any]:
        org = copy.deepcopy(self.organizations[org_id])
        return {"type": "organizations", "id": org["id"], "attributes": org["attributes"],
                "links": {"self": f"{self._base()}/organizations/{org['id']}"}}

    def _plugin_resource(self, plugin: dict[str, Any]) -> dict[str, Any]:
        attrs = copy.deepcopy(plugin["attributes"])
        published = self.published_schemas.get(attrs["plugin_slug"])
        if published is not None:
            attrs["device_spec_json"] = copy.deepcopy(published)
        return {"type": "plugins", "id": plugin["id"],
                "attributes": attrs,
                "links": {"self": f"{self._base()}/plugins/{plugin['id']}"},
                "meta": {"sandbox_guess": "plugin_slug and device_spec_json are guesses [G]"}}

    def _device_resource(self, record: dict[str, Any]) -> dict[str, Any]:
        attrs = copy.deepcopy(record["attributes"])
        plugin = self.plugins_by_slug.get(attrs.get("plugin_slug") or "")
        if plugin is not None and isinstance(attrs.get("device_spec"), dict):
            secrets = schema.write_only_fields(plugin["attributes"]["device_spec_json"])
            attrs["device_spec"] = {k: v for k, v in attrs["device_spec"].items()
                                    if k not in secrets}
        base = self._base()
        return {
            "type": "security_devices",
            "id": record["id"],
            "attributes": attrs,
            "relationships": {
                "organization": {
                    "data": {"type": "organizations", "id": record["organization_id"]},
                    "links": {"related": f"{base}/security_devices/{record['id']}/organization"},
                },
            },
            "links": {"self": f"{base}/security_devices/{record['id']}"},
        }

    # ---- validation -----------------------------------------------------------------------

    def _document(self, body: Any, creating: bool, device_id: str | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(attributes, relationships) of a JSON:API document, or ApiError."""
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise ApiError(400, "body must be a JSON:API document {\"data\": {...}}", pointer="/data")
        extra = set(body) - TOP_LEVEL_KEYS
        if extra:
            raise ApiError(400, f"unknown top-level member {sorted(extra)[0]!r}",
                           pointer=f"/{sorted(extra)[0]}")
        data = body["data"]
        extra = set(data) - DATA_KEYS
        if extra:
            raise ApiError(400, f"unknown member {sorted(extra)[0]!r} in data",
                           pointer=f"/data/{sorted(extra)[0]}")
        if "type" not in data:
            raise ApiError(400, "data.type is required", pointer="/data/type")
        if data["type"] != "security_devices":
            raise ApiError(409, f"data.type must be 'security_devices', got {data['type']!r}",
                           pointer="/data/type")
        if creating and "id" in data:
            raise ApiError(403, "client-generated ids are not supported", pointer="/data/id")
        if not creating and "id" in data and data["id"] != device_id:
            raise ApiError(409, "data.id does not match the URL", pointer="/data/id")
        attributes = data.get("attributes", {})
        if not isinstance(attributes, dict):
            raise ApiError(422, "data.attributes must be an object", pointer="/data/attributes")
        relationships = data.get("relationships", {})
        if not isinstance(relationships, dict):
            raise ApiError(422, "data.relationships must be an object",
                           pointer="/data/relationships")
        return attributes, relationships

    def _attribute_errors(self, attributes: dict[str, Any], creating: bool
                          ) -> list[dict[str, Any]]:
        errors = jsonapi.attribute_errors(attributes, DEVICE_ATTRIBUTES, READ_ONLY_ATTRIBUTES)
        if creating:
            for name in REQUIRED_ON_CREATE:
                if name not in attributes:
                    errors.append(error_object(422, f"{name} is required",
                                               pointer=f"/data/attributes/{name}"))
        return errors

    def _organization_id(self, relationships: dict[str, Any], creating: bool,
                         current: str | None) -> str:
        extra = set(relationships) - {"organization"}
        if extra:
            name = sorted(extra)[0]
            raise ApiError(422, f"unknown or read-only relationship {name!r}",
                           pointer=f"/data/relationships/{name}")
        if "organization" not in relationships:
            if creating:
                raise ApiError(422, "relationship organization is required",
                               pointer="/data/relationships/organization")
            return current or self.config.org_id
        rel = relationships["organization"]
        data = rel.get("data") if isinstance(rel, dict) else None
        if not isinstance(data, dict) or data.get("type") != "organizations" \
                or not isinstance(data.get("id"), str):
            raise ApiError(422, 'organization must be {"data": {"type": "organizations", "id": "<guid>"}}',
                           pointer="/data/relationships/organization/data")
        if data["id"] not in self.organizations:
            raise ApiError(422, f"organization {data['id']} does not exist or is not yours",
                           pointer="/data/relationships/organization/data/id")
        if current is not None and data["id"] != current:
            raise ApiError(422, "a device cannot move to another organization",
                           pointer="/data/relationships/organization/data/id")
        return data["id"]

    def _check_plugin_and_spec(self, attrs: dict[str, Any]) -> None:
        """Validate plugin_slug and device_spec of the merged attributes; fill spec defaults."""
        slug = attrs.get("plugin_slug")
        spec = attrs.get("device_spec")
        if not slug:
            if spec is not None:
                raise ApiError(422, "device_spec needs a plugin_slug (its schema comes from the plugin)",
                               pointer="/data/attributes/device_spec")
            return
        plugin = self.plugins_by_slug.get(slug)
        if plugin is None:
            raise ApiError(422, f"unknown plugin_slug {slug!r}; known: "
                                + ", ".join(sorted(self.plugins_by_slug)),
                           pointer="/data/attributes/plugin_slug")
        if not plugin["attributes"].get("active", True):
            raise ApiError(422, f"plugin {slug!r} is not active",
                           pointer="/data/attributes/plugin_slug")
        spec_schema = plugin["attributes"]["device_spec_json"]
        problems = schema.validate(spec, spec_schema, "/data/attributes/device_spec", "device_spec")
        if problems:
            raise ApiError(422, [error_object(422, p.detail, pointer=p.pointer) for p in problems])
        attrs["device_spec"] = schema.apply_defaults(spec, spec_schema)

    def _check_unique_name(self, org_id: str, name: str, except_id: str | None) -> None:
        for record in self.devices.values():
            if record["id"] != except_id and record["organization_id"] == org_id \
                    and record["attributes"]["name"] == name \
                    and record["attributes"].get("deleted_at") is None:
                raise ApiError(409, f"a security device named {name!r} already exists "
                                    f"in this organization (id {record['id']})",
                               pointer="/data/attributes/name")

    # ---- health checks --------------------------------------------------------------------

    def _schedule_health_check(self, record: dict[str, Any]) -> None:
        record["generation"] += 1
        record["attributes"]["is_verifying_status"] = True
        timer = threading.Timer(self.health_delay, self._run_health_check,
                                args=(record["id"], record["generation"]))
        timer.daemon = True
        timer.start()

    def _run_health_check(self, device_id: str, generation: int) -> None:
        with self.lock:
            record = self.devices.get(device_id)
            if record is None or record["generation"] != generation:
                return
            device = {"id": device_id, "organization_id": record["organization_id"],
                      "ingestion_enabled": record.get("ingestion_enabled", False),
                      **copy.deepcopy(record["attributes"])}
            forced = device.get("plugin_slug") == "aws" and self.unhealthy_remaining > 0
            if forced:
                self.unhealthy_remaining -= 1
        if forced:
            role_arn = (device.get("device_spec") or {}).get("role_arn", "")
            reason = f"cannot assume role {role_arn}: AccessDenied"  # as sandbox/awshealth.py
            status, details = "unhealthy", {
                "checks": [{"name": "assume_role", "result": "failed", "detail": reason}],
                "reason": reason}
        else:
            status, details = health.run_check(device, self.health_context)
        with self.lock:
            record = self.devices.get(device_id)
            if record is None or record["generation"] != generation:
                return
            record["attributes"].update(status=status, status_details=details,
                                        status_updated_at=now_iso(), is_verifying_status=False)

    # ---- routes ---------------------------------------------------------------------------

    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("workbench", __name__)

        @bp.errorhandler(ApiError)
        def api_error(err: ApiError):
            return jsonapi.errors_response(err.status, err.errors, err.headers)

        @bp.get("/organizations")
        def list_organizations():
            q = jsonapi.parse_query(request, {"name"}, ORGANIZATION_SORTS)
            with self.lock:
                items = [self._org_resource(org_id) for org_id in self.organizations]
            if "name" in q["filters"]:
                items = [o for o in items if o["attributes"]["name"] == q["filters"]["name"]]
            items = jsonapi.sort_items(items, q["sort"], resource_field)
            page, links, meta = jsonapi.paginate(request, items, q["limit"], q["offset"])
            return jsonapi.response({"data": page, "links": links, "meta": meta})

        @bp.get("/organizations/<org_id>")
        def get_organization(org_id: str):
            with self.lock:
                if org_id not in self.organizations:
                    raise ApiError(404, f"organizations {org_id} not found")
                return jsonapi.response({"data": self._org_resource(org_id)})

        @bp.get("/plugins")
        def list_plugins():
            q = jsonapi.parse_query(request, {"plugin_slug", "vendor_name", "display_name"},
                                    PLUGIN_SORTS)
            items = self.plugins
            for field, value in q["filters"].items():
                items = [p for p in items if p["attributes"].get(field) == value]
            items = jsonapi.sort_items(list(items), q["sort"], resource_field)
            page, links, meta = jsonapi.paginate(request, items, q["limit"], q["offset"])
            return jsonapi.response({"data": [self._plugin_resource(p) for p in page],
                                     "links": links, "meta": meta})

        @bp.get("/plugins/<plugin_id>")
        def get_plugin(plugin_id: str):
            for plugin in self.plugins:
                if plugin["id"] == plugin_id:
                    return jsonapi.response({"data": self._plugin_resource(plugin)})
            raise ApiError(404, f"plugins {plugin_id} not found")

        @bp.get("/security_devices")
        def list_devices():
            q = jsonapi.parse_query(request, DEVICE_FILTERS, DEVICE_SORTS,
                                    includes={"organization"}, flags={"raw_status"})
            with self.lock:
                items = list(self.devices.values())
                for field, value in q["filters"].items():
                    if field == "organization.id":
                        items = [r for r in items if r["organization_id"] == value]
                    else:
                        items = [r for r in items if r["attributes"].get(field) == value]
                items = jsonapi.sort_items(items, q["sort"], resource_field)
                page, links, meta = jsonapi.paginate(request, items, q["limit"], q["offset"])
                doc: dict[str, Any] = {"data": [self._device_resource(r) for r in page],
                                       "links": links, "meta": meta}
                if "include" in request.args and page:
                    org_ids = dict.fromkeys(r["organization_id"] for r in page)
                    doc["included"] = [self._org_resource(o) for o in org_ids]
            return jsonapi.response(doc)

        @bp.post("/security_devices")
        def create_device():
            attributes, relationships = self._document(jsonapi.read_body(request), creating=True)
            errors = self._attribute_errors(attributes, creating=True)
            if errors:
                raise ApiError(422, errors)
            org_id = self._organization_id(relationships, creating=True, current=None)
            attrs: dict[str, Any] = {
                "name": None, "location": None, "device_type": None, "plugin_slug": None,
                "device_spec": None, "properties": {}, "task_source": None,
                "no_alert_threshold_hours": None,
            }
            attrs.update(copy.deepcopy(attributes))
            self._check_plugin_and_spec(attrs)
            now = now_iso()
            attrs.update(status=None, status_details={}, status_updated_at=None,
                         is_verifying_status=True, has_console_credentials=False,
                         has_two_factor_secret=False, deleted_at=None,
                         created_at=now, updated_at=now)
            with self.lock:
                self._check_unique_name(org_id, attrs["name"], except_id=None)
                record = {"id": str(uuid.uuid4()), "organization_id": org_id,
                          "attributes": attrs, "generation": 0}
                self._sync_webhook_credentials(attrs, record["id"])
                self.devices[record["id"]] = record
                self._schedule_health_check(record)
                resource = self._device_resource(record)
            return jsonapi.response({"data": resource}, 201,
                                    {"Location": resource["links"]["self"]})

        def find(device_id: str, live: bool = False) -> dict[str, Any]:
            """The device; with `live`, a soft-deleted one is not found either."""
            record = self.devices.get(device_id)
            if record is None or (live and record["attributes"].get("deleted_at") is not None):
                raise ApiError(404, f"security_devices {device_id} not found")
            return record

        @bp.get("/security_devices/<device_id>")
        def get_device(device_id: str):
            jsonapi.parse_query(request, set(), set(), includes={"organization"},
                                flags={"raw_status"})
            with self.lock:
                record = find(device_id)
                doc: dict[str, Any] = {"data": self._device_resource(record)}
                if "include" in request.args:
                    doc["included"] = [self._org_resource(record["organization_id"])]
            return jsonapi.response(doc)

        @bp.get("/security_devices/<device_id>/organization")
        def get_device_organization(device_id: str):
            with self.lock:
                org = self._org_resource(find(device_id)["organization_id"])
            return jsonapi.response({"data": org})

        @bp.patch("/security_devices/<device_id>")
        def update_device(device_id: str):
            body = jsonapi.read_body(request)
            with self.lock:
                record = find(device_id, live=True)
                attributes, relationships = self._document(body, creating=False,
                                                           device_id=device_id)
                errors = self._attribute_errors(attributes, creating=False)
                if errors:
                    raise ApiError(422, errors)
                self._organization_id(relationships, creating=False,
                                      current=record["organization_id"])
                old = record["attributes"]
                attrs = copy.deepcopy(old)
                attrs.update(copy.deepcopy(attributes))
                same_plugin = attrs.get("plugin_slug") == old.get("plugin_slug")
                plugin = self.plugins_by_slug.get(attrs.get("plugin_slug") or "")
                if ("device_spec" in attributes and same_plugin and plugin is not None
                        and isinstance(attrs.get("device_spec"), dict)
                        and isinstance(old.get("device_spec"), dict)):
                    for secret in schema.write_only_fields(plugin["attributes"]["device_spec_json"]):
                        if secret not in attrs["device_spec"] and secret in old["device_spec"]:
                            attrs["device_spec"][secret] = old["device_spec"][secret]
                self._check_plugin_and_spec(attrs)
                self._check_unique_name(record["organization_id"], attrs["name"],
                                        except_id=device_id)
                attrs["updated_at"] = now_iso()
                self._sync_webhook_credentials(attrs, device_id)
                record["attributes"] = attrs
                self._schedule_health_check(record)
                resource = self._device_resource(record)
            return jsonapi.response({"data": resource})

        @bp.delete("/security_devices/<device_id>")
        def delete_device(device_id: str):
            with self.lock:
                find(device_id, live=True)
                del self.devices[device_id]
                self.remediation.forget_device(device_id)
            return jsonapi.response(None, 204)

        self.remediation.add_routes(bp)

        @bp.post("/webhooks/wiz/<device_id>")
        def wiz_webhook(device_id: str):
            """A Wiz automation rule's webhook: basic auth with the device's credentials."""
            with self.lock:
                record = self.devices.get(device_id)
                if record is None or record["attributes"].get("plugin_slug") != "wiz":
                    raise ApiError(404, f"no Wiz security device {device_id}")
                attrs = copy.deepcopy(record["attributes"])
            cred = request.authorization
            if cred is None or cred.type != "basic" or not (
                    hmac.compare_digest((cred.username or "").encode(),
                                        attrs["webhook_username"].encode())
                    and hmac.compare_digest((cred.password or "").encode(),
                                            attrs["webhook_password"].encode())):
                raise ApiError(401, "webhook needs basic auth with the device's webhook "
                                    "username and password",
                               headers={"WWW-Authenticate": 'Basic realm="Expel Workbench"'})
            payload = request.get_json(force=True, silent=True)
            if not isinstance(payload, dict):
                raise ApiError(400, "webhook body must be a JSON object")
            product = (attrs.get("device_spec") or {}).get("product", "cloud")
            subject = next((payload[k] for k in ("issue", "detection")
                            if isinstance(payload.get(k), dict)), {})
            control = payload.get("control") if isinstance(payload.get("control"), dict) else {}
            title = subject.get("title") or control.get("name") or "webhook"
            alert = {"id": str(uuid.uuid4()), "device_id": device_id,
                     "name": f"Wiz {'Defend' if product == 'defend' else 'Cloud'}: {title}",
                     "severity": subject.get("severity"), "source_id": subject.get("id"),
                     "received_at": now_iso(), "payload": payload}
            with self.lock:
                if device_id not in self.devices:
                    raise ApiError(404, f"no Wiz security device {device_id}")
                self.alerts.append(alert)
            return jsonapi.response({"data": {"type": "alerts", "id": alert["id"],
                                              "attributes": {"name": alert["name"]}}}, 201)

        return bp
