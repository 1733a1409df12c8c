"""A fault-injecting HTTP proxy in front of moto_server (docs/ARCHITECTURE.md#the-local-stack).

    python -m sandbox.awsproxy --upstream http://127.0.0.1:M --port 0 --port-file F
    python tests/sandbox/sandbox/awsproxy.py ...   (the same; stdlib only, starts fast)
    --upstream-file FILE instead of --upstream: read moto's URL from FILE when the first
    call needs it (scripts/stack starts the proxy and moto side by side this way)
    --eventual [--eventual-refusals K] [--eventual-assume-seconds N]: start with the
    eventual-consistency mode on (below; default off, K=2, N=5)

Clients (the provider's AWS SDK, boto3) point their endpoint at the proxy. Every request
is forwarded to moto with its method, path, headers and body unchanged (a chunked body is
passed on chunked, trailers included); the answer comes back with its headers, its body
re-framed with a Content-Length. moto keeps the state, so a fault never loses it.

Each call is classified as <service>.<Operation>:
  service    the SigV4 credential scope (`Credential=AKID/date/region/<service>/aws4_request`,
             from the Authorization header or X-Amz-Credential of a presigned URL)
  operation  X-Amz-Target (JSON protocols: SQS, KMS, CloudTrail), else the `Action` of a
             query-protocol form (IAM, STS), else for S3 the method, path and sub-resource
             (`PUT /b?notification` = PutBucketNotificationConfiguration, `PUT /b/k` =
             PutObject, ...; the SDKs' `x-id=` parameter wins when present)

Admin API on the same port (JSON; the server listens on 127.0.0.1 only):
  GET    /_proxy/health          {"status": "ok", "upstream": URL (null while not known)}
  POST   /_proxy/faults          201 fault; 400 {"error"}. Body:
           {"service": "sqs",             # credential-scope service, or "*" (default)
            "operation": "CreateQueue",   # or "*" (default); case-insensitive
            "nth": 1,                     # first matching call hit, counted from registration
            "count": 1,                   # consecutive calls hit; -1 = every call from nth on
            "kind": "status",             # "status": answer an error in the protocol's envelope
                                          # "reset": close the connection without an answer (RST)
                                          # "latency": only delay the call
            "status": 500,                # (status) HTTP status 400-599
            "code": "ThrottlingException",# (status) error code; default from status+protocol
            "message": "...",             # (status) error message
            "latency_ms": 50,             # delay (any kind); required for "latency"
            "phase": "before"}            # "before": moto never sees the call;
                                          # "after": forward to moto first, then fail/delay
                                          # (lost response: state changed, client saw an error)
  GET    /_proxy/faults          {"faults": [... with matched, fired, exhausted]}
  DELETE /_proxy/faults          204;  DELETE /_proxy/faults/<id>  204 or 404
  GET    /_proxy/calls[?since=SEQ]
                                 {"total": N, "operations": {"sqs.CreateQueue": 2, ...},
                                  "log": [{"seq", "service", "operation", "method", "path",
                                           "status", "outcome", "fault_ids", "ms"}]}
                                 STS AssumeRole and AssumeRoleWithWebIdentity entries add
                                 "session": what the call asked for (see session_params).
  DELETE /_proxy/calls           204
  POST   /_proxy/reset           204 (faults, calls, and the objects the eventual-consistency
                                 mode tracks and its counters; its settings stay)
  GET    /_proxy/eventual        {"enabled": false, "refusals": K, "assume_role_seconds": N,
                                  "refused": {"s3.PutBucketPolicy": 2, ...},
                                  "refused_internal": {"sts.AssumeRole": 1, ...},
                                  "tracked": {"buckets", "keys", "roles", "policies"}}
  PUT    /_proxy/eventual        {"enabled": true, "refusals": 2, "assume_role_seconds": 5}
                                 (any subset; refusals an integer 0-1000, seconds 0-3600;
                                 the read-only keys of GET are ignored): 200 as GET; 400
                                 {"error"} and no change on bad input. Turning the mode off
                                 forgets the tracked objects.
Paths under /moto-api/ pass straight through: never counted, never faulted.

Eventual consistency (off unless --eventual or PUT /_proxy/eventual): real AWS refuses some
calls for a few seconds after a create; moto never does. With the mode on, a create that
moto carried out is tracked, and the next K matching calls are answered, before moto sees
them, with AWS's code, status and message in the protocol's envelope (details and sources at
class Eventual):
  s3 CreateBucket   -> PutBucketTagging/Policy/Encryption/Versioning/NotificationConfiguration,
                       PutPublicAccessBlock on it: 404 NoSuchBucket
  kms CreateKey     -> CreateAlias/PutKeyPolicy/EnableKeyRotation/TagResource of it:
                       400 NotFoundException; the first K CreateTrail with it as KmsKeyId:
                       400 KmsKeyNotFoundException
  iam CreateRole, CreatePolicy -> AttachRolePolicy naming it: 404 NoSuchEntity
  sts AssumeRole of a role created less than N seconds ago: 403 AccessDenied
Each refusal is in the call log with outcome "eventual" and counted per operation in
GET /_proxy/eventual ("refused").

Requests with the header `x-sandbox-internal` (any value; the sandbox sends
`x-sandbox-internal: workbench` from Workbench's AWS health check) are the sandbox's own:
neither logged in /_proxy/calls nor faulted, but refused by the eventual-consistency mode like
any other call (counted in "refused_internal"), as AWS would refuse Workbench.

Several faults may match one call: their latencies add up; the oldest matching status or
reset fault decides the outcome. A fault counts only the calls it matches.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import logging
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from xml.sax.saxutils import escape as xml_escape

log = logging.getLogger("awsproxy")

ADMIN_PREFIX = "/_proxy/"
# Requests that carry this header are the sandbox's own (Workbench's health check).
INTERNAL_HEADER = "x-sandbox-internal"
PASSTHROUGH_PREFIX = "/moto-api/"
MAX_LINE = 65536

# Hop-by-hop request headers, not forwarded. Transfer-Encoding and Trailer are kept: a
# chunked body is forwarded chunked, byte for byte. Expect is answered here (100 Continue).
REQUEST_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "te", "upgrade",
                       "expect", "proxy-authorization"}
# The body of a response is read whole and re-framed with Content-Length.
RESPONSE_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "trailer", "upgrade", "proxy-authenticate"}

# ---------------------------------------------------------------------------------------
# Classification: which service and operation a request is


@dataclass
class Call:
    service: str
    operation: str
    protocol: str  # "json" | "query" | "s3" | "rest"
    content_type: str = ""

    @property
    def key(self) -> str:
        return f"{self.service}.{self.operation}"


CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
TARGET_SERVICES = {"amazonsqs": "sqs", "trentservice": "kms", "cloudtrail_20131101": "cloudtrail",
                   "awsorganizationsv20161128": "organizations"}
QUERY_VERSIONS = {"2010-05-08": "iam", "2011-06-15": "sts", "2012-11-05": "sqs"}

# S3 sub-resources of a bucket: name -> (GET, PUT, DELETE) operation names.
S3_BUCKET_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "accelerate": ("GetBucketAccelerateConfiguration", "PutBucketAccelerateConfiguration", None),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "analytics": ("GetBucketAnalyticsConfiguration", "PutBucketAnalyticsConfiguration",
                  "DeleteBucketAnalyticsConfiguration"),
    "cors": ("GetBucketCors", "PutBucketCors", "DeleteBucketCors"),
    "encryption": ("GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption"),
    "intelligent-tiering": ("GetBucketIntelligentTieringConfiguration",
                            "PutBucketIntelligentTieringConfiguration",
                            "DeleteBucketIntelligentTieringConfiguration"),
    "inventory": ("GetBucketInventoryConfiguration", "PutBucketInventoryConfiguration",
                  "DeleteBucketInventoryConfiguration"),
    "lifecycle": ("GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration",
                  "DeleteBucketLifecycle"),
    "location": ("GetBucketLocation", None, None),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "metrics": ("GetBucketMetricsConfiguration", "PutBucketMetricsConfiguration",
                "DeleteBucketMetricsConfiguration"),
    "notification": ("GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration",
                     None),
    "object-lock": ("GetObjectLockConfiguration", "PutObjectLockConfiguration", None),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls",
                          "DeleteBucketOwnershipControls"),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "publicAccessBlock": ("GetPublicAccessBlock", "PutPublicAccessBlock",
                          "DeletePublicAccessBlock"),
    "replication": ("GetBucketReplication", "PutBucketReplication", "DeleteBucketReplication"),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
    "uploads": ("ListMultipartUploads", None, None),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "versions": ("ListObjectVersions", None, None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
}
S3_OBJECT_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "acl": ("GetObjectAcl", "PutObjectAcl", None),
    "attributes": ("GetObjectAttributes", None, None),
    "legal-hold": ("GetObjectLegalHold", "PutObjectLegalHold", None),
    "retention": ("GetObjectRetention", "PutObjectRetention", None),
    "tagging": ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
    "torrent": ("GetObjectTorrent", None, None),
}
S3_METHOD_INDEX = {"GET": 0, "PUT": 1, "DELETE": 2}


def _camel(word: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[-_]", word) if p)


def s3_operation(method: str, path: str, query: list[tuple[str, str]],
                 headers: Any) -> str:
    params = dict(query)
    if params.get("x-id"):
        return params["x-id"]
    bucket, _, key = path.lstrip("/").partition("/")
    keys = [k for k, _ in query]
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method.title()}Service"
    copy_source = headers.get("x-amz-copy-source") is not None
    if not key:
        for k in keys:
            if k in S3_BUCKET_SUBRESOURCES and method in S3_METHOD_INDEX:
                name = S3_BUCKET_SUBRESOURCES[k][S3_METHOD_INDEX[method]]
                return name or f"{method.title()}Bucket{_camel(k)}"
        if method == "POST" and "delete" in params:
            return "DeleteObjects"
        return {"GET": "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects",
                "PUT": "CreateBucket", "DELETE": "DeleteBucket",
                "HEAD": "HeadBucket"}.get(method, f"{method.title()}Bucket")
    for k in keys:
        if k in S3_OBJECT_SUBRESOURCES and method in S3_METHOD_INDEX:
            name = S3_OBJECT_SUBRESOURCES[k][S3_METHOD_INDEX[method]]
            return name or f"{method.title()}Object{_camel(k)}"
    if "uploadId" in params:
        if method == "PUT":
            return "UploadPartCopy" if copy_source else "UploadPart"
        return {"GET": "ListParts", "DELETE": "AbortMultipartUpload",
                "POST": "CompleteMultipartUpload"}.get(method, f"{method.title()}Upload")
    if method == "POST":
        for k, name in (("uploads", "CreateMultipartUpload"), ("restore", "RestoreObject"),
                        ("select", "SelectObjectContent")):
            if k in params:
                return name
    if method == "PUT" and copy_source:
        return "CopyObject"
    return {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject",
            "DELETE": "DeleteObject"}.get(method, f"{method.title()}Object")


def classify(method: str, target: str, headers: Any, body: bytes) -> Call:
    """<service>.<Operation> of a request (see the module docstring)."""
    split = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    params = dict(query)
    content_type = headers.get("Content-Type", "") or ""
    service = ""
    scope = CREDENTIAL_SCOPE.search(headers.get("Authorization", "") or "")
    if scope:
        service = scope.group(4)
    elif params.get("X-Amz-Credential"):
        parts = params["X-Amz-Credential"].split("/")
        if len(parts) >= 5:
            service = parts[3]
    amz_target = headers.get("X-Amz-Target")
    if amz_target:
        prefix, _, operation = amz_target.rpartition(".")
        if not service:
            service = TARGET_SERVICES.get(prefix.rsplit(".", 1)[-1].lower(), "unknown")
        return Call(service.lower(), operation, "json", content_type)
    form: dict[str, str] = {}
    if "x-www-form-urlencoded" in content_type.lower() and body:
        try:
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                               keep_blank_values=True))
        except ValueError:
            form = {}
    action = form.get("Action") or params.get("Action")
    if service == "s3" or (not service and not action and params.get("x-id")):
        return Call("s3", s3_operation(method, split.path, query, headers), "s3", content_type)
    if action:
        if not service:
            version = form.get("Version") or params.get("Version") or ""
            service = QUERY_VERSIONS.get(version, "unknown")
        return Call(service.lower(), action, "query", content_type)
    return Call((service or "unknown").lower(), f"{method} {split.path}", "rest", content_type)


# ---------------------------------------------------------------------------------------
# Error envelopes, by protocol

DEFAULT_CODES = {
    "json": {400: "ValidationException", 403: "AccessDeniedException",
             404: "ResourceNotFoundException", 409: "ConflictException",
             429: "ThrottlingException", 500: "InternalFailure", 503: "ServiceUnavailable"},
    "rest": {400: "ValidationException", 403: "AccessDeniedException",
             404: "ResourceNotFoundException", 409: "ConflictException",
             429: "ThrottlingException", 500: "InternalFailure", 503: "ServiceUnavailable"},
    "query": {400: "ValidationError", 403: "AccessDenied", 404: "NoSuchEntity",
              409: "EntityAlreadyExists", 429: "Throttling", 500: "InternalFailure",
              503: "ServiceUnavailable"},
    "s3": {400: "InvalidRequest", 403: "AccessDenied", 404: "NoSuchKey", 409: "Conflict",
           429: "SlowDown", 500: "InternalError", 503: "SlowDown"},
}
QUERY_NAMESPACES = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/",
                    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
                    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}
THROTTLE_CODES = {"throttling", "throttlingexception", "throttledexception", "slowdown",
                  "requestlimitexceeded", "toomanyrequestsexception", "requestthrottled",
                  "requestthrottledexception", "provisionedthroughputexceededexception",
                  "limitexceededexception", "bandwidthlimitexceeded"}


def default_status(code: str | None, protocol: str) -> int:
    if code is None:
        return 500
    low = code.lower()
    if low == "slowdown" or low.startswith("serviceunavailable"):
        return 503
    if low in THROTTLE_CODES:
        return 503 if protocol == "s3" else 400
    if "internal" in low or low == "servicefailure":
        return 500
    return 400


def error_reply(call: Call, status: int, code: str | None, message: str, request_id: str,
                head: bool, s3_extra: dict[str, str] | None = None
                ) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error answer in the call's protocol. s3_extra: more elements of an S3 <Error>
    after <Message> (S3 names the bucket of a NoSuchBucket in <BucketName>)."""
    code = code or DEFAULT_CODES[call.protocol].get(status) or "InjectedFault"
    if call.protocol in ("json", "rest"):
        ctype = call.content_type if call.content_type.startswith("application/x-amz-json") \
            else ("application/x-amz-json-1.0" if call.protocol == "json" else "application/json")
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", ctype), ("x-amzn-RequestId", request_id),
                   ("x-amzn-ErrorType", code)]
    elif call.protocol == "query":
        ns = QUERY_NAMESPACES.get(call.service)
        kind = "Sender" if status < 500 else "Receiver"
        body = (f'<ErrorResponse{f" xmlns={chr(34)}{ns}{chr(34)}" if ns else ""}>'
                f"<Error><Type>{kind}</Type><Code>{xml_escape(code)}</Code>"
                f"<Message>{xml_escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    else:  # s3
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
                + "".join(f"<{k}>{xml_escape(v)}</{k}>" for k, v in (s3_extra or {}).items())
                + f"<RequestId>{request_id}</RequestId><HostId>awsproxy</HostId></Error>").encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id),
                   ("x-amz-id-2", "awsproxy")]
    if head:
        body = b""
    return status, headers, body


