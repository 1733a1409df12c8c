"""The parts of scripts/bench.py: `common` (sides, messages), `handshake`, `rss` (the plugins'
peak RSS), `terraform` (running terraform, its CLI configurations and working directories),
`stack` (the local stack's admin APIs: reset, call counts, faults, eventual consistency,
leftovers), `runs` (one side's apply/plan/drift/destroy figures, the SaaS and eventual
consistency runs) and `report` (the two tables)."""
