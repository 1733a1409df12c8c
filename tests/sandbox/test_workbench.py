"""The Workbench emulator over real HTTP: strictness, round trips, faults, secrets."""

from __future__ import annotations

import time
from typing import Any

from conftest import API_KEY, ORG_ID, Http

DEVICES = "/api/v2/security_devices"

AWS_SPEC = {
    "role_arn": "arn:aws:iam::123456789012:role/ExpelServiceRole",
    "role_session_name": "ExpelCloudTrail",
    "region": "us-east-1",
    "sqs_queue_url": "http://127.0.0.1:5000/123456789012/ExpelMasterCloudTrailNotify",
}
S1_SPEC = {"console_url": "https://usea1-1001.sentinelone.net", "api_token": "s1-secret-token",
           "status_syncing": True}
WIZ_SPEC = {"api_endpoint_url": "https://api.us17.app.wiz.io/graphql", "client_id": "wiz-client",
            "client_secret": "wiz-secret", "product": "cloud"}


def doc(attributes: dict[str, Any], org_id: str | None = ORG_ID,
        type_: str = "security_devices") -> dict[str, Any]:
    data: dict[str, Any] = {"type": type_, "attributes": attributes}
    if org_id is not None:
        data["relationships"] = {"organization": {"data": {"type": "organizations", "id": org_id}}}
    return {"data": data}


def aws_attrs(name: str = "Acme - CloudTrail", **over: Any) -> dict[str, Any]:
    attrs = {"name": name, "location": "us-east-1", "device_type": "CLOUD", "plugin_slug": "aws",
             "task_source": "EXPEL_TASKPOOL", "device_spec": dict(AWS_SPEC)}
    attrs.update(over)
    return attrs


def create(api: Http, attrs: dict[str, Any]) -> dict[str, Any]:
    r = api.post(DEVICES, doc(attrs))
    assert r.status == 201, r.body
    return r.body["data"]