# ---------------------------------------------------------------------------------------
# Faults and the call log

FAULT_KEYS = {"service", "operation", "nth", "count", "kind", "status", "code", "message",
              "latency_ms", "phase"}
KINDS = ("status", "reset", "latency")


class FaultSpecError(ValueError):
    pass


class FaultWindow:
    """Which matching calls a fault acts on: from the `nth` on, `count` of them (-1: every
    one). For the dataclasses with `nth`, `count` and `matched`: the proxy's Fault and the
    sandbox's (faults.py)."""

    nth: int
    count: int
    matched: int

    def in_window(self, n: int) -> bool:
        return n >= self.nth and (self.count < 0 or n < self.nth + self.count)

    @property
    def exhausted(self) -> bool:
        return self.count >= 0 and self.matched >= self.nth + self.count - 1

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out["exhausted"] = self.exhausted
        return out


@dataclass
class Fault(FaultWindow):
    id: int
    service: str = "*"
    operation: str = "*"
    nth: int = 1
    count: int = 1
    kind: str = "status"
    status: int | None = None
    code: str | None = None
    message: str | None = None
    latency_ms: int = 0
    phase: str = "before"
    matched: int = 0
    fired: int = 0

    def matches(self, call: Call) -> bool:
        return (self.service == "*" or self.service.lower() == call.service.lower()) and \
            (self.operation == "*" or self.operation.lower() == call.operation.lower())


