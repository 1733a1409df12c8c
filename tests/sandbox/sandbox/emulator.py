"""What every SaaS emulator in the sandbox provides to the app and the admin routes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response


class Emulator:
    """One vendor API served under `prefix` by `blueprint`.

    The app calls `check_request` before every call under `prefix` (after counting the
    call and applying injected faults), and renders every error under `prefix`, its own
    or the app's (404 of an unknown route, injected 500/429), with `error_response`, so
    that each vendor answers in its own error envelope.
    """

    name: str = ""
    prefix: str = ""
    blueprint: Blueprint

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
