"""python -m sandbox --port 0 --port-file FILE [--api-key K] [--org-id ID] [--org-name N]
                    [--moto-url URL | --moto-url-file F]
                    [--aws-proxy-url URL | --aws-proxy-url-file F] [--health-delay SECONDS]
                    [--expel-account-id ID] [--quiet] [each emulator's options (--help)]

Serves every emulator from one threaded Werkzeug server on 127.0.0.1. With --port 0 the
kernel picks a free port; --port-file receives the port (written atomically) once the
socket is listening.
"""

from __future__ import annotations

import argparse
import logging
import sys

from werkzeug.serving import make_server

from .app import create_app
from .awsproxy import serve_until_signalled, write_port_file
from .config import (DEFAULT_API_KEY, DEFAULT_EXPEL_ACCOUNT_ID, DEFAULT_ORG_ID, DEFAULT_ORG_NAME,
                     SandboxConfig)
from .registry import options


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick one)")
    p.add_argument("--port-file", help="write the listening port here once ready")
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help="Workbench API key to accept")
    p.add_argument("--org-id", default=DEFAULT_ORG_ID, help="Workbench organization id")
    p.add_argument("--org-name", default=DEFAULT_ORG_NAME, help="Workbench organization name")
    p.add_argument("--moto-url", default=None, help="moto_server base URL (for health checks)")
    p.add_argument("--moto-url-file", default=None,
                   help="or a file that will hold that URL (read when first needed)")
    p.add_argument("--aws-proxy-url", default=None,
                   help="the AWS proxy in front of moto: health checks go through it")
    p.add_argument("--aws-proxy-url-file", default=None,
                   help="or a file that will hold that URL (read when first needed)")
    p.add_argument("--health-delay", type=float, default=0.2,
                   help="seconds from a device write to its health-check result")
    p.add_argument("--expel-account-id", default=DEFAULT_EXPEL_ACCOUNT_ID,
                   help="AWS account the aws health check requires in the role's trust policy")
    p.add_argument("--quiet", action="store_true", help="do not log every request")
    for option in options():
        p.add_argument(option.flag, type=type(option.default), default=option.default,
                       help=option.help)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    config = SandboxConfig(api_key=args.api_key, org_id=args.org_id, org_name=args.org_name,
                           moto_url=args.moto_url, moto_url_file=args.moto_url_file,
                           aws_proxy_url=args.aws_proxy_url,
                           aws_proxy_url_file=args.aws_proxy_url_file,
                           health_delay=args.health_delay,
                           expel_account_id=args.expel_account_id,
                           settings={o.dest: getattr(args, o.dest) for o in options()})
    app = create_app(config)
    server = make_server("127.0.0.1", args.port, app, threaded=True)  # binds and listens
    port = server.server_port
    if args.port_file:
        write_port_file(args.port_file, port)
    logging.getLogger("sandbox").info("listening on http://127.0.0.1:%d", port)
    serve_until_signalled(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