def _int(spec: dict[str, Any], key: str, default: int | None, lo: int, hi: int | None = None
         ) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or \
            (hi is not None and value > hi):
        raise FaultSpecError(f"{key} must be an integer in [{lo}, {hi if hi else '...'}]")
    return value


def _str(spec: dict[str, Any], key: str, default: str | None) -> str | None:
    value = spec.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise FaultSpecError(f"{key} must be a non-empty string")
    return value


def check_spec_keys(spec: Any, keys: set[str]) -> None:
    """A fault spec is a JSON object of known keys (also the sandbox's, faults.py)."""
    if not isinstance(spec, dict):
        raise FaultSpecError("body must be a JSON object")
    unknown = set(spec) - keys
    if unknown:
        raise FaultSpecError(f"unknown keys {sorted(unknown)}; allowed: {sorted(keys)}")


def parse_fault(spec: Any, fault_id: int) -> Fault:
    check_spec_keys(spec, FAULT_KEYS)
    kind = spec.get("kind")
    if kind is None:
        kind = "status" if ("status" in spec or "code" in spec) else "latency"
    if kind not in KINDS:
        raise FaultSpecError(f"kind must be one of {list(KINDS)}")
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count == 0 or count < -1:
        raise FaultSpecError("count must be a positive integer, or -1 for every call")
    status = _int(spec, "status", None, 400, 599)
    code = _str(spec, "code", None)
    latency_ms = _int(spec, "latency_ms", 0, 0) or 0
    if kind != "status" and (status is not None or code is not None or "message" in spec):
        raise FaultSpecError(f"status, code and message belong to kind \"status\", not {kind!r}")
    if kind == "latency" and not latency_ms:
        raise FaultSpecError("kind \"latency\" needs latency_ms > 0")
    phase = spec.get("phase", "before")
    if phase not in ("before", "after"):
        raise FaultSpecError('phase must be "before" or "after"')
    return Fault(id=fault_id, service=_str(spec, "service", "*") or "*",
                 operation=_str(spec, "operation", "*") or "*",
                 nth=_int(spec, "nth", 1, 1) or 1, count=count, kind=kind, status=status,
                 code=code, message=_str(spec, "message", None), latency_ms=latency_ms,
                 phase=phase)


@dataclass
class Decision:
    latency_before_ms: int = 0
    latency_after_ms: int = 0
    action: Fault | None = None  # the status/reset fault that decides the outcome
    fault_ids: list[int] = field(default_factory=list)


