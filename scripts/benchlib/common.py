"""What every part of the benchmark shares: the repository root, the sides, messages."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPEL, AWS = "expel", "aws"
SAAS = "saas"  # the side of the SentinelOne and Wiz runs (same plugin, own RSS figure)


def die(msg):
    raise SystemExit(f"bench: {msg}")


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)
