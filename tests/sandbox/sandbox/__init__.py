"""Local emulators of the SaaS APIs the provider talks to (one process).

Layout:
  app.py        builds the Flask app: every emulator is a blueprint under its own URL
                prefix, plus the admin blueprint under /_admin
  registry.py   the list of emulators; a new one is its module and one line there
  emulator.py   the small interface every emulator implements (auth, error envelope,
                reset, dump; its options, admin routes, health checks, client variables)
  workbench.py  Expel Workbench JSON:API emulator (/api/v2)
  wiz.py        Wiz emulator (/wiz): OAuth token endpoint and GraphQL (graphql-core) over
                the SDL in wiz_schema.graphql; automation-rule webhooks
  sentinelone.py  SentinelOne Management API v2.1 emulator (/web/api/v2.1); its seed,
                permission catalogue, roles, error codes and rate limits are data in
                sentinelone_data.json (each fact labelled [V]/[D]/[G])
  plugins.json  the Workbench plugin catalogue (data; slugs and device_spec fields are
                guesses, see the file's "_provenance")
  schema.py     a small JSON Schema validator for the subset plugins.json uses
  health.py     device health checks (slug -> checker, gathered from the emulators)
  awshealth.py  the `aws` device health check (trust policy, role policy, queue) against moto
  awsproxy.py   fault-injecting proxy in front of moto_server (stdlib only; its own process)
  faults.py     fault injection (fail the Nth call, latency, 429) and call counting
  admin.py      /_admin routes for tests
  __main__.py   `python -m sandbox --port 0 --port-file FILE ...`
"""

__all__ = ["create_app", "SandboxConfig"]

from .config import SandboxConfig  # noqa: E402
from .app import create_app  # noqa: E402
