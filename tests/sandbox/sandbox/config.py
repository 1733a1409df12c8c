"""Process-wide settings of the sandbox (from the command line)."""

from dataclasses import dataclass

DEFAULT_API_KEY = "sandbox-workbench-key"
# Fixed so that runs are reproducible (it becomes the sts:ExternalId of the AWS role).
DEFAULT_ORG_ID = "6e1a4f0c-2b7d-4c59-9a83-5d0f1e2b3c4a"
DEFAULT_ORG_NAME = "Acme Corp"


@dataclass
class SandboxConfig:
    api_key: str = DEFAULT_API_KEY
    org_id: str = DEFAULT_ORG_ID
    org_name: str = DEFAULT_ORG_NAME
    # Where moto_server answers; kept for health checks that read AWS.
    moto_url: str | None = None
    # Seconds between a device write and its health check result.
    health_delay: float = 0.2