class FaultList:
    """Registered faults by id, behind a lock: `add` (a spec parsed by `parse`, numbered from
    1), `remove`, `clear`, `list` (their public views). The proxy's FaultBook and the
    sandbox's (faults.py) are one each; `decide` is theirs."""

    def __init__(self, parse: Callable[[Any, int], Any]) -> None:
        self._lock = threading.Lock()
        self._faults: dict[int, Any] = {}
        self._ids = itertools.count(1)
        self._parse = parse

    def add(self, spec: Any) -> Any:
        with self._lock:
            fault = self._parse(spec, next(self._ids))
            self._faults[fault.id] = fault
            return fault

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.public() for f in self._faults.values()]


class FaultBook(FaultList):
    def __init__(self) -> None:
        super().__init__(parse_fault)

    def decide(self, call: Call) -> Decision:
        d = Decision()
        with self._lock:
            for fault in self._faults.values():
                if not fault.matches(call):
                    continue
                fault.matched += 1
                if not fault.in_window(fault.matched):
                    continue
                fault.fired += 1
                d.fault_ids.append(fault.id)
                if fault.phase == "before":
                    d.latency_before_ms += fault.latency_ms
                else:
                    d.latency_after_ms += fault.latency_ms
                if fault.kind != "latency" and d.action is None:
                    d.action = fault
        return d


class CallLog:
    MAX_LOG = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._seq = 0
            self._ops: dict[str, int] = {}
            self._log: list[dict[str, Any]] = []

    def record(self, call: Call, method: str, path: str) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            self._ops[call.key] = self._ops.get(call.key, 0) + 1
            entry = {"seq": self._seq, "service": call.service, "operation": call.operation,
                     "method": method, "path": path, "status": None, "outcome": None,
                     "fault_ids": [], "ms": None}
            self._log.append(entry)
            if len(self._log) > self.MAX_LOG:
                del self._log[: len(self._log) - self.MAX_LOG]
            return entry

    def finish(self, entry: dict[str, Any], **values: Any) -> None:
        with self._lock:
            entry.update(values)

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        with self._lock:
            return {"total": self._seq, "operations": dict(sorted(self._ops.items())),
                    "log": [dict(e) for e in self._log if e["seq"] > since]}


# ---------------------------------------------------------------------------------------
# Eventual consistency: what real AWS refuses for a while after a create (off by default)
#
# moto makes every object visible at once; AWS does not. With the mode on, the proxy watches
# the creates that pass through it and refuses, before moto sees them, the calls that AWS is
# known to refuse while the new object propagates, with AWS's code, status and message:
#
#   S3 CreateBucket -> the next K PutBucketTagging / PutBucketPolicy / PutBucketEncryption /
#     PutPublicAccessBlock / PutBucketNotificationConfiguration / PutBucketVersioning on that
#     bucket (path-style addresses): 404 NoSuchBucket "The specified bucket does not exist",
#     <BucketName> in the <Error>. Code, status and message: the S3 API reference, "Error
#     responses", list of error codes (docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
#   KMS CreateKey -> the next K CreateAlias (TargetKeyId) / PutKeyPolicy / EnableKeyRotation /
#     TagResource naming the key (id, key ARN, or an alias made for it): 400 NotFoundException
#     "Key '<key ARN>' does not exist". Wording as AWS answered it right after CreateKey in
#     hashicorp/terraform-provider-aws#1896 ("r/kms_alias: Retry creation on
#     NotFoundException": "NotFoundException: Key 'arn:aws:kms:us-west-2:...:key/<id>' does
#     not exist, status code: 400").
#   CloudTrail CreateTrail whose KmsKeyId names such a key -> the first K of them: 400
#     KmsKeyNotFoundException. The exception and its meaning: CloudTrail API reference
#     (CreateTrail errors: "thrown when the KMS key does not exist, when the S3 bucket and the
#     KMS key are not in the same Region ..."). The message text is as a user copied it from
#     a real CreateTrail refusal in a public troubleshooting note ("KMS key ID <arn> does not
#     exist, or s3 bucket and key are not in the same region."); AWS documents no text [G].
#   IAM CreateRole / CreatePolicy -> the next K AttachRolePolicy naming that role or policy:
#     404 NoSuchEntity, "The role with name <name> cannot be found." (the text IAM answers for
#     a missing role, e.g. prowler-cloud/prowler#2872) or "Policy <arn> does not exist or is
#     not attachable." (AWS's answer quoted in getmoto/moto#6482, status 404 in
#     pulumi/pulumi#7419). A call naming both a new role and a new policy is refused once for
#     both (the role is named); each refusal uses up one of K for every new object it names.
#   STS AssumeRole of a role created less than N seconds ago: 403 AccessDenied "User: <caller
#     ARN> is not authorized to perform: sts:AssumeRole on resource: <role ARN>" (the XML
#     ErrorResponse, Sender, 403 Forbidden: Netflix/security_monkey#77,
#     amzn/selling-partner-api-models#891). That a new role cannot be assumed for seconds:
#     hashicorp/terraform-provider-aws#6566 ("After the creation of a role, it cannot be
#     assumed for 10-30 seconds ... the API returns AccessDenied"). The caller ARN is what
#     moto's GetCallerIdentity answers for the request's credentials.
#
# K counts refusals per new object (per bucket, per key, and separately the CreateTrail
# attempts per key; per role, per policy); it is fixed when the object is created. N is wall
# time from the CreateRole answer. Only creates that moto carried out (2xx) are tracked, and
# only while the mode is on; turning it off forgets them.

EVENTUAL_S3_OPERATIONS = {"PutBucketTagging", "PutBucketPolicy", "PutBucketEncryption",
                          "PutPublicAccessBlock", "PutBucketNotificationConfiguration",
                          "PutBucketVersioning"}
EVENTUAL_KMS_OPERATIONS = {"CreateAlias", "PutKeyPolicy", "EnableKeyRotation", "TagResource"}
EVENTUAL_KEYS = {"enabled", "refusals", "assume_role_seconds"}
EVENTUAL_READ_ONLY = {"refused", "refused_internal", "tracked"}
_XML_ARN = re.compile(r"<Arn>\s*([^<\s]+)\s*</Arn>")


@dataclass
class Refusal:
    status: int
    code: str
    message: str
    s3_extra: dict[str, str] | None = None


@dataclass
class _NewKey:
    key_id: str
    arn: str
    remaining: int
    trail_remaining: int


