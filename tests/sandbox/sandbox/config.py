"""Process-wide settings of the sandbox (from the command line)."""

import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_KEY = "sandbox-workbench-key"
# Fixed so that runs are reproducible (it becomes the sts:ExternalId of the AWS role).
DEFAULT_ORG_ID = "6e1a4f0c-2b7d-4c59-9a83-5d0f1e2b3c4a"
DEFAULT_ORG_NAME = "Acme Corp"
# Expel's AWS account: the trust principal the AWS health check requires.
DEFAULT_EXPEL_ACCOUNT_ID = "012205512454"


@dataclass(frozen=True)
class Option:
    """A setting of one emulator: its command-line flag (`python -m sandbox --flag V`), its
    default (whose type parses the flag) and help. The emulator declares it in `options` and
    reads it with `config.setting(option)`."""

    flag: str
    default: Any
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass
class SandboxConfig:
    api_key: str = DEFAULT_API_KEY
    org_id: str = DEFAULT_ORG_ID
    org_name: str = DEFAULT_ORG_NAME
    # Where moto_server answers; kept for health checks that read AWS.
    moto_url: str | None = None
    # Or a file that will hold that URL (scripts/stack starts moto and the sandbox together).
    moto_url_file: str | None = None
    # The AWS proxy in front of moto (sandbox/awsproxy.py), or a file that will hold its URL.
    # When set, Workbench's AWS health check goes through it (marked as the sandbox's own
    # calls), so that its eventual-consistency refusals reach Workbench as AWS's would.
    aws_proxy_url: str | None = None
    aws_proxy_url_file: str | None = None
    # Seconds between a device write and its health check result.
    health_delay: float = 0.2
    # AWS health check: the account that must be trusted to assume the customer's role.
    expel_account_id: str = DEFAULT_EXPEL_ACCOUNT_ID
    # The emulators' own settings (their `options`), by `Option.dest`; a missing one is its
    # default.
    settings: dict[str, Any] = field(default_factory=dict)

    def setting(self, option: Option) -> Any:
        return self.settings.get(option.dest, option.default)

    def resolve_moto_url(self, wait: float = 10.0) -> str | None:
        """moto_url, else the URL in moto_url_file (waiting up to `wait` s for it)."""
        self.moto_url = _resolve(self.moto_url, self.moto_url_file, wait)
        return self.moto_url

    def resolve_aws_proxy_url(self, wait: float = 10.0) -> str | None:
        """aws_proxy_url, else the URL in aws_proxy_url_file (waiting up to `wait` s for it)."""
        self.aws_proxy_url = _resolve(self.aws_proxy_url, self.aws_proxy_url_file, wait)
        return self.aws_proxy_url


def _resolve(url: str | None, url_file: str | None, wait: float) -> str | None:
    deadline = time.monotonic() + wait
    while url is None and url_file:
        try:
            with open(url_file) as f:
                url = f.read().strip() or None
        except FileNotFoundError:
            pass
        if url is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return url