def wait_status(api: Http, device_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        attrs = api.get(f"{DEVICES}/{device_id}").body["data"]["attributes"]
        if not attrs["is_verifying_status"] or time.monotonic() > deadline:
            return attrs
        time.sleep(0.05)


def assert_envelope(reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/vnd.api+json")
    errors = reply.errors()
    assert errors and errors[0]["status"] == str(status)
    assert errors[0]["title"] and errors[0]["detail"]
    return errors[0]


# ---- auth and negotiation ------------------------------------------------------------------

def test_missing_or_wrong_auth_is_401_envelope(api: Http):
    for path in ("/api/v2/organizations", DEVICES, "/api/v2/plugins", "/api/v2/no_such_route"):
        err = assert_envelope(api.get(path, auth=False), 401)
        assert err["title"] == "Unauthorized"
    assert_envelope(api.get(DEVICES, headers={"Authorization": "Bearer nope"}), 401)
    assert_envelope(api.get(DEVICES, headers={"Authorization": API_KEY}), 401)  # no scheme
    assert_envelope(api.post(DEVICES, doc(aws_attrs()), auth=False), 401)
    assert api.get("/_admin/state").body["workbench"]["security_devices"] == []


def test_content_types(api: Http):
    r = api.post(DEVICES, doc(aws_attrs("plain json")), content_type="application/json")
    assert r.status == 201 and r.headers["Content-Type"] == "application/vnd.api+json"
    assert_envelope(api.post(DEVICES, doc(aws_attrs("x")), content_type="text/plain"), 415)
    assert_envelope(api.post(DEVICES, "{not json"), 400)
    assert_envelope(api.get(DEVICES, headers={"Accept": "text/html"}), 406)


def test_unknown_query_parameters_are_400(api: Http):
    err = assert_envelope(api.get(DEVICES + "?filter[colour]=red"), 400)
    assert err["source"]["parameter"] == "filter[colour]"
    assert_envelope(api.get(DEVICES + "?page[limit]=0"), 400)
    assert_envelope(api.get(DEVICES + "?sort=colour"), 400)
    assert_envelope(api.get(DEVICES + "?bogus=1"), 400)
    assert api.get(DEVICES + "?flag[raw_status]=true&include=organization").status == 200


# ---- organizations and plugins -------------------------------------------------------------

def test_organizations(api: Http):
    r = api.get("/api/v2/organizations")
    assert r.status == 200
    assert [o["id"] for o in r.body["data"]] == [ORG_ID]
    org = api.get(f"/api/v2/organizations/{ORG_ID}").body["data"]
    assert org["type"] == "organizations"
    assert org["attributes"]["name"] == "Acme Corp"
    assert {"short_name", "created_at"} <= set(org["attributes"])
    assert_envelope(api.get("/api/v2/organizations/00000000-0000-0000-0000-000000000000"), 404)


def test_plugin_catalogue(api: Http):
    plugins = api.get("/api/v2/plugins").body["data"]
    by_slug = {p["attributes"]["plugin_slug"]: p for p in plugins}
    assert set(by_slug) == {"aws", "sentinelone", "wiz"}
    for p in plugins:
        spec = p["attributes"]["device_spec_json"]
        assert spec["type"] == "object" and spec["additionalProperties"] is False
        assert set(spec["required"]) <= set(spec["properties"])
        assert {"display_name", "vendor_name", "vendor_type", "active"} <= set(p["attributes"])
        assert api.get(f"/api/v2/plugins/{p['id']}").body["data"] == p
    props = {s: p["attributes"]["device_spec_json"]["properties"] for s, p in by_slug.items()}
    assert set(props["aws"]) == set(AWS_SPEC)
    assert set(props["sentinelone"]) == set(S1_SPEC)
    assert set(props["wiz"]) == set(WIZ_SPEC)
    assert props["sentinelone"]["api_token"]["writeOnly"] is True
    assert props["wiz"]["client_secret"]["writeOnly"] is True
    assert props["wiz"]["product"]["enum"] == ["cloud", "defend"]
    only_wiz = api.get("/api/v2/plugins?filter[plugin_slug]=wiz").body["data"]
    assert [p["attributes"]["plugin_slug"] for p in only_wiz] == ["wiz"]
    s1 = api.get("/api/v2/plugins?filter[vendor_name]=SentinelOne").body["data"]
    assert [p["attributes"]["plugin_slug"] for p in s1] == ["sentinelone"]
    assert_envelope(api.get("/api/v2/plugins/nope"), 404)


# ---- validation ------------------------------------------------------------------------------

def test_wrong_types_are_422_with_pointer(api: Http):
    r = api.post(DEVICES, doc(aws_attrs(name=123)))
    err = assert_envelope(r, 422)
    assert err["source"]["pointer"] == "/data/attributes/name"
    r = api.post(DEVICES, doc(aws_attrs(device_type="LAPTOP", location=7)))
    pointers = {e["source"]["pointer"] for e in r.errors()}
    assert r.status == 422
    assert pointers == {"/data/attributes/device_type", "/data/attributes/location"}
    r = api.post(DEVICES, doc(aws_attrs(device_spec="role_arn=x")))
    assert r.status == 422 and r.errors()[0]["source"]["pointer"] == "/data/attributes/device_spec"


def test_unknown_read_only_and_missing_attributes_are_422(api: Http):
    r = api.post(DEVICES, doc(aws_attrs(colour="blue")))
    err = assert_envelope(r, 422)
    assert err["source"]["pointer"] == "/data/attributes/colour"
    r = api.post(DEVICES, doc(aws_attrs(status="healthy")))
    assert assert_envelope(r, 422)["detail"] == "status is read-only"
    attrs = aws_attrs()
    del attrs["name"]
    err = assert_envelope(api.post(DEVICES, doc(attrs)), 422)
    assert err["source"]["pointer"] == "/data/attributes/name"
    # organization relationship: required, and must be ours
    assert_envelope(api.post(DEVICES, doc(aws_attrs(), org_id=None)), 422)
    err = assert_envelope(api.post(DEVICES, doc(aws_attrs(), org_id="someone-else")), 422)
    assert err["source"]["pointer"] == "/data/relationships/organization/data/id"
    # JSON:API document rules
    assert_envelope(api.post(DEVICES, doc(aws_attrs(), type_="devices")), 409)
    assert_envelope(api.post(DEVICES, {"attributes": aws_attrs()}), 400)
    assert api.get("/_admin/state").body["workbench"]["security_devices"] == []


def test_unknown_plugin_slug_is_422(api: Http):
    err = assert_envelope(api.post(DEVICES, doc(aws_attrs(plugin_slug="crowdstrike"))), 422)
    assert err["source"]["pointer"] == "/data/attributes/plugin_slug"
    assert "crowdstrike" in err["detail"]


def test_device_spec_is_validated_against_the_plugin_schema(api: Http):
    def spec_errors(slug: str, spec: dict[str, Any]) -> dict[str, str]:
        r = api.post(DEVICES, doc(aws_attrs(plugin_slug=slug, device_spec=spec)))
        assert r.status == 422, r.body
        return {e["source"]["pointer"]: e["detail"] for e in r.errors()}

    errs = spec_errors("aws", dict(AWS_SPEC, role_arn="not-an-arn"))
    assert list(errs) == ["/data/attributes/device_spec/role_arn"]
    assert "device_spec.role_arn" in errs["/data/attributes/device_spec/role_arn"]

    spec = dict(AWS_SPEC)
    del spec["sqs_queue_url"]
    errs = spec_errors("aws", dict(spec, external_id="x"))
    assert "device_spec.sqs_queue_url: is required" in errs.values()
    assert "/data/attributes/device_spec/external_id" in errs

    errs = spec_errors("wiz", dict(WIZ_SPEC, product="sensor"))
    assert "device_spec.product" in errs["/data/attributes/device_spec/product"]

    errs = spec_errors("sentinelone", dict(S1_SPEC, console_url="not a url", status_syncing="yes"))
    assert set(errs) == {"/data/attributes/device_spec/console_url",
                         "/data/attributes/device_spec/status_syncing"}

    errs = spec_errors("sentinelone", None)
    assert "device_spec: must be object" in errs["/data/attributes/device_spec"]


# ---- round trip ------------------------------------------------------------------------------

def test_create_read_list_patch_delete_round_trip(api: Http):
    r = api.post(DEVICES, doc(aws_attrs()))
    assert r.status == 201
    dev = r.body["data"]
    dev_id = dev["id"]
    assert r.headers["Location"].endswith(f"{DEVICES}/{dev_id}")
    a = dev["attributes"]
    assert a["name"] == "Acme - CloudTrail" and a["device_type"] == "CLOUD"
    assert a["device_spec"] == AWS_SPEC and a["plugin_slug"] == "aws"
    assert a["status"] is None and a["is_verifying_status"] is True
    assert a["created_at"] == a["updated_at"]
    assert dev["relationships"]["organization"]["data"] == {"type": "organizations", "id": ORG_ID}

    got = api.get(f"{DEVICES}/{dev_id}")
    assert got.status == 200 and got.body["data"]["attributes"]["name"] == a["name"]

    healthy = wait_status(api, dev_id)
    assert healthy["status"] == "healthy" and healthy["status_updated_at"]

    other = create(api, {"name": "Acme - S1", "device_type": "ENDPOINT",
                         "plugin_slug": "sentinelone", "device_spec": S1_SPEC})
    listed = api.get(DEVICES + "?filter[name]=Acme%20-%20CloudTrail").body["data"]
    assert [d["id"] for d in listed] == [dev_id]
    listed = api.get(DEVICES + "?filter[plugin_slug]=sentinelone").body["data"]
    assert [d["id"] for d in listed] == [other["id"]]
    listed = api.get(DEVICES + f"?filter[organization][id]={ORG_ID}&sort=name").body["data"]
    assert [d["id"] for d in listed] == [dev_id, other["id"]]
    assert api.get(DEVICES + "?filter[organization][id]=nobody").body["data"] == []

    time.sleep(0.01)
    r = api.patch(f"{DEVICES}/{dev_id}",
                  {"data": {"type": "security_devices", "id": dev_id,
                            "attributes": {"location": "eu-west-1"}}})
    assert r.status == 200, r.body
    p = r.body["data"]["attributes"]
    assert p["location"] == "eu-west-1"
    assert p["name"] == a["name"] and p["device_spec"] == AWS_SPEC
    assert p["updated_at"] > a["updated_at"] and p["created_at"] == a["created_at"]
    assert p["is_verifying_status"] is True
    assert api.get(f"{DEVICES}/{dev_id}").body["data"]["attributes"]["location"] == "eu-west-1"

    err = assert_envelope(api.patch(f"{DEVICES}/{dev_id}", doc({"device_type": "TOASTER"},
                                                                org_id=None)), 422)
    assert err["source"]["pointer"] == "/data/attributes/device_type"
    assert_envelope(api.patch(f"{DEVICES}/{dev_id}",
                              {"data": {"type": "security_devices", "id": "other",
                                        "attributes": {}}}), 409)

    r = api.delete(f"{DEVICES}/{dev_id}")
    assert r.status == 204 and r.body is None
    assert_envelope(api.get(f"{DEVICES}/{dev_id}"), 404)
    assert_envelope(api.delete(f"{DEVICES}/{dev_id}"), 404)
    assert_envelope(api.patch(f"{DEVICES}/{dev_id}", doc({"location": "x"}, org_id=None)), 404)
    api.delete(f"{DEVICES}/{other['id']}")
    assert api.get("/_admin/state").body["workbench"]["security_devices"] == []


def test_pagination_follows_links_next(api: Http):
    ids = [create(api, aws_attrs(f"dev {i}"))["id"] for i in range(5)]
    r = api.get(DEVICES + "?page[limit]=2&filter[plugin_slug]=aws")
    assert r.body["meta"]["page"] == {"limit": 2, "offset": 0, "total": 5}
    seen, pages = [], 0
    while True:
        pages += 1
        seen += [d["id"] for d in r.body["data"]]
        nxt = r.body["links"]["next"]
        if nxt is None:
            break
        assert "filter[plugin_slug]=aws" in nxt
        r = api.get(nxt)
        assert r.status == 200
    assert pages == 3 and seen == ids
    r = api.get(DEVICES + "?page[limit]=2&page[offset]=4")
    assert [d["id"] for d in r.body["data"]] == ids[4:] and r.body["links"]["next"] is None


def test_duplicate_name_is_409(api: Http):
    first = create(api, aws_attrs("same"))
    err = assert_envelope(api.post(DEVICES, doc(aws_attrs("same"))), 409)
    assert first["id"] in err["detail"]
    second = create(api, aws_attrs("different"))
    assert_envelope(api.patch(f"{DEVICES}/{second['id']}", doc({"name": "same"}, org_id=None)), 409)
    # renaming a device to its own name is fine
    assert api.patch(f"{DEVICES}/{first['id']}", doc({"name": "same"}, org_id=None)).status == 200


# ---- secrets ---------------------------------------------------------------------------------

def test_secrets_are_never_returned(api: Http):
    s1 = api.post(DEVICES, doc({"name": "S1", "device_type": "ENDPOINT",
                                "plugin_slug": "sentinelone", "device_spec": S1_SPEC}))
    wiz = api.post(DEVICES, doc({"name": "Wiz", "device_type": "CLOUD", "plugin_slug": "wiz",
                                 "device_spec": WIZ_SPEC}))
    assert s1.status == 201 and wiz.status == 201
    s1_id, wiz_id = s1.body["data"]["id"], wiz.body["data"]["id"]
    replies = [s1, wiz, api.get(f"{DEVICES}/{s1_id}"), api.get(f"{DEVICES}/{wiz_id}"),
               api.get(DEVICES)]
    replies.append(api.patch(f"{DEVICES}/{s1_id}", doc(
        {"device_spec": {"console_url": "https://usea1-2002.sentinelone.net"}}, org_id=None)))
    for r in replies:
        text = str(r.body)
        assert "s1-secret-token" not in text and "wiz-secret" not in text
        assert "api_token" not in text and "client_secret" not in text
    assert s1.body["data"]["attributes"]["device_spec"] == {
        "console_url": "https://usea1-1001.sentinelone.net", "status_syncing": True}
    assert replies[-1].status == 200
    # The PATCH left the secret out: the stored one is kept (state dump shows secrets).
    stored = {d["id"]: d for d in api.get("/_admin/state").body["workbench"]["security_devices"]}
    assert stored[s1_id]["attributes"]["device_spec"] == {
        "console_url": "https://usea1-2002.sentinelone.net", "api_token": "s1-secret-token",
        "status_syncing": False}  # not given in the PATCH: back to the schema default
    assert stored[wiz_id]["attributes"]["device_spec"]["client_secret"] == "wiz-secret"


# ---- faults and call counting ---------------------------------------------------------------

def test_fault_fails_the_nth_call_with_500(api: Http, admin: Http):
    r = admin.post("/_admin/faults", {"route": "GET /api/v2/security_devices", "nth": 2,
                                      "status": 500})
    assert r.status == 201 and r.body["id"]
    assert api.get(DEVICES).status == 200
    assert_envelope(api.get(DEVICES), 500)
    assert api.get(DEVICES).status == 200
    fault = admin.get("/_admin/faults").body["faults"][0]
    assert fault["matched"] == 3 and fault["fired"] == 1 and fault["exhausted"] is True
    assert admin.delete("/_admin/faults").status == 204
    assert admin.get("/_admin/faults").body["faults"] == []


def test_fault_429_with_retry_after_leaves_state_untouched(api: Http, admin: Http):
    admin.post("/_admin/faults", {"route": "POST /api/v2/security_devices", "status": 429,
                                  "retry_after": 3, "count": 2})
    for _ in range(2):
        r = api.post(DEVICES, doc(aws_attrs()))
        assert_envelope(r, 429)
        assert r.headers["Retry-After"] == "3"
    assert api.get("/_admin/state").body["workbench"]["security_devices"] == []
    assert api.post(DEVICES, doc(aws_attrs())).status == 201


def test_fault_after_phase_carries_out_the_call(api: Http, admin: Http):
    admin.post("/_admin/faults", {"route": "POST /api/v2/security_devices", "status": 503,
                                  "phase": "after"})
    assert_envelope(api.post(DEVICES, doc(aws_attrs())), 503)
    assert len(api.get("/_admin/state").body["workbench"]["security_devices"]) == 1


def test_fault_latency(api: Http, admin: Http):
    admin.post("/_admin/faults", {"route": "/api/v2/organizations", "latency_ms": 300})
    start = time.monotonic()
    assert api.get("/api/v2/organizations").status == 200
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    assert api.get("/api/v2/organizations").status == 200  # only the 1st call
    assert time.monotonic() - start < 0.3


def test_bad_fault_specs_are_400(admin: Http):
    for spec in ({"route": "GET /x"}, {"route": "FETCH /x", "status": 500},
                 {"route": "/x", "status": 200}, {"route": "/x", "status": 500, "colour": 1},
                 {"route": "/x", "latency_ms": 5, "retry_after": 1}):
        assert admin.post("/_admin/faults", spec).status == 400, spec


def test_calls_are_counted_per_route(api: Http, admin: Http):
    dev = create(api, aws_attrs())
    api.get(f"{DEVICES}/{dev['id']}")
    api.get(f"{DEVICES}/{dev['id']}")
    api.get(DEVICES)
    api.get(DEVICES, auth=False)
    calls = admin.get("/_admin/calls").body
    assert calls["routes"] == {
        "POST /api/v2/security_devices": 1,
        "GET /api/v2/security_devices/<device_id>": 2,
        "GET /api/v2/security_devices": 2,
    }
    assert calls["total"] == 5 and calls["log"][-1]["status"] == 401
    assert admin.get(f"/_admin/calls?since={calls['total'] - 1}").body["log"][0]["seq"] == 5
    admin.post("/_admin/reset")
    assert admin.get("/_admin/calls").body["total"] == 0


def test_admin_can_force_device_health(api: Http, admin: Http):
    dev = create(api, aws_attrs())
    r = admin.call("PUT", f"/_admin/workbench/security_devices/{dev['id']}/status",
                   {"status": "unhealthy", "status_details": {"reason": "queue unreadable"}})
    assert r.status == 204
    attrs = api.get(f"{DEVICES}/{dev['id']}").body["data"]["attributes"]
    assert attrs["status"] == "unhealthy" and attrs["is_verifying_status"] is False
    time.sleep(0.4)  # the pending check was cancelled and does not overwrite it
    assert api.get(f"{DEVICES}/{dev['id']}").body["data"]["attributes"]["status"] == "unhealthy"
    assert admin.call("PUT", "/_admin/workbench/security_devices/nope/status",
                      {"status": "healthy"}).status == 404


def patch_unchanged(api: Http, device: dict[str, Any]) -> None:
    """What the provider does to ask for a re-check: PATCH the device with its attributes."""
    attrs = {k: device["attributes"][k] for k in ("name", "location", "device_spec")}
    r = api.patch(f"{DEVICES}/{device['id']}", {"data": {
        "type": "security_devices", "id": device["id"], "attributes": attrs}})
    assert r.status == 200, r.body


def test_admin_health_settings_first_checks_unhealthy(api: Http, admin: Http):
    defaults = admin.get("/_admin/workbench/health").body
    assert defaults == {"unhealthy_first_checks": 0, "delay_seconds": 0.2,
                        "unhealthy_remaining": 0}
    r = admin.call("PUT", "/_admin/workbench/health",
                   {"unhealthy_first_checks": 2, "delay_seconds": 0.05})
    assert r.status == 200 and r.body == {"unhealthy_first_checks": 2, "delay_seconds": 0.05,
                                          "unhealthy_remaining": 2}
    s1 = create(api, {"name": "S1", "device_type": "ENDPOINT", "plugin_slug": "sentinelone",
                      "device_spec": {"console_url": "https://127.0.0.2:1", "api_token": "t"}})
    device = create(api, aws_attrs())
    t0 = time.monotonic()
    seen = []
    for _ in range(3):
        attrs = wait_status(api, device["id"])
        assert attrs["is_verifying_status"] is False
        seen.append((attrs["status"], attrs["status_details"].get("reason")))
        patch_unchanged(api, device)
    assert time.monotonic() - t0 < 2.0  # delay_seconds 0.05, not 0.2 per check
    reason = f"cannot assume role {AWS_SPEC['role_arn']}: AccessDenied"
    # the first two checks: the refusal; the third runs the real check (no moto: skipped)
    assert seen == [("unhealthy", reason), ("unhealthy", reason), ("healthy", None)]
    assert wait_status(api, device["id"])["status"] == "healthy"  # the last PATCH's check
    # only aws devices are forced: the SentinelOne device got its real check
    assert "AssumeRole" not in str(wait_status(api, s1["id"])["status_details"])
    assert admin.get("/_admin/workbench/health").body["unhealthy_remaining"] == 0
    # reset restores the defaults
    assert admin.post("/_admin/reset").status == 204
    assert admin.get("/_admin/workbench/health").body == defaults


def test_admin_health_settings_validation(admin: Http):
    for bad in ({"unhealthy_first_checks": -1}, {"unhealthy_first_checks": 1.5},
                {"unhealthy_first_checks": True}, {"delay_seconds": "1"},
                {"delay_seconds": -0.1}, {"delay_seconds": 601}, {"colour": 1}, [1]):
        r = admin.call("PUT", "/_admin/workbench/health", bad)
        assert r.status == 400 and "error" in r.body, bad
    assert admin.call("PUT", "/_admin/workbench/health", "{nope").status == 400
    assert admin.get("/_admin/workbench/health").body["unhealthy_first_checks"] == 0
    got = admin.call("PUT", "/_admin/workbench/health", {"delay_seconds": 1}).body
    assert got["delay_seconds"] == 1.0 and got["unhealthy_first_checks"] == 0
    assert admin.call("PUT", "/_admin/workbench/health", got).status == 200  # GET round trip


# ---- several organizations, soft delete ---------------------------------------------------------

OTHER_ORG = "5f3c2a10-8d4e-4b6a-9c71-0e2f4a6b8c9d"


def add_org(admin: Http, name: str, org_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if org_id is not None:
        body["id"] = org_id
    r = admin.post("/_admin/workbench/organizations", body)
    assert r.status == 201, r.body
    return r.body


def test_one_key_serves_the_organizations_the_admin_adds(api: Http, admin: Http):
    globex = add_org(admin, "Globex Corp", OTHER_ORG)
    assert globex["id"] == OTHER_ORG and globex["attributes"]["name"] == "Globex Corp"
    generated = add_org(admin, "Initech")["id"]
    listed = api.get("/api/v2/organizations").body["data"]
    assert [o["id"] for o in listed] == [ORG_ID, OTHER_ORG, generated]
    got = api.get(f"/api/v2/organizations/{OTHER_ORG}").body["data"]
    assert got["type"] == "organizations" and got["attributes"]["short_name"] == "GC"
    named = api.get("/api/v2/organizations?filter[name]=Initech").body["data"]
    assert [o["id"] for o in named] == [generated]
    orgs = api.get("/_admin/state").body["workbench"]["organizations"]
    assert [o["id"] for o in orgs] == [ORG_ID, OTHER_ORG, generated]
    for bad in ({}, {"name": " "}, {"name": "X", "id": "not-a-guid"},
                {"name": "X", "id": OTHER_ORG}, {"name": "X", "colour": "red"}, [1]):
        r = admin.post("/_admin/workbench/organizations", bad)
        assert r.status == 400 and "error" in r.body, bad
    # reset leaves the seeded organization only
    assert admin.post("/_admin/reset").status == 204
    assert [o["id"] for o in api.get("/api/v2/organizations").body["data"]] == [ORG_ID]
    assert_envelope(api.get(f"/api/v2/organizations/{OTHER_ORG}"), 404)


def test_devices_carry_their_organization_and_filter_by_it(api: Http, admin: Http):
    add_org(admin, "Globex Corp", OTHER_ORG)
    ours = create(api, aws_attrs("same name"))
    r = api.post(DEVICES, doc(aws_attrs("same name"), org_id=OTHER_ORG))
    assert r.status == 201, r.body  # names are unique per organization only
    theirs = r.body["data"]
    assert theirs["relationships"]["organization"]["data"]["id"] == OTHER_ORG
    got = api.get(f"{DEVICES}/{theirs['id']}?include=organization").body
    assert got["data"]["relationships"]["organization"]["data"]["id"] == OTHER_ORG
    assert [o["id"] for o in got["included"]] == [OTHER_ORG]
    related = api.get(f"{DEVICES}/{theirs['id']}/organization").body["data"]
    assert related["id"] == OTHER_ORG
    for org, want in ((ORG_ID, ours["id"]), (OTHER_ORG, theirs["id"])):
        listed = api.get(f"{DEVICES}?filter[name]=same%20name&filter[organization][id]={org}")
        assert [d["id"] for d in listed.body["data"]] == [want]
    both = api.get(f"{DEVICES}?filter[name]=same%20name&include=organization").body
    assert {d["id"] for d in both["data"]} == {ours["id"], theirs["id"]}
    assert {o["id"] for o in both["included"]} == {ORG_ID, OTHER_ORG}
    # an organization the key does not serve, and no moving between organizations
    err = assert_envelope(api.post(DEVICES, doc(aws_attrs("x"), org_id=OTHER_ORG[::-1])), 422)
    assert err["source"]["pointer"] == "/data/relationships/organization/data/id"
    err = assert_envelope(api.patch(f"{DEVICES}/{ours['id']}", {"data": {
        "type": "security_devices", "id": ours["id"], "attributes": {},
        "relationships": {"organization": {"data": {"type": "organizations",
                                                    "id": OTHER_ORG}}}}}), 422)
    assert "another organization" in err["detail"]


def test_soft_deleted_device_stays_listed_frees_its_name_and_refuses_writes(
        api: Http, admin: Http):
    dev = create(api, aws_attrs("gone soft"))
    assert dev["attributes"]["deleted_at"] is None
    r = admin.post(f"/_admin/workbench/security_devices/{dev['id']}/soft-delete")
    assert r.status == 200 and r.body["id"] == dev["id"] and r.body["deleted_at"]
    stamp = r.body["deleted_at"]
    again = admin.post(f"/_admin/workbench/security_devices/{dev['id']}/soft-delete")
    assert again.status == 200 and again.body["deleted_at"] == stamp  # kept, not renewed
    got = api.get(f"{DEVICES}/{dev['id']}")
    assert got.status == 200 and got.body["data"]["attributes"]["deleted_at"] == stamp
    listed = api.get(f"{DEVICES}?filter[name]=gone%20soft&filter[organization][id]={ORG_ID}")
    assert [d["id"] for d in listed.body["data"]] == [dev["id"]]
    # the name is free: a new device takes it; both are listed
    fresh = create(api, aws_attrs("gone soft"))
    listed = api.get(f"{DEVICES}?filter[name]=gone%20soft").body["data"]
    assert {d["id"] for d in listed} == {dev["id"], fresh["id"]}
    assert_envelope(api.patch(f"{DEVICES}/{dev['id']}",
                              doc({"location": "x"}, org_id=None)), 404)
    assert_envelope(api.delete(f"{DEVICES}/{dev['id']}"), 404)
    state = api.get("/_admin/state").body["workbench"]["security_devices"]
    assert {d["id"]: d["attributes"]["deleted_at"] for d in state} == {
        dev["id"]: stamp, fresh["id"]: None}
    assert admin.post("/_admin/workbench/security_devices/nope/soft-delete").status == 404