class Eventual:
    """Tracks new objects and decides which calls to refuse (see the comment above)."""

    def __init__(self, enabled: bool = False, refusals: int = 2,
                 assume_role_seconds: float = 5.0) -> None:
        self._lock = threading.Lock()
        self.enabled = enabled
        self.refusals = refusals
        self.assume_role_seconds = assume_role_seconds
        self.forget()

    def forget(self) -> None:
        """Forget tracked objects and zero the counters (the settings stay)."""
        with self._lock:
            self._buckets: dict[str, int] = {}
            self._keys: dict[str, _NewKey] = {}         # key id -> key
            self._aliases: dict[str, str] = {}          # "alias/x" -> key id
            self._roles: dict[str, list[Any]] = {}      # role ARN -> [name, created, remaining]
            self._policies: dict[str, int] = {}         # policy ARN -> remaining
            self._refused: dict[str, int] = {}
            self._refused_internal: dict[str, int] = {}

    # -- settings ---------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": self.enabled, "refusals": self.refusals,
                "assume_role_seconds": self.assume_role_seconds,
                "refused": dict(sorted(self._refused.items())),
                "refused_internal": dict(sorted(self._refused_internal.items())),
                "tracked": {
                    "buckets": dict(sorted(self._buckets.items())),
                    "keys": {k.arn: {"remaining": k.remaining,
                                     "create_trail_remaining": k.trail_remaining}
                             for k in self._keys.values()},
                    "roles": {arn: {"remaining": r[2],
                                    "assumable_in_seconds": round(max(
                                        0.0, self.assume_role_seconds
                                        - (time.monotonic() - r[1])), 3)}
                              for arn, r in self._roles.items()},
                    "policies": dict(sorted(self._policies.items())),
                },
            }

    def update(self, spec: Any) -> None:
        """Apply a PUT body; ValueError (nothing changed) on bad input."""
        if not isinstance(spec, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(spec) - EVENTUAL_KEYS - EVENTUAL_READ_ONLY
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(EVENTUAL_KEYS)}")
        enabled = spec.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")
        refusals = spec.get("refusals", self.refusals)
        if not isinstance(refusals, int) or isinstance(refusals, bool) or \
                not 0 <= refusals <= 1000:
            raise ValueError("refusals must be an integer in [0, 1000]")
        seconds = spec.get("assume_role_seconds", self.assume_role_seconds)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or \
                not 0 <= seconds <= 3600:
            raise ValueError("assume_role_seconds must be a number in [0, 3600]")
        turned_off = self.enabled and not enabled
        with self._lock:
            self.enabled, self.refusals = enabled, refusals
            self.assume_role_seconds = float(seconds)
        if turned_off:
            with self._lock:
                self._buckets, self._keys, self._aliases = {}, {}, {}
                self._roles, self._policies = {}, {}

    # -- decisions --------------------------------------------------------------------

    def _key(self, ident: Any) -> _NewKey | None:
        """The tracked key an identifier names: key id, key ARN, alias name or alias ARN."""
        if not isinstance(ident, str) or not ident:
            return None
        if ":alias/" in ident:
            ident = "alias/" + ident.split(":alias/", 1)[1]
        if ident.startswith("alias/"):
            ident = self._aliases.get(ident, "")
        elif ":key/" in ident:
            ident = ident.split(":key/", 1)[1]
        return self._keys.get(ident)

    def refusal(self, call: Call, path: str, body: bytes,
                caller_arn: Any) -> Refusal | None:
        """The refusal for this call, if AWS would refuse it now (counts it as answered)."""
        if not self.enabled:
            return None
        service, op = call.service, call.operation
        assume_of = None
        with self._lock:
            if service == "s3" and op in EVENTUAL_S3_OPERATIONS:
                bucket = urllib.parse.unquote(path.lstrip("/").split("/", 1)[0])
                if self._buckets.get(bucket, 0) > 0:
                    self._buckets[bucket] -= 1
                    return Refusal(404, "NoSuchBucket", "The specified bucket does not exist",
                                   {"BucketName": bucket})
            elif service == "kms" and op in EVENTUAL_KMS_OPERATIONS:
                doc = _json_body(body)
                key = self._key(doc.get("TargetKeyId" if op == "CreateAlias" else "KeyId"))
                if key is not None and key.remaining > 0:
                    key.remaining -= 1
                    return Refusal(400, "NotFoundException", f"Key '{key.arn}' does not exist")
            elif service == "cloudtrail" and op == "CreateTrail":
                ident = _json_body(body).get("KmsKeyId")
                key = self._key(ident)
                if key is not None and key.trail_remaining > 0:
                    key.trail_remaining -= 1
                    return Refusal(400, "KmsKeyNotFoundException",
                                   f"KMS key ID {ident} does not exist, or s3 bucket and key "
                                   "are not in the same region.")
            elif service == "iam" and op == "AttachRolePolicy":
                form = _form_body(body)
                role_name, policy_arn = form.get("RoleName", ""), form.get("PolicyArn", "")
                role = next((r for r in self._roles.values()
                             if r[0] == role_name and r[2] > 0), None)
                policy_left = self._policies.get(policy_arn, 0) > 0
                if policy_left:
                    self._policies[policy_arn] -= 1
                if role is not None:
                    role[2] -= 1
                    return Refusal(404, "NoSuchEntity",
                                   f"The role with name {role_name} cannot be found.")
                if policy_left:
                    return Refusal(404, "NoSuchEntity",
                                   f"Policy {policy_arn} does not exist or is not attachable.")
            elif service == "sts" and op == "AssumeRole":
                role_arn = _form_body(body).get("RoleArn", "")
                role = self._roles.get(role_arn)
                if role is not None and time.monotonic() - role[1] < self.assume_role_seconds:
                    assume_of = role_arn
        if assume_of is None:
            return None
        # The caller's ARN takes a call to moto: outside the lock.
        return Refusal(403, "AccessDenied", f"User: {caller_arn()} is not authorized to perform: "
                                            f"sts:AssumeRole on resource: {assume_of}")

    def count(self, call: Call, internal: bool) -> None:
        with self._lock:
            book = self._refused_internal if internal else self._refused
            book[call.key] = book.get(call.key, 0) + 1

    def observe(self, call: Call, path: str, body: bytes, status: int, answer: bytes) -> None:
        """Track the object a successful create made (moto answered 2xx)."""
        if not self.enabled or not 200 <= status < 300:
            return
        service, op = call.service, call.operation
        with self._lock:
            k = self.refusals
            if service == "s3" and op == "CreateBucket":
                bucket = urllib.parse.unquote(path.lstrip("/").split("/", 1)[0])
                if bucket:
                    self._buckets[bucket] = k
            elif service == "kms" and op == "CreateKey":
                meta = _json_body(answer).get("KeyMetadata") or {}
                if isinstance(meta, dict) and meta.get("KeyId") and meta.get("Arn"):
                    self._keys[meta["KeyId"]] = _NewKey(meta["KeyId"], meta["Arn"], k, k)
            elif service == "kms" and op == "CreateAlias":
                doc = _json_body(body)
                key = self._key(doc.get("TargetKeyId"))
                if key is not None and isinstance(doc.get("AliasName"), str):
                    self._aliases[doc["AliasName"]] = key.key_id
            elif service == "iam" and op in ("CreateRole", "CreatePolicy"):
                m = _XML_ARN.search(answer.decode("utf-8", "replace"))
                if not m:
                    return
                if op == "CreateRole":
                    name = _form_body(body).get("RoleName", "")
                    self._roles[m.group(1)] = [name, time.monotonic(), k]
                else:
                    self._policies[m.group(1)] = k


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


