"""Fault injection and call counting for the emulators (not for /_admin).

A fault is registered with POST /_admin/faults:

    {"route": "POST /api/v2/security_devices",  # "<METHOD> <path-prefix>"; METHOD may be "*",
                                                #  or give only "<path-prefix>" for any method
     "nth": 2,              # first matching call hit, counted from registration (default 1)
     "count": 1,            # consecutive matching calls hit (default 1; -1 = every call from nth on)
     "status": 503,         # answer this status (400-599) in the vendor's error envelope ...
     "retry_after": 2,      # ... with a Retry-After header (seconds)
     "latency_ms": 250,     # sleep this long first (alone: only slow the call down)
     "phase": "before",     # "before": fail without running the handler (state untouched);
                            # "after": run the handler, then answer the error (lost response)
     "reset": true,         # instead of a status: close the connection without an answer
     "operation": "createServiceAccount"}  # only calls naming this operation (GraphQL:
                            # the operationName or a root field; see Emulator.operations)

At least one of status, reset and latency_ms must be given; status and reset exclude each
other. `phase: "after"` with a status or reset is "act then fail": the change is made, the
client never learns it.

The list of registered faults, the check of a spec's keys and the window of calls a fault
acts on are the AWS proxy's (awsproxy.py, stdlib only); what a fault matches and does is the
sandbox's own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .awsproxy import FaultList, FaultSpecError, FaultWindow, check_spec_keys

FAULT_KEYS = {"route", "nth", "count", "status", "retry_after", "latency_ms", "phase", "reset",
              "operation"}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"}


@dataclass
class Fault(FaultWindow):
    id: int
    route: str
    method: str
    path_prefix: str
    nth: int = 1
    count: int = 1
    status: int | None = None
    retry_after: int | None = None
    latency_ms: int = 0
    phase: str = "before"
    reset: bool = False
    operation: str | None = None
    matched: int = 0  # matching calls seen since registration
    fired: int = 0  # calls this fault acted on

    def matches(self, method: str, path: str, operations: frozenset[str] = frozenset()) -> bool:
        return ((self.method == "*" or self.method == method)
                and path.startswith(self.path_prefix)
                and (self.operation is None or self.operation in operations))



def _int_field(spec: dict[str, Any], key: str, default: int | None, minimum: int) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise FaultSpecError(f"{key} must be an integer >= {minimum}")
    return value


def parse_fault(spec: Any, fault_id: int) -> Fault:
    check_spec_keys(spec, FAULT_KEYS)
    route = spec.get("route")
    if not isinstance(route, str) or not route.strip():
        raise FaultSpecError('route must be a string like "POST /api/v2/security_devices"')
    parts = route.split()
    if len(parts) == 1:
        method, prefix = "*", parts[0]
    elif len(parts) == 2:
        method, prefix = parts[0].upper(), parts[1]
    else:
        raise FaultSpecError('route must be "<METHOD> <path-prefix>" or "<path-prefix>"')
    if method not in HTTP_METHODS:
        raise FaultSpecError(f"unknown method {method!r}")
    if not prefix.startswith("/"):
        raise FaultSpecError("the path prefix must start with /")
    nth = _int_field(spec, "nth", 1, 1)
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count == 0 or count < -1:
        raise FaultSpecError("count must be a positive integer, or -1 for every call")
    status = _int_field(spec, "status", None, 400)
    if status is not None and status > 599:
        raise FaultSpecError("status must be 400-599")
    retry_after = _int_field(spec, "retry_after", None, 0)
    latency_ms = _int_field(spec, "latency_ms", 0, 0)
    reset = spec.get("reset", False)
    if not isinstance(reset, bool):
        raise FaultSpecError("reset must be true or false")
    if reset and status is not None:
        raise FaultSpecError("give either a status or reset, not both")
    if status is None and not reset and not latency_ms:
        raise FaultSpecError("give a status, reset or a latency_ms")
    operation = spec.get("operation")
    if operation is not None and (not isinstance(operation, str) or not operation.strip()):
        raise FaultSpecError("operation must be a non-empty string, e.g. \"createServiceAccount\"")
    if retry_after is not None and status is None:
        raise FaultSpecError("retry_after needs a status (429 or 503)")
    phase = spec.get("phase", "before")
    if phase not in ("before", "after"):
        raise FaultSpecError('phase must be "before" or "after"')
    return Fault(
        id=fault_id,
        route=route,
        method=method,
        path_prefix=prefix,
        nth=nth or 1,
        count=count,
        status=status,
        retry_after=retry_after,
        latency_ms=latency_ms or 0,
        phase=phase,
        reset=reset,
        operation=operation,
    )


@dataclass
class FaultDecision:
    """What the app does to one call: sleep, then maybe answer an error."""

    latency_ms: int = 0
    status: int | None = None
    retry_after: int | None = None
    phase: str = "before"
    reset: bool = False
    fault_ids: list[int] = field(default_factory=list)

    @property
    def acts(self) -> bool:
        """The call is answered with an error or its connection is dropped."""
        return self.status is not None or self.reset

    def apply_latency(self) -> None:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)


class FaultBook(FaultList):
    def __init__(self) -> None:
        super().__init__(parse_fault)

    def decide(self, method: str, path: str,
               operations: frozenset[str] = frozenset()) -> FaultDecision:
        """Count this call against every matching fault and combine those that fire.

        Latencies add up; the first (oldest) fault with a status or reset decides the answer.
        """
        decision = FaultDecision()
        with self._lock:
            for fault in self._faults.values():
                if not fault.matches(method, path, operations):
                    continue
                fault.matched += 1
                if not fault.in_window(fault.matched):
                    continue
                fault.fired += 1
                decision.fault_ids.append(fault.id)
                decision.latency_ms += fault.latency_ms
                if (fault.status is not None or fault.reset) and not decision.acts:
                    decision.status = fault.status
                    decision.reset = fault.reset
                    decision.retry_after = fault.retry_after
                    decision.phase = fault.phase
        return decision


class CallLog:
    """Counts calls per route template (ids collapsed) and per emulator, and keeps a bounded
    call log."""

    MAX_LOG = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self._seq = 0
        self._routes: dict[str, int] = {}
        self._emulators: dict[str, int] = {}
        self._log: list[dict[str, Any]] = []

    def reset(self) -> None:
        with self._lock:
            self._reset_locked()

    def record(self, method: str, route: str, path: str, emulator: str) -> int:
        with self._lock:
            self._seq += 1
            key = f"{method} {route}"
            self._routes[key] = self._routes.get(key, 0) + 1
            self._emulators[emulator] = self._emulators.get(emulator, 0) + 1
            self._log.append(
                {"seq": self._seq, "method": method, "route": route, "path": path, "status": None}
            )
            if len(self._log) > self.MAX_LOG:
                del self._log[: len(self._log) - self.MAX_LOG]
            return self._seq

    def set_status(self, seq: int, status: int) -> None:
        with self._lock:
            # The entry is near the end; scan backwards.
            for entry in reversed(self._log):
                if entry["seq"] == seq:
                    entry["status"] = status
                    break
                if entry["seq"] < seq:
                    break

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._seq,
                "routes": dict(sorted(self._routes.items())),
                "emulators": dict(sorted(self._emulators.items())),
                "log": [dict(e) for e in self._log if e["seq"] > since],
            }
