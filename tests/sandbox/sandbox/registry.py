"""The emulators the sandbox serves, in one list.

A new emulator is one module (a subclass of `emulator.Emulator`: its API blueprint, error
envelope, reset and dump, and as it needs them its command-line `options`, `admin_blueprint`,
`health_checks` and `client_env`) and one line in `EMULATORS`. Everything else iterates this
list: `python -m sandbox` (its flags), app.py (blueprints, auth, faults, errors), the
Workbench health checks, /_admin (reset, state, env) and scripts/stack (the exported
variables, through GET /_admin/env).
"""

from __future__ import annotations

from .config import Option, SandboxConfig
from .emulator import Emulator
from .sentinelone import SentinelOneEmulator
from .wiz import WizEmulator
from .workbench import WorkbenchEmulator

EMULATORS: tuple[type[Emulator], ...] = (
    WorkbenchEmulator,
    SentinelOneEmulator,
    WizEmulator,
)


def options() -> list[Option]:
    """Every emulator's command-line settings."""
    return [option for emulator in EMULATORS for option in emulator.options]


def build_emulators(config: SandboxConfig) -> list[Emulator]:
    """One of each registered emulator, in the order of `EMULATORS`."""
    return [emulator(config) for emulator in EMULATORS]