# What an STS role call asked for, so tests can check what a client sent. moto keeps the
# session name, inline policy and duration of an AssumeRole (sts/models.py AssumedRole) but
# not the session tags, transitive keys, policy ARNs or source identity, and it verifies
# nothing of a web identity token (signature, issuer, audience, expiry: any string is
# accepted, moto/sts/responses.py assume_role_with_web_identity). The token itself is never
# kept: only its SHA-256, so a test can tell which token was sent.
SESSION_CALLS = {"AssumeRole", "AssumeRoleWithWebIdentity"}
SESSION_KEYS = ("RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "SourceIdentity")


def _members(form: dict[str, str], prefix: str, suffix: str = "") -> list[str]:
    """The values of a query-protocol list `<prefix>.member.N<suffix>`, in N order."""
    found = []
    for k, v in form.items():
        m = re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)" + re.escape(suffix), k)
        if m:
            found.append((int(m.group(1)), v))
    return [v for _, v in sorted(found)]


def session_params(body: bytes) -> dict[str, Any]:
    form = _form_body(body)
    out: dict[str, Any] = {k: form[k] for k in SESSION_KEYS if k in form}
    out["PolicyArns"] = _members(form, "PolicyArns", ".arn")
    out["Tags"] = dict(zip(_members(form, "Tags", ".Key"), _members(form, "Tags", ".Value")))
    out["TransitiveTagKeys"] = _members(form, "TransitiveTagKeys")
    out["ExternalId"] = "ExternalId" in form
    if "WebIdentityToken" in form:
        out["WebIdentityTokenSha256"] = hashlib.sha256(
            form["WebIdentityToken"].encode()).hexdigest()
    return out


def _form_body(body: bytes) -> dict[str, str]:
    try:
        return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
    except ValueError:
        return {}


# ---------------------------------------------------------------------------------------
# The server


class UpstreamError(Exception):
    pass


