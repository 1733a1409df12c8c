"""/_admin: test controls. No auth; loopback clients only. Plain application/json.

  GET    /_admin/health                 200 {"status": "ok", "emulators": [...], "moto_url": ...,
                                             "aws_proxy_url": ...}
  POST   /_admin/faults                 201 fault (body: see faults.py); 400 {"error": ...}
  GET    /_admin/faults                 200 {"faults": [...]} with matched/fired/exhausted
  DELETE /_admin/faults                 204, clears all faults
  DELETE /_admin/faults/<id>            204, or 404
  GET    /_admin/calls[?since=SEQ]      200 {"total": N, "routes": {"GET /api/v2/...": n},
                                             "emulators": {"workbench": n, ...},
                                             "log": [{"seq","method","route","path","status"}]}
                                        (status 0: a fault dropped the connection)
  DELETE /_admin/calls                  204, zeroes the counters
  POST   /_admin/reset                  204, wipes stored objects, faults and counters
  GET    /_admin/state                  200 {"<emulator>": {...everything stored, secrets too}}
  GET    /_admin/env                    200 {"EXPEL_WORKBENCH_URL": ..., ...}: the variables that
                                        point the provider at every emulator (each emulator's
                                        client_env; scripts/stack exports them)

Each emulator of registry.py has its own controls under /_admin/<name>, listed in the
docstring of its `admin_blueprint`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from .faults import FaultSpecError

blueprint = Blueprint("admin", __name__)

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


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


@blueprint.get("/env")
def env():
    base = request.host_url.rstrip("/")
    out: dict[str, str] = {}
    for emulator in sandbox()["emulators"].values():
        out.update(emulator.client_env(base))
    return jsonify(out)
