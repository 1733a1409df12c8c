"""The one Flask app: every emulator of registry.py as a blueprint under its prefix, plus
/_admin (and each emulator's own test controls under /_admin/<name>).

For every call under an emulator's prefix, in order:
  1. count it (GET /_admin/calls),
  2. apply injected faults (latency; an error in the emulator's own envelope or a dropped
     connection, before or after the handler runs),
  3. let the emulator refuse it (auth, content negotiation),
  4. run the handler.
Errors that escape a blueprint (unknown route, wrong method, crash) are rendered by the
emulator that owns the path, so clients always see that vendor's error envelope.
"""

from __future__ import annotations

import logging
import socket
import struct
import traceback

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import admin
from .config import SandboxConfig
from .emulator import Emulator
from .faults import CallLog, FaultBook
from .registry import build_emulators

log = logging.getLogger("sandbox")

# User-Agent of the requests the Workbench emulator's health checks make to other emulators.
HEALTH_AGENT = "sandbox-workbench-health"


def drop_connection() -> Response:
    """Close the client's connection without an answer (the client sees a reset). Werkzeug's
    write of the response that follows fails and is logged as a dropped connection."""
    g.dropped = True
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    return Response(status=204)


def create_app(config: SandboxConfig | None = None) -> Flask:
    config = config or SandboxConfig()
    app = Flask("sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    emulators = build_emulators(config)
    by_name = {e.name: e for e in emulators}
    checks = {slug: check for e in emulators for slug, check in e.health_checks().items()}
    for emulator in emulators:
        # Health checks may reach any emulator (e.g. Workbench -> SentinelOne).
        health_context = getattr(emulator, "health_context", None)
        if health_context is not None:
            health_context.emulators = by_name
            health_context.checks = checks
    faults = FaultBook()
    calls = CallLog()
    app.extensions["sandbox"] = {
        "config": config, "emulators": by_name, "faults": faults, "calls": calls,
    }

    for emulator in emulators:
        app.register_blueprint(emulator.blueprint, url_prefix=emulator.prefix)
    app.register_blueprint(admin.blueprint, url_prefix="/_admin")
    for emulator in emulators:
        controls = emulator.admin_blueprint()
        if controls is not None:
            controls.before_request(admin.loopback_only)
            app.register_blueprint(controls, url_prefix=f"/_admin/{emulator.name}")

    def owner(path: str) -> Emulator | None:
        for emulator in emulators:
            if path == emulator.prefix or path.startswith(emulator.prefix + "/"):
                return emulator
        return None

    @app.before_request
    def intercept() -> Response | None:
        emulator = owner(request.path)
        if emulator is None:
            return None
        if request.headers.get("User-Agent", "").startswith(HEALTH_AGENT):
            # Workbench's own health checks: not the provider's calls, so neither counted
            # nor faulted (a test's "fail the Nth call" must not land on them by chance).
            return emulator.check_request(request)
        route = request.url_rule.rule if request.url_rule is not None else request.path
        g.call_seq = calls.record(request.method, route, request.path, emulator.name)
        decision = faults.decide(request.method, request.path, emulator.operations(request))
        decision.apply_latency()
        if decision.acts:
            headers = {}
            if decision.retry_after is not None:
                headers["Retry-After"] = str(decision.retry_after)
            if decision.phase == "before":
                if decision.reset:
                    return drop_connection()
                return emulator.error_response(
                    decision.status, f"injected fault {decision.fault_ids}", headers)
            g.after_fault = (emulator, decision.status, headers, decision.fault_ids)
        return emulator.check_request(request)

    @app.after_request
    def finish(response: Response) -> Response:
        after = g.pop("after_fault", None)
        if after is not None and response.status_code < 400:
            emulator, status, headers, ids = after
            if status is None:
                response = drop_connection()
            else:
                response = emulator.error_response(
                    status, f"injected fault {ids} (the call was carried out)", headers)
        seq = g.get("call_seq")
        if seq is not None:
            # 0: the connection was dropped, the client got no status.
            calls.set_status(seq, 0 if g.get("dropped") else response.status_code)
        return response

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        emulator = owner(request.path)
        headers = {}
        if err.code == 405 and err.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
        if emulator is not None:
            detail = err.description or err.name
            if err.code == 404:
                detail = f"no route {request.method} {request.path}"
            return emulator.error_response(err.code or 500, detail, headers)
        return jsonify(error=err.name, detail=err.description), err.code

    @app.errorhandler(Exception)
    def crash(err: Exception):
        log.error("unhandled error on %s %s\n%s", request.method, request.path,
                  traceback.format_exc())
        emulator = owner(request.path)
        detail = f"sandbox bug: {type(err).__name__}: {err}"
        if emulator is not None:
            return emulator.error_response(500, detail)
        return jsonify(error="Internal Server Error", detail=detail), 500

    return app