def parse_upstream(url: str) -> tuple[str, str, int]:
    split = urllib.parse.urlsplit(url.strip())
    if split.scheme != "http" or not split.hostname:
        raise ValueError(f"the upstream must be http://host:port, got {url!r}")
    return url.strip().rstrip("/"), split.hostname, split.port or 80


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the SDKs open many connections at once

    def __init__(self, address: tuple[str, int], upstream: str | None = None,
                 upstream_file: str | None = None, upstream_wait: float = 30.0,
                 eventual: Eventual | None = None) -> None:
        if (upstream is None) == (upstream_file is None):
            raise ValueError("give exactly one of upstream and upstream_file")
        self._upstream: tuple[str, str, int] | None = \
            parse_upstream(upstream) if upstream is not None else None
        self.upstream_file = upstream_file
        self.upstream_wait = upstream_wait
        self._upstream_lock = threading.Lock()
        self.faults = FaultBook()
        self.calls = CallLog()
        self.eventual = eventual or Eventual()
        super().__init__(address, ProxyHandler)

    @property
    def upstream(self) -> str | None:
        return self._upstream[0] if self._upstream else None

    def upstream_address(self, wait: float | None = None) -> tuple[str, int]:
        """(host, port) of moto; with upstream_file, wait for the file to appear."""
        if self._upstream is None:
            with self._upstream_lock:
                deadline = time.monotonic() + (self.upstream_wait if wait is None else wait)
                while self._upstream is None:
                    try:
                        with open(self.upstream_file) as f:  # type: ignore[arg-type]
                            text = f.read().strip()
                        if text:
                            self._upstream = parse_upstream(text)
                            break
                    except FileNotFoundError:
                        pass
                    except ValueError as err:
                        raise UpstreamError(f"{self.upstream_file}: {err}") from err
                    if time.monotonic() > deadline:
                        raise UpstreamError(f"no upstream URL in {self.upstream_file}")
                    time.sleep(0.02)
        return self._upstream[1], self._upstream[2]


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries a Content-Length
    disable_nagle_algorithm = True
    server: ProxyServer

    # -- plumbing ---------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def read_body(self) -> tuple[bytes, bytes]:
        """(bytes as received, decoded body). Chunked bodies keep their framing."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw, decoded = bytearray(), bytearray()
            while True:
                line = self.rfile.readline(MAX_LINE)
                if not line.endswith(b"\n"):
                    raise ConnectionError("truncated chunked body")
                raw += line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the blank line
                        line = self.rfile.readline(MAX_LINE)
                        raw += line
                        if line in (b"\r\n", b"\n", b""):
                            break
                    return bytes(raw), bytes(decoded)
                chunk = self.rfile.read(size + 2)
                if len(chunk) < size + 2:
                    raise ConnectionError("truncated chunk")
                raw += chunk
                decoded += chunk[:size]
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length > 0 else b""
        if len(data) < length:
            raise ConnectionError("truncated body")
        return data, data

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes,
              reason: str | None = None, keep_length: bool = False) -> None:
        """Send a whole answer in one write. keep_length: HEAD/204/304 pass their
        Content-Length through and send no body."""
        lines = [f"HTTP/1.1 {status} {reason or self.responses.get(status, ('',))[0]}"]
        has_length = False
        for name, value in headers:
            if name.lower() in RESPONSE_HOP_HEADERS:
                continue
            if name.lower() == "content-length":
                if not keep_length:
                    continue
                has_length = True
            lines.append(f"{name}: {value}")
        if not keep_length:
            lines.append(f"Content-Length: {len(body)}")
            payload = body
        else:
            payload = b""
            if not has_length and status not in (204, 304) and status >= 200:
                lines.append("Content-Length: 0")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + payload)

    def reply_json(self, status: int, doc: Any = None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode()
        headers = [] if doc is None else [("Content-Type", "application/json")]
        self.reply(status, headers, body)

    def reset_connection(self) -> None:
        """Close the client connection with an RST and without an answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The fd closes (RST) when finish() drops the file objects; no FIN before it.
        self.connection.close()

    def forward(self, raw_body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, port = self.server.upstream_address()
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in REQUEST_HOP_HEADERS:
                    conn.putheader(name, value)
            conn.endheaders(raw_body or None)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, resp.reason, resp.getheaders(), body
        except (OSError, http.client.HTTPException) as err:
            raise UpstreamError(f"{type(err).__name__}: {err}") from err
        finally:
            conn.close()

    def no_body_answer(self, status: int) -> bool:
        return self.command == "HEAD" or status in (204, 304) or status < 200

    # -- dispatch ---------------------------------------------------------------------

    def handle_any(self) -> None:
        try:
            raw, decoded = self.read_body()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
            self.admin(decoded)
        elif path.startswith(PASSTHROUGH_PREFIX) or path == PASSTHROUGH_PREFIX.rstrip("/"):
            self.passthrough(raw)
        else:
            self.proxy(raw, decoded)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    def passthrough(self, raw: bytes) -> None:
        try:
            status, reason, headers, body = self.forward(raw)
        except UpstreamError as err:
            self.reply(502, [("Content-Type", "text/plain")], f"awsproxy: {err}".encode())
            return
        self.reply(status, headers, body, reason, keep_length=self.no_body_answer(status))

    def caller_arn(self) -> str:
        """The ARN moto gives the credentials of this request (GetCallerIdentity)."""
        host, port = self.server.upstream_address()
        conn = http.client.HTTPConnection(host, port, timeout=10)
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        for name in ("Host", "Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if self.headers.get(name):
                headers[name] = self.headers[name]
        try:
            conn.request("POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15", headers)
            m = _XML_ARN.search(conn.getresponse().read().decode("utf-8", "replace"))
            if m:
                return m.group(1)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        scope = CREDENTIAL_SCOPE.search(self.headers.get("Authorization", "") or "")
        return f"arn:aws:iam::123456789012:user/{scope.group(1) if scope else 'unknown'}"

    def proxy(self, raw: bytes, decoded: bytes) -> None:
        started = time.monotonic()
        call = classify(self.command, self.path, self.headers, decoded)
        calls, eventual = self.server.calls, self.server.eventual
        # The sandbox's own calls (Workbench's health check): neither counted nor faulted,
        # but refused like any other while AWS would refuse them.
        internal = bool(self.headers.get(INTERNAL_HEADER))
        entry = None if internal else calls.record(call, self.command, self.path)
        if entry is not None and call.service == "sts" and call.operation in SESSION_CALLS:
            calls.finish(entry, session=session_params(decoded))
        d = Decision() if internal else self.server.faults.decide(call)
        done = {"fault_ids": d.fault_ids}
        request_id = str(uuid.uuid4())
        path = urllib.parse.urlsplit(self.path).path

        def elapsed() -> float:
            return round((time.monotonic() - started) * 1000, 1)

        def finish(**values: Any) -> None:
            if entry is not None:
                calls.finish(entry, ms=elapsed(), **done, **values)

        def act(fault: Fault, carried_out: bool) -> None:
            if fault.kind == "reset":
                finish(outcome="reset")
                self.reset_connection()
                return
            status = fault.status or default_status(fault.code, call.protocol)
            message = fault.message or (f"injected fault {d.fault_ids} by awsproxy"
                                        + (" (the call was carried out)" if carried_out else ""))
            status, headers, body = error_reply(call, status, fault.code, message, request_id,
                                                head=self.command == "HEAD")
            finish(status=status, outcome="fault")
            self.reply(status, headers, body, keep_length=False)

        if d.latency_before_ms:
            time.sleep(d.latency_before_ms / 1000.0)
        if d.action is not None and d.action.phase == "before":
            act(d.action, carried_out=False)
            return
        overlap = notification_overlap(call, decoded)
        if overlap is not None:
            status, headers, body = error_reply(call, 400, "InvalidArgument", overlap, request_id,
                                                head=False)
            finish(status=status, outcome="refused like S3")
            self.reply(status, headers, body, keep_length=False)
            return
        try:
            refusal = eventual.refusal(call, path, decoded, self.caller_arn)
        except UpstreamError:
            refusal = None
        if refusal is not None:
            eventual.count(call, internal)
            status, headers, body = error_reply(call, refusal.status, refusal.code,
                                                refusal.message, request_id,
                                                head=self.command == "HEAD",
                                                s3_extra=refusal.s3_extra)
            finish(status=status, outcome="eventual")
            self.reply(status, headers, body, keep_length=False)
            return
        try:
            status, reason, headers, body = self.forward(raw)
        except UpstreamError as err:
            finish(status=502, outcome=f"upstream error: {err}")
            self.reply(502, [("Content-Type", "text/plain")], f"awsproxy: {err}".encode())
            return
        eventual.observe(call, path, decoded, status, body)
        if d.latency_after_ms:
            time.sleep(d.latency_after_ms / 1000.0)
        if d.action is not None:  # phase "after": moto has carried the call out
            act(d.action, carried_out=True)
            return
        body = fix_moto_answer(call, status, body)
        finish(status=status, outcome="forwarded")
        self.reply(status, headers, body, reason, keep_length=self.no_body_answer(status))

    # -- admin ------------------------------------------------------------------------

    def admin(self, body: bytes) -> None:
        split = urllib.parse.urlsplit(self.path)
        route = split.path[len(ADMIN_PREFIX):].strip("/")
        method = self.command
        faults, calls = self.server.faults, self.server.calls
        if route == "health" and method == "GET":
            try:
                self.server.upstream_address(wait=0)
            except UpstreamError:
                pass  # not known yet (upstream_file not written)
            return self.reply_json(200, {"status": "ok", "upstream": self.server.upstream})
        if route == "faults":
            if method == "POST":
                try:
                    spec = json.loads(body or b"null")
                    fault = faults.add(spec)
                except ValueError as err:  # FaultSpecError or bad JSON
                    return self.reply_json(400, {"error": str(err)})
                return self.reply_json(201, fault.public())
            if method == "GET":
                return self.reply_json(200, {"faults": faults.list()})
            if method == "DELETE":
                faults.clear()
                return self.reply_json(204)
        if route.startswith("faults/") and method == "DELETE":
            try:
                fault_id = int(route.split("/", 1)[1])
            except ValueError:
                return self.reply_json(404, {"error": f"no fault {route.split('/', 1)[1]}"})
            if not faults.remove(fault_id):
                return self.reply_json(404, {"error": f"no fault {fault_id}"})
            return self.reply_json(204)
        if route == "calls":
            if method == "GET":
                try:
                    since = int(urllib.parse.parse_qs(split.query).get("since", ["0"])[0])
                except ValueError:
                    return self.reply_json(400, {"error": "since must be an integer"})
                return self.reply_json(200, calls.snapshot(since))
            if method == "DELETE":
                calls.reset()
                return self.reply_json(204)
        if route == "eventual":
            eventual = self.server.eventual
            if method == "PUT":
                try:
                    eventual.update(json.loads(body or b"null"))
                except ValueError as err:  # bad JSON or a bad setting
                    return self.reply_json(400, {"error": str(err)})
                return self.reply_json(200, eventual.settings())
            if method == "GET":
                return self.reply_json(200, eventual.settings())
        if route == "reset" and method == "POST":
            faults.clear()
            calls.reset()
            self.server.eventual.forget()
            return self.reply_json(204)
        return self.reply_json(404, {"error": f"no admin route {method} {split.path}"})


# ---------------------------------------------------------------------------------------
# Command line


# moto answers GetBucketNotificationConfiguration of a bucket without notifications with an
# empty <GetBucketNotificationResponse/>, which AWS never sends (it sends an empty
# <NotificationConfiguration/>) and the Rust SDK rejects. The proxy restores AWS's shape so
# the provider sees what it would see in AWS.
_EMPTY_NOTIFICATION = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?<GetBucketNotificationResponse[^>]*/>\s*$")


# moto (5.2.5) names the root element of its GetBucketVersioning answer
# <GetBucketVersioningResponse>; AWS's is <VersioningConfiguration> (S3 API reference,
# GetBucketVersioning, "Response Syntax"), and the Rust SDK rejects any other root. The proxy
# renames it; the content (<Status>, <MfaDelete>) is AWS's already.
_VERSIONING_ROOT = re.compile(rb"<(/?)GetBucketVersioningResponse\b")


def fix_moto_answer(call: Call, status: int, body: bytes) -> bytes:
    if (status == 200 and call.service == "s3"
            and call.operation == "GetBucketNotificationConfiguration"
            and _EMPTY_NOTIFICATION.match(body)):
        return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                b'<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>')
    if status == 200 and call.service == "s3" and call.operation == "GetBucketVersioning":
        return _VERSIONING_ROOT.sub(rb"<\1VersioningConfiguration", body)
    return body


# S3 refuses a notification configuration in which two configurations share an event type
# and their key filters overlap; moto (5.2.5) stores it. S3 user guide, "Configuring event
# notifications using object key name filtering": a configuration with no prefix (suffix)
# overlaps every prefix (suffix); two prefixes overlap when one begins the other, two suffixes
# when one ends the other; configurations overlap when both their prefixes and their suffixes
# do. S3's answer: 400 InvalidArgument "Configurations overlap. Configurations on the same
# bucket cannot share a common event type." (quoted in minio/minio issue 2472, and in
# aws-cdk and serverless issues that hit it).
OVERLAP_MESSAGE = ("Configurations overlap. Configurations on the same bucket cannot share a "
                   "common event type.")
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _events_overlap(a: str, b: str) -> bool:
    """s3:ObjectCreated:* covers s3:ObjectCreated:Put, and so on."""
    if a == b:
        return True
    for x, y in ((a, b), (b, a)):
        if x.endswith(":*") and y.startswith(x[:-1]):
            return True
    return False


def _affix_overlap(a: str, b: str, suffix: bool) -> bool:
    if not a or not b:
        return True
    return (a.endswith(b) or b.endswith(a)) if suffix else (a.startswith(b) or b.startswith(a))


def notification_overlap(call: Call, body: bytes) -> str | None:
    """S3's refusal of an overlapping PutBucketNotificationConfiguration, or None."""
    if call.service != "s3" or call.operation != "PutBucketNotificationConfiguration":
        return None
    import xml.etree.ElementTree as ET
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None  # moto answers malformed XML as S3 does
    configs = []
    for kind in ("QueueConfiguration", "TopicConfiguration", "CloudFunctionConfiguration"):
        for c in root.iter(f"{_S3_NS}{kind}"):
            events = [e.text or "" for e in c.iter(f"{_S3_NS}Event")]
            rules = {(r.findtext(f"{_S3_NS}Name") or "").lower(): r.findtext(f"{_S3_NS}Value") or ""
                     for r in c.iter(f"{_S3_NS}FilterRule")}
            configs.append((events, rules.get("prefix", ""), rules.get("suffix", "")))
    for i, (ev1, p1, s1) in enumerate(configs):
        for ev2, p2, s2 in configs[i + 1:]:
            if (any(_events_overlap(a, b) for a in ev1 for b in ev2)
                    and _affix_overlap(p1, p2, False) and _affix_overlap(s1, s2, True)):
                return OVERLAP_MESSAGE
    return None


def write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def serve_until_signalled(server: Any) -> None:
    """Serves until SIGTERM or SIGINT, then closes the socket (also the sandbox's server)."""

    def stop(signum: int, frame: Any) -> None:
        # shutdown() blocks until serve_forever returns: from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


def serve(upstream: str | None, port: int = 0, host: str = "127.0.0.1",
          upstream_file: str | None = None, eventual: Eventual | None = None) -> ProxyServer:
    """Bind (and listen); the caller runs serve_forever (tests may use a thread)."""
    return ProxyServer((host, port), upstream, upstream_file, eventual=eventual)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox.awsproxy",
                                description="fault-injecting proxy in front of moto_server")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--upstream", help="moto_server base URL, http://host:port")
    where.add_argument("--upstream-file",
                       help="file that will hold the moto_server base URL (read when needed)")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick one)")
    p.add_argument("--port-file", help="write the listening port here once ready")
    p.add_argument("--eventual", action="store_true",
                   help="refuse what AWS refuses right after a create (see the docstring)")
    p.add_argument("--eventual-refusals", type=int, default=2, metavar="K",
                   help="with --eventual: refusals per new object (default 2)")
    p.add_argument("--eventual-assume-seconds", type=float, default=5.0, metavar="N",
                   help="with --eventual: seconds a new role cannot be assumed (default 5)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("--quiet", action="store_true", help="(default) log only errors")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    eventual = Eventual()
    try:
        eventual.update({"enabled": args.eventual, "refusals": args.eventual_refusals,
                         "assume_role_seconds": args.eventual_assume_seconds})
    except ValueError as err:
        p.error(str(err))
    server = serve(args.upstream, args.port, upstream_file=args.upstream_file,
                   eventual=eventual)
    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    log.info("listening on http://127.0.0.1:%d, upstream %s, eventual consistency %s", port,
             server.upstream or f"from {args.upstream_file}",
             f"on (K={eventual.refusals}, N={eventual.assume_role_seconds}s)"
             if eventual.enabled else "off")
    serve_until_signalled(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
