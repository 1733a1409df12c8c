#!/usr/bin/env python3
"""A provider registry over HTTPS serving one dist/ directory, for the install test.

It answers the two calls of Terraform's provider registry protocol (HashiCorp's "Provider
Registry Protocol" reference: "List Available Versions" and "Find a Provider Package"):

  GET /v1/providers/<namespace>/<type>/versions
  GET /v1/providers/<namespace>/<type>/<version>/download/<os>/<arch>

and serves the files they point at under /files/. Terraform reaches it through a CLI
configuration `host "registry.terraform.io" { services = { "providers.v1" = ... } }` block,
which replaces service discovery for that host (hashicorp/terraform issue 20453, a
maintainer: "a block like the above will cause Terraform to skip network-based discovery for
the given hostname and use the inline service map instead").

  registry.py --dist DIR --cert PEM --key PEM --public-key ASC --key-id ID

dist/ is what scripts/release writes (<name>_<version>_<os>_<arch>.zip, _SHA256SUMS, its .sig,
_manifest.json). The versions and platforms are read from the zips' names, the protocols from
the manifest, each zip's shasum from SHA256SUMS. Prints "port N" once it listens on 127.0.0.1
(port 0: any free port); each request is logged to stderr ("GET <path> <status>").
"""
import argparse
import json
import os
import re
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMESPACE = "expel-io"
TYPE = "expel"
NAME = f"terraform-provider-{TYPE}"
ZIP = re.compile(rf"^{re.escape(NAME)}_(?P<version>[^_]+)_(?P<os>[a-z0-9]+)_(?P<arch>[a-z0-9]+)\.zip$")


def load(dist):
    """{version: {"protocols": [...], "platforms": {(os, arch): filename}, "shasums": {...}}}."""
    releases = {}
    for f in sorted(os.listdir(dist)):
        m = ZIP.match(f)
        if m:
            r = releases.setdefault(m["version"], {"platforms": {}})
            r["platforms"][(m["os"], m["arch"])] = f
    for version, r in releases.items():
        with open(os.path.join(dist, f"{NAME}_{version}_manifest.json")) as f:
            r["protocols"] = json.load(f)["metadata"]["protocol_versions"]
        with open(os.path.join(dist, f"{NAME}_{version}_SHA256SUMS")) as f:
            r["shasums"] = dict(reversed(line.split()) for line in f if line.strip())
    return releases


def handler(dist, releases, public_key, key_id):
    class Registry(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # one line per request, to stderr
            sys.stderr.write(fmt % args + "\n")

        def log_request(self, code="-", size="-"):
            self.log_message("%s %s %s", self.command, self.path, code)

        def send_json(self, doc, status=200):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def base(self):
            return f"https://127.0.0.1:{self.server.server_address[1]}"

        def do_HEAD(self):  # Terraform asks for the zip's headers before its body
            self.do_GET()

        def do_GET(self):
            parts = self.path.strip("/").split("/")
            if parts[:1] == ["files"] and len(parts) == 2 and "/" not in parts[1]:
                return self.send_file(parts[1])
            if parts[:4] != ["v1", "providers", NAMESPACE, TYPE]:
                return self.send_json({"errors": ["Not Found"]}, 404)
            rest = parts[4:]
            if rest == ["versions"]:
                return self.send_json({"versions": [
                    {"version": v, "protocols": r["protocols"],
                     "platforms": [{"os": o, "arch": a} for (o, a) in sorted(r["platforms"])]}
                    for v, r in sorted(releases.items())]})
            if len(rest) == 4 and rest[1] == "download" and rest[0] in releases:
                version, _, os_, arch = rest
                r = releases[version]
                filename = r["platforms"].get((os_, arch))
                if filename is None:
                    return self.send_json({"errors": ["Not Found"]}, 404)
                sums = f"{NAME}_{version}_SHA256SUMS"
                return self.send_json({
                    "protocols": r["protocols"], "os": os_, "arch": arch,
                    "filename": filename,
                    "download_url": f"{self.base()}/files/{filename}",
                    "shasums_url": f"{self.base()}/files/{sums}",
                    "shasums_signature_url": f"{self.base()}/files/{sums}.sig",
                    "shasum": r["shasums"][filename],
                    "signing_keys": {"gpg_public_keys": [{
                        "key_id": key_id, "ascii_armor": public_key,
                        "trust_signature": "", "source": "", "source_url": None}]},
                })
            return self.send_json({"errors": ["Not Found"]}, 404)

        def send_file(self, name):
            path = os.path.join(dist, name)
            if not os.path.isfile(path):
                return self.send_json({"errors": ["Not Found"]}, 404)
            with open(path, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Registry


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dist", required=True)
    p.add_argument("--cert", required=True, help="PEM certificate for 127.0.0.1")
    p.add_argument("--key", required=True, help="PEM private key of --cert")
    p.add_argument("--public-key", required=True, help="ASCII-armored signing key")
    p.add_argument("--key-id", required=True, help="the signing key's id")
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    releases = load(a.dist)
    if not releases:
        sys.exit(f"registry.py: {a.dist} holds no {NAME}_<version>_<os>_<arch>.zip")
    with open(a.public_key) as f:
        public_key = f.read()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler(a.dist, releases, public_key, a.key_id))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(a.cert, a.key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
