"""Device health checks, the way Workbench runs them after a device is written.

Each emulator names the checks it answers (`Emulator.health_checks`: plugin slug ->
checker); the app gathers them from every registered emulator into `HealthContext.checks`.
A checker gets the stored device (secrets included) and a `HealthContext`, and returns
(status, status_details) with status "healthy" or "unhealthy". It runs on a timer thread,
outside the store lock, so it may make HTTP calls (to moto, or to another emulator through
`ctx.emulator(name)`). A slug without a checker gets "health_checks_not_supported". An
exception in a checker makes the device "unhealthy" with the error in status_details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import SandboxConfig
from .emulator import HealthCheck

HealthResult = tuple[str, dict[str, Any]]


@dataclass
class HealthContext:
    config: SandboxConfig
    emulators: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, HealthCheck] = field(default_factory=dict)

    def emulator(self, name: str) -> Any:
        return self.emulators[name]


def spec_accepted(device: dict[str, Any], ctx: HealthContext) -> HealthResult:
    """Healthy whenever the device_spec passed the plugin schema (it always has by now)."""
    return "healthy", {"checks": [{"name": "device_spec", "result": "ok"}]}


NOT_SUPPORTED = "health_checks_not_supported"


def run_check(device: dict[str, Any], ctx: HealthContext) -> HealthResult:
    checker = ctx.checks.get(device.get("plugin_slug") or "")
    if checker is None:
        return NOT_SUPPORTED, {}
    try:
        status, details = checker(device, ctx)
    except Exception as err:  # a broken check is an unhealthy device, not a dead thread
        return "unhealthy", {"error": f"{type(err).__name__}: {err}"}
    if status not in ("healthy", "unhealthy", NOT_SUPPORTED):
        return "unhealthy", {"error": f"checker returned unknown status {status!r}"}
    return status, details
