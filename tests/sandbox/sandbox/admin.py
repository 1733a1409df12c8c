"""/_admin: test controls. No auth; loopback clients only. Plain application/json.

  GET    /_admin/health                 200 {"status": "ok", "emulators": [...], "moto_url": ...,
                                             "aws_proxy_url": ...}
  POST   /_admin/faults                 201 fault (body: see faults.py); 400 {"error": ...}
  GET    /_admin/faults                 200 {"faults": [...]} with matched/fired/exhausted
  DELETE /_admin/faults                 204, clears all faults
  DELETE /_admin/faults/<id>            204, or 404
  GET    /_admin/calls[?since=SEQ]      200 {"total": N, "routes": {"GET /api/v2/...": n},
                                             "log": [{"seq","method","route","path","status"}]}
                                        (status 0: a fault dropped the connection)
  DELETE /_admin/calls                  204, zeroes the counters
  POST   /_admin/reset                  204, wipes stored objects, faults and counters
  GET    /_admin/state                  200 {"<emulator>": {...everything stored, secrets too}}
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
                                        HTTP and in Workbench's health check)}; PUT changes them
                                        until /_admin/reset
  POST   /_admin/wiz/expire-tokens      200 {"expired": n}: every issued token expires now
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

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from .faults import FaultSpecError

blueprint = Blueprint("admin", __name__)

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
DEVICE_STATUSES = {"healthy", "unhealthy", "health_checks_not_supported", None}


def sandbox() -> dict[str, Any]:
    return current_app.extensions["sandbox"]


def no_content() -> Response:
    return Response(status=204)


@blueprint.before_request
def loopback_only():
    if request.remote_addr not in LOOPBACK:
        abort(403)


@blueprint.get("/health")
def health():
    s = sandbox()
    return jsonify(status="ok", emulators=sorted(s["emulators"]),
                   moto_url=s["config"].resolve_moto_url(wait=0),
                   aws_proxy_url=s["config"].resolve_aws_proxy_url(wait=0),
                   organization_id=s["config"].org_id)


@blueprint.post("/faults")
def add_fault():
    try:
        fault = sandbox()["faults"].add(request.get_json(force=True, silent=True))
    except FaultSpecError as err:
        return jsonify(error=str(err)), 400
    return jsonify(fault.public()), 201


@blueprint.get("/faults")
def list_faults():
    return jsonify(faults=sandbox()["faults"].list())


@blueprint.delete("/faults")
def clear_faults():
    sandbox()["faults"].clear()
    return no_content()


@blueprint.delete("/faults/<int:fault_id>")
def remove_fault(fault_id: int):
    if not sandbox()["faults"].remove(fault_id):
        return jsonify(error=f"no fault {fault_id}"), 404
    return no_content()


@blueprint.get("/calls")
def calls():
    try:
        since = int(request.args.get("since", "0"))
    except ValueError:
        return jsonify(error="since must be an integer"), 400
    return jsonify(sandbox()["calls"].snapshot(since))


@blueprint.delete("/calls")
def reset_calls():
    sandbox()["calls"].reset()
    return no_content()


@blueprint.post("/reset")
def reset():
    s = sandbox()
    for emulator in s["emulators"].values():
        emulator.reset()
    s["faults"].clear()
    s["calls"].reset()
    return no_content()


@blueprint.get("/state")
def state():
    return jsonify({name: e.dump() for name, e in sandbox()["emulators"].items()})


@blueprint.put("/workbench/security_devices/<device_id>/status")
def force_device_status(device_id: str):
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or body.get("status", "") not in DEVICE_STATUSES:
        return jsonify(error=f"status must be one of {sorted(s for s in DEVICE_STATUSES if s)} "
                             "or null"), 400
    details = body.get("status_details", {})
    if not isinstance(details, dict):
        return jsonify(error="status_details must be an object"), 400
    workbench = sandbox()["emulators"]["workbench"]
    if not workbench.force_status(device_id, body["status"], details):
        return jsonify(error=f"no security device {device_id}"), 404
    return no_content()


@blueprint.route("/sentinelone/rate-limits", methods=["GET", "POST"])
def sentinelone_rate_limits():
    s1 = sandbox()["emulators"]["sentinelone"]
    if request.method == "POST":
        try:
            s1.set_rate_limits(request.get_json(force=True, silent=True))
        except ValueError as err:
            return jsonify(error=str(err)), 400
    return jsonify(s1.rate_limits())


@blueprint.post("/sentinelone/expire-token")
def sentinelone_expire_token():
    try:
        return jsonify(sandbox()["emulators"]["sentinelone"].expire_token(
            request.get_json(force=True, silent=True)))
    except LookupError as err:
        return jsonify(error=str(err)), 404
    except ValueError as err:
        return jsonify(error=str(err)), 400


@blueprint.post("/sentinelone/accounts")
def sentinelone_add_account():
    try:
        return jsonify(sandbox()["emulators"]["sentinelone"].add_account(
            request.get_json(force=True, silent=True))), 201
    except ValueError as err:
        return jsonify(error=str(err)), 400


@blueprint.put("/sentinelone/revoke-body")
def sentinelone_revoke_body():
    try:
        return jsonify(sandbox()["emulators"]["sentinelone"].set_revoke_body(
            request.get_json(force=True, silent=True)))
    except ValueError as err:
        return jsonify(error=str(err)), 400


@blueprint.post("/sentinelone/nameless-service-user")
def sentinelone_nameless_service_user():
    try:
        return jsonify(sandbox()["emulators"]["sentinelone"].add_nameless_service_user(
            request.get_json(force=True, silent=True))), 201
    except ValueError as err:
        return jsonify(error=str(err)), 400


@blueprint.put("/sentinelone/predefined-role")
def sentinelone_predefined_role():
    try:
        return jsonify(sandbox()["emulators"]["sentinelone"].set_predefined_role(
            request.get_json(force=True, silent=True)))
    except ValueError as err:
        return jsonify(error=str(err)), 400


def _wiz():
    return sandbox()["emulators"]["wiz"]


@blueprint.route("/workbench/health", methods=["GET", "PUT"])
def workbench_health():
    body = None
    if request.method == "PUT":
        body = request.get_json(force=True, silent=True)
        if body is None:
            return jsonify(error="body must be a JSON object"), 400
    try:
        return jsonify(sandbox()["emulators"]["workbench"].health_settings(body))
    except ValueError as err:
        return jsonify(error=str(err)), 400


@blueprint.post("/workbench/organizations")
def workbench_add_organization():
    try:
        return jsonify(sandbox()["emulators"]["workbench"].add_organization(
            request.get_json(force=True, silent=True))), 201
    except ValueError as err:
        return jsonify(error=str(err)), 400


@blueprint.post("/workbench/security_devices/<device_id>/soft-delete")
def workbench_soft_delete(device_id: str):
    done = sandbox()["emulators"]["workbench"].soft_delete(device_id)
    if done is None:
        return jsonify(error=f"no security device {device_id}"), 404
    return jsonify(done)


@blueprint.put("/workbench/plugins/<slug>/published-schema")
def workbench_published_schema(slug: str):
    try:
        return jsonify(sandbox()["emulators"]["workbench"].publish_schema(
            slug, request.get_json(force=True, silent=True)))
    except LookupError as err:
        return jsonify(error=str(err)), 404
    except ValueError as err:
        return jsonify(error=str(err)), 400


@blueprint.get("/workbench/alerts")
def workbench_alerts():
    return jsonify(alerts=sandbox()["emulators"]["workbench"].list_alerts())


@blueprint.post("/wiz/issues")
def wiz_create_issue():
    status, body = _wiz().admin_create_issue(request.get_json(force=True, silent=True))
    return jsonify(body), status


@blueprint.post("/wiz/detections")
def wiz_create_detection():
    status, body = _wiz().admin_create_detection(request.get_json(force=True, silent=True))
    return jsonify(body), status


@blueprint.get("/wiz/deliveries")
def wiz_deliveries():
    return jsonify(deliveries=_wiz().admin_deliveries())


@blueprint.route("/wiz/settings", methods=["GET", "PUT"])
def wiz_settings():
    body = request.get_json(force=True, silent=True) if request.method == "PUT" else None
    if request.method == "PUT" and body is None:
        return jsonify(error="body must be a JSON object"), 400
    status, out = _wiz().admin_settings(body)
    return jsonify(out), status


@blueprint.post("/wiz/expire-tokens")
def wiz_expire_tokens():
    return jsonify(expired=_wiz().admin_expire_tokens())
