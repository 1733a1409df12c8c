"""What every SaaS emulator in the sandbox provides to the app and the admin routes."""

from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Request, Response

from .config import Option

# A device health check: (device, HealthContext) -> (status, status_details); see health.py.
HealthCheck = Callable[[dict[str, Any], Any], tuple[str, dict[str, Any]]]


class Emulator:
    """One vendor API served under `prefix` by `blueprint`.

    The app calls `check_request` before every call under `prefix` (after counting the
    call and applying injected faults), and renders every error under `prefix`, its own
    or the app's (404 of an unknown route, injected 500/429), with `error_response`, so
    that each vendor answers in its own error envelope.

    An emulator is served once its class is listed in registry.py `EMULATORS`: that list
    gives `python -m sandbox` its `options`, the app its blueprints (the API under `prefix`,
    the `admin_blueprint` under /_admin/<name>), Workbench its `health_checks`, and
    scripts/stack the `client_env` it exports.
    """

    name: str = ""
    prefix: str = ""
    blueprint: Blueprint
    # Command-line settings (`python -m sandbox --help`), read with `config.setting(option)`.
    options: tuple[Option, ...] = ()

    def admin_blueprint(self) -> Blueprint | None:
        """Test controls of this emulator, served under /_admin/<name> (loopback only)."""
        return None

    def health_checks(self) -> dict[str, HealthCheck]:
        """The Workbench device health checks this emulator answers: plugin slug -> check."""
        return {}

    def client_env(self, base_url: str) -> dict[str, str]:
        """The variables that point the provider at this emulator served at `base_url`
        (GET /_admin/env; scripts/stack exports them)."""
        return {}

    def check_request(self, request: Request) -> Response | None:
        """Auth and content negotiation. Return a response to refuse the call."""
        return None

    def error_response(
        self,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        raise NotImplementedError

    def operations(self, request: Request) -> frozenset[str]:
        """Names of the operations a call carries, for faults with an `operation` (e.g. the
        GraphQL operationName and root fields). REST emulators: none (the route says it)."""
        return frozenset()

    def reset(self) -> None:
        """Forget everything written through the API (seed data stays)."""

    def dump(self) -> dict[str, Any]:
        """Everything stored, secrets included (for tests, via /_admin/state)."""
        return {}
