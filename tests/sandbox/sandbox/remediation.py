"""Workbench `remediation_action_settings`: how an organization switches an auto remediation on.

Shapes from Expel's client pyexclient (PyPI, `pyexclient/workbench.py`, class
`RemediationActionSettings`) [V]: attributes `action_type` (an enum that includes
DISABLE_AND_MODIFY_AWS_ACCESS_KEYS), `automate_list_type` (DENY, ALLOW or null),
`automate_opt_in` (bool), `automate_opt_in_agreement_version` ("V1" or null),
`automate_opt_in_at` (read-only), `created_at`, `updated_at`; relationships `organization` and
`security_devices` (to-many; a security device has a to-many `remediation_action_settings`
back). pyexclient's `make_url` comment [V]: `GET /:resource/:id/:relation` returns the related
records and `GET|POST|PATCH|DELETE /:resource/:id/relationships/:relation` manipulate the
relationship itself; both are served here for `security_devices`.

Where the real behaviour is unknown the choice made here is stated [G]:
- one record per organization and action_type (a second create is 409): the client joins an
  existing record before it creates one;
- `automate_opt_in: true` needs `automate_opt_in_agreement_version` "V1" (the UI's agreement);
  `automate_opt_in_at` is set each time the opt-in turns on;
- `action_type` and `organization` cannot change after create (422);
- every member of `security_devices` must be a live (not soft-deleted) device of the record's
  organization (422); deleting a device takes it out of every record;
- records are returned with their relationships' `data` (organization and security_devices);
- DELETE of a record is allowed (204).
"""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Any, Callable

from flask import Blueprint, request

from . import jsonapi
from .jsonapi import ApiError, error_object

if TYPE_CHECKING:
    from .workbench import WorkbenchEmulator

TYPE = "remediation_action_settings"
ACTION_TYPES = [
    "BLOCK_COMMAND_AND_CONTROL_COMMUNICATIONS", "BLOCK_KNOWN_BAD_HASHES", "CONTAIN_HOSTS",
    "CONTAIN_INFECTED_REMOVABLE_MEDIA", "DELETE_MALICIOUS_FILES",
    "DISABLE_AND_MODIFY_AWS_ACCESS_KEYS", "MITIGATE_VULNERABILITY", "OTHER_REMEDIATION",
    "REMOVE_AND_BLOCK_EMAIL_FORWARDING_ADDRESS", "REMOVE_COMPROMISED_SYSTEMS_FROM_NETWORK_OTHER",
    "REMOVE_COMPROMISED_SYSTEMS_FROM_NETWORK_AWS",
    "REMOVE_INBOX_RULES_FOR_KNOWN_COMPROMISED_ACCOUNTS", "RESET_CREDENTIALS_OTHER",
    "RESET_CREDENTIALS_AWS", "RESET_CREDENTIALS_O365", "BLOCK_MALICIOUS_DOMAINS_AND_IPS",
    "BLOCK_SENDER_ADDRESS", "BLOCK_SENDER_DOMAIN", "REMOVE_MALICIOUS_EMAIL",
    "RESET_CREDENTIALS_GSUITE", "DISABLE_USER_ACCOUNT", "RESET_CREDENTIALS_OKTA",
    "REMOVE_TAP_THREAT_ID", "RESET_CREDENTIALS_AZURE", "RESET_CREDENTIALS_SALESFORCE",
    "RESET_CREDENTIALS_GCP",
]  # pyexclient's "Restricted to" list for action_type [V]
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "action_type": {"type": "string", "enum": ACTION_TYPES},
    "automate_list_type": {"type": ["string", "null"], "enum": ["DENY", "ALLOW", None]},
    "automate_opt_in": {"type": "boolean"},
    "automate_opt_in_agreement_version": {"type": ["string", "null"], "enum": ["V1", None]},
}
READ_ONLY = {"automate_opt_in_at", "created_at", "updated_at"}
FILTERS = {"action_type", "automate_opt_in", "automate_list_type", "organization.id",
           "security_devices.id"}
SORTS = {"id", "action_type", "automate_list_type", "automate_opt_in",
         "automate_opt_in_agreement_version", "automate_opt_in_at", "created_at", "updated_at"}
RELATIONSHIPS = {"organization", "security_devices"}


def _field(item: dict[str, Any], name: str) -> Any:
    return item["id"] if name == "id" else item["attributes"].get(name)


class RemediationSettings:
    """The records and their routes; state and lock are the Workbench emulator's."""

    def __init__(self, wb: WorkbenchEmulator, now: Callable[[], str]) -> None:
        self.wb = wb
        self.now = now
        self.records: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        self.records.clear()

    def dump(self) -> list[dict[str, Any]]:
        return [{"id": r["id"], "organization_id": r["organization_id"],
                 "security_device_ids": list(r["device_ids"]),
                 "attributes": copy.deepcopy(r["attributes"])} for r in self.records.values()]

    def forget_device(self, device_id: str) -> None:
        """A deleted device leaves every record (caller holds the lock)."""
        for record in self.records.values():
            if device_id in record["device_ids"]:
                record["device_ids"].remove(device_id)

    # ---- serialisation ----------------------------------------------------------------------

    def resource(self, record: dict[str, Any]) -> dict[str, Any]:
        base = self.wb._base()
        self_url = f"{base}/{TYPE}/{record['id']}"
        return {
            "type": TYPE, "id": record["id"],
            "attributes": copy.deepcopy(record["attributes"]),
            "relationships": {
                "organization": {
                    "data": {"type": "organizations", "id": record["organization_id"]},
                    "links": {"related": f"{self_url}/organization"}},
                "security_devices": {
                    "data": [{"type": "security_devices", "id": d} for d in record["device_ids"]],
                    "links": {"self": f"{self_url}/relationships/security_devices",
                              "related": f"{self_url}/security_devices"}},
            },
            "links": {"self": self_url},
        }

    # ---- validation ---------------------------------------------------------------------------

    def _document(self, body: Any, record_id: str | None) -> tuple[dict, dict]:
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise ApiError(400, "body must be a JSON:API document {\"data\": {...}}",
                           pointer="/data")
        data = body["data"]
        if data.get("type") != TYPE:
            raise ApiError(409, f"data.type must be {TYPE!r}, got {data.get('type')!r}",
                           pointer="/data/type")
        if record_id is None and "id" in data:
            raise ApiError(403, "client-generated ids are not supported", pointer="/data/id")
        if record_id is not None and data.get("id", record_id) != record_id:
            raise ApiError(409, "data.id does not match the URL", pointer="/data/id")
        attributes = data.get("attributes", {})
        relationships = data.get("relationships", {})
        if not isinstance(attributes, dict) or not isinstance(relationships, dict):
            raise ApiError(422, "data.attributes and data.relationships must be objects",
                           pointer="/data")
        errors = jsonapi.attribute_errors(attributes, ATTRIBUTES, READ_ONLY)
        for name in set(relationships) - RELATIONSHIPS:
            errors.append(error_object(422, f"unknown or read-only relationship {name!r}",
                                       pointer=f"/data/relationships/{name}"))
        if errors:
            raise ApiError(422, errors)
        return attributes, relationships

    def _organization(self, relationships: dict[str, Any]) -> str:
        data = (relationships.get("organization") or {}).get("data")
        if not isinstance(data, dict) or data.get("type") != "organizations" \
                or data.get("id") not in self.wb.organizations:
            raise ApiError(422, "relationship organization must name one of your organizations "
                                '{"data": {"type": "organizations", "id": "<guid>"}}',
                           pointer="/data/relationships/organization/data")
        return data["id"]

    def _device_ids(self, linkage: Any, org_id: str, pointer: str,
                    members_only: bool = False) -> list[str]:
        """The device ids of a to-many linkage, each a live device of `org_id` (with
        `members_only`, any id: what is taken out of a set), or 422."""
        if not isinstance(linkage, dict) or not isinstance(linkage.get("data"), list):
            raise ApiError(422, 'security_devices must be {"data": [{"type": '
                                '"security_devices", "id": "<guid>"}, ...]}', pointer=pointer)
        ids: list[str] = []
        for i, item in enumerate(linkage["data"]):
            dev_id = item.get("id") if isinstance(item, dict) else None
            device = self.wb.devices.get(dev_id) if isinstance(dev_id, str) else None
            if not isinstance(item, dict) or item.get("type") != "security_devices" \
                    or not isinstance(dev_id, str):
                raise ApiError(422, f"security_devices[{i}] must be "
                                    '{"type": "security_devices", "id": "<guid>"}',
                               pointer=f"{pointer}/{i}")
            if members_only:
                ids.append(dev_id)
                continue
            if device is None or device["attributes"].get("deleted_at") is not None \
                    or device["organization_id"] != org_id:
                raise ApiError(422, f"security_devices[{i}] is not a security device of this "
                                    "organization", pointer=f"{pointer}/{i}")
            if dev_id not in ids:
                ids.append(dev_id)
        return ids

    def _check_opt_in(self, attrs: dict[str, Any]) -> None:
        if attrs.get("automate_opt_in") and attrs.get("automate_opt_in_agreement_version") != "V1":
            raise ApiError(422, "automate_opt_in needs automate_opt_in_agreement_version \"V1\" "
                                "(the automated remediation agreement)",
                           pointer="/data/attributes/automate_opt_in_agreement_version")

    def _find(self, record_id: str) -> dict[str, Any]:
        record = self.records.get(record_id)
        if record is None:
            raise ApiError(404, f"{TYPE} {record_id} not found")
        return record

    # ---- routes -------------------------------------------------------------------------------

    def add_routes(self, bp: Blueprint) -> None:
        wb = self.wb

        @bp.get(f"/{TYPE}")
        def list_settings():
            q = jsonapi.parse_query(request, FILTERS, SORTS)
            with wb.lock:
                items = list(self.records.values())
                for field, value in q["filters"].items():
                    if field == "organization.id":
                        items = [r for r in items if r["organization_id"] == value]
                    elif field == "security_devices.id":
                        items = [r for r in items if value in r["device_ids"]]
                    elif field == "automate_opt_in":
                        items = [r for r in items
                                 if str(r["attributes"][field]).lower() == value.lower()]
                    else:
                        items = [r for r in items if r["attributes"].get(field) == value]
                items = jsonapi.sort_items(items, q["sort"], _field)
                page, links, meta = jsonapi.paginate(request, items, q["limit"], q["offset"])
                data = [self.resource(r) for r in page]
            return jsonapi.response({"data": data, "links": links, "meta": meta})

        @bp.get(f"/{TYPE}/<record_id>")
        def get_setting(record_id: str):
            with wb.lock:
                return jsonapi.response({"data": self.resource(self._find(record_id))})

        @bp.post(f"/{TYPE}")
        def create_setting():
            attributes, relationships = self._document(jsonapi.read_body(request), None)
            if "action_type" not in attributes:
                raise ApiError(422, "action_type is required",
                               pointer="/data/attributes/action_type")
            with wb.lock:
                org_id = self._organization(relationships)
                device_ids = self._device_ids(
                    relationships.get("security_devices", {"data": []}), org_id,
                    "/data/relationships/security_devices/data")
                for other in self.records.values():
                    if other["organization_id"] == org_id \
                            and other["attributes"]["action_type"] == attributes["action_type"]:
                        raise ApiError(409, f"this organization has a {TYPE} record for "
                                            f"{attributes['action_type']} already "
                                            f"(id {other['id']})",
                                       pointer="/data/attributes/action_type")
                now = self.now()
                attrs = {"action_type": None, "automate_list_type": None,
                         "automate_opt_in": False, "automate_opt_in_agreement_version": None,
                         "automate_opt_in_at": None, "created_at": now, "updated_at": now}
                attrs.update(copy.deepcopy(attributes))
                self._check_opt_in(attrs)
                if attrs["automate_opt_in"]:
                    attrs["automate_opt_in_at"] = now
                record = {"id": str(uuid.uuid4()), "organization_id": org_id,
                          "device_ids": device_ids, "attributes": attrs}
                self.records[record["id"]] = record
                resource = self.resource(record)
            return jsonapi.response({"data": resource}, 201,
                                    {"Location": resource["links"]["self"]})

        @bp.patch(f"/{TYPE}/<record_id>")
        def update_setting(record_id: str):
            body = jsonapi.read_body(request)
            with wb.lock:
                record = self._find(record_id)
                attributes, relationships = self._document(body, record_id)
                if "action_type" in attributes \
                        and attributes["action_type"] != record["attributes"]["action_type"]:
                    raise ApiError(422, "action_type cannot change; create another record",
                                   pointer="/data/attributes/action_type")
                if "organization" in relationships \
                        and self._organization(relationships) != record["organization_id"]:
                    raise ApiError(422, "a record cannot move to another organization",
                                   pointer="/data/relationships/organization/data/id")
                device_ids = record["device_ids"]
                if "security_devices" in relationships:
                    device_ids = self._device_ids(relationships["security_devices"],
                                                  record["organization_id"],
                                                  "/data/relationships/security_devices/data")
                attrs = copy.deepcopy(record["attributes"])
                was_on = attrs["automate_opt_in"]
                attrs.update(copy.deepcopy(attributes))
                self._check_opt_in(attrs)
                attrs["updated_at"] = self.now()
                if attrs["automate_opt_in"] and not was_on:
                    attrs["automate_opt_in_at"] = attrs["updated_at"]
                record["attributes"], record["device_ids"] = attrs, device_ids
                return jsonapi.response({"data": self.resource(record)})

        @bp.delete(f"/{TYPE}/<record_id>")
        def delete_setting(record_id: str):
            with wb.lock:
                self._find(record_id)
                del self.records[record_id]
            return jsonapi.response(None, 204)

        @bp.get(f"/{TYPE}/<record_id>/security_devices")
        def related_devices(record_id: str):
            with wb.lock:
                record = self._find(record_id)
                data = [wb._device_resource(wb.devices[d]) for d in record["device_ids"]]
            return jsonapi.response({"data": data})

        @bp.route(f"/{TYPE}/<record_id>/relationships/security_devices",
                  methods=["GET", "POST", "PATCH", "DELETE"])
        def device_linkage(record_id: str):
            """JSON:API relationship route: GET the linkage; POST adds members, DELETE removes
            them (others untouched); PATCH replaces the whole set."""
            body = None if request.method == "GET" else jsonapi.read_body(request)
            with wb.lock:
                record = self._find(record_id)
                if body is not None:
                    ids = self._device_ids(body, record["organization_id"], "/data",
                                           members_only=request.method == "DELETE")
                    if request.method == "POST":
                        record["device_ids"] += [d for d in ids if d not in record["device_ids"]]
                    elif request.method == "DELETE":
                        record["device_ids"] = [d for d in record["device_ids"] if d not in ids]
                    else:
                        record["device_ids"] = ids
                    record["attributes"]["updated_at"] = self.now()
                data = [{"type": "security_devices", "id": d} for d in record["device_ids"]]
            return jsonapi.response({"data": data})
