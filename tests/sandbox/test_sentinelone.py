"""The SentinelOne emulator over real HTTP: auth, RBAC, users, service users, threats, health."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest

from conftest import ORG_ID, Http, Reply

S1 = "/web/api/v2.1"
ADMIN_TOKEN = "sandbox-s1-admin-token"
ACCOUNT_ID = "1491542137455280128"
SITE_ID = "1491542137522389002"
EXTRA_TITLES = {("Endpoints", "Remote Shell"), ("Endpoints", "Initiate Scan"),
                ("Endpoints", "File Fetch"), ("Endpoints", "Fetch Logs"),
                ("Endpoint Threats", "Fetch Threat File")}


class S1Client:
    def __init__(self, http: Http, token: str | None = ADMIN_TOKEN) -> None:
        self.http = http
        self.token = token

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Reply:
        hdrs = dict(headers or {})
        if self.token is not None:
            hdrs.setdefault("Authorization", f"ApiToken {self.token}")
        return self.http.call(method, S1 + path, body, headers=hdrs, auth=False,
                              content_type="application/json")

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("DELETE", path, body, **kw)

    def as_token(self, token: str | None) -> "S1Client":
        return S1Client(self.http, token)


@pytest.fixture
def s1(admin: Http) -> S1Client:
    """An admin client on a freshly reset sandbox."""
    return S1Client(admin)


def err(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"].startswith("application/json")
    errors = reply.errors()
    assert len(errors) == 1 and isinstance(errors[0]["code"], int)
    assert errors[0]["title"] and errors[0]["detail"]
    return errors[0]


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, (reply.status, reply.body)
    return reply.body["data"]


def future(days: int = 30) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def role_id(s1: S1Client, name: str) -> str:
    roles = ok(s1.get(f"/rbac/roles?name={quote(name)}&predefinedRole=true"
                      f"&accountIds={ACCOUNT_ID}"))
    assert len(roles) == 1, roles
    return roles[0]["id"]


def granted(role: dict[str, Any]) -> list[str]:
    return [p["identifier"] for page in role["pages"] for p in page["permissions"] if p["value"]]


def template(s1: S1Client) -> dict[tuple[str, str], dict[str, Any]]:
    data = ok(s1.get(f"/rbac/role?accountIds={ACCOUNT_ID}"))
    return {(page["name"], p["title"]): p for page in data["pages"] for p in page["permissions"]}


def create_role(s1: S1Client, name: str, permission_ids: list[str]) -> dict[str, Any]:
    return ok(s1.post("/rbac/role", {
        "data": {"name": name, "description": "made by a test", "permissionIds": permission_ids},
        "filter": {"accountIds": [ACCOUNT_ID]}}))


def create_service_user(s1: S1Client, name: str, role: str, expiration: str | None = None
                        ) -> dict[str, Any]:
    return ok(s1.post("/service-users", {"data": {
        "name": name, "description": "API Service user for Expel integration",
        "expirationDate": expiration or future(), "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": role}]}}))


def viewer_expel_permissions(s1: S1Client) -> list[str]:
    """The guide's 'Viewer - Expel': Viewer's permissions + the extra titles + their deps."""
    viewer = ok(s1.get(f"/rbac/role/{role_id(s1, 'Viewer')}?accountIds={ACCOUNT_ID}"))
    perms = set(granted(viewer))
    tmpl = template(s1)
    for key in EXTRA_TITLES:
        perms.add(tmpl[key]["identifier"])
        perms.update(tmpl[key]["dependsOn"])
    return sorted(perms)


# ---- auth -----------------------------------------------------------------------------------


def test_auth_401_envelope(s1: S1Client):
    anon = s1.as_token(None)
    for path in ("/threats", "/rbac/roles", "/users", "/no/such/route"):
        e = err(anon.get(path), 401)
        assert e["code"] == 4010010 and e["title"] == "Authentication Failed"
        assert "ApiToken" in e["detail"]
    e = err(s1.get("/threats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}), 401)
    assert e["code"] == 4010010
    assert err(s1.as_token("not-a-token").get("/threats"), 401)["detail"] == "invalid API token"
    assert err(anon.post("/rbac/role", {"data": {}}), 401)["code"] == 4010010
    # the scheme is case-insensitive (the Splunk connector sends APIToken)
    assert s1.get("/threats", headers={"Authorization": f"APIToken {ADMIN_TOKEN}"}).status == 200
    # an unknown route with a good token is 404 in the same envelope
    assert err(s1.get("/no/such/route"), 404)["code"] == 4040010


def test_accounts_and_sites(s1: S1Client):
    accounts = s1.get("/accounts")
    assert accounts.status == 200
    assert [a["name"] for a in accounts.body["data"]] == ["Acme Corp"]
    assert accounts.body["pagination"] == {"nextCursor": None, "totalItems": 1}
    assert ok(s1.get(f"/accounts/{ACCOUNT_ID}"))["id"] == ACCOUNT_ID
    err(s1.get("/accounts/1"), 404)
    sites = ok(s1.get(f"/sites?accountIds={ACCOUNT_ID}"))
    assert [s["id"] for s in sites["sites"]] == [SITE_ID]
    assert sites["sites"][0]["accountId"] == ACCOUNT_ID and "allSites" in sites
    assert ok(s1.get("/sites?name=nope"))["sites"] == []


# ---- roles ----------------------------------------------------------------------------------


def test_role_template_pages(s1: S1Client):
    data = ok(s1.get(f"/rbac/role?accountIds={ACCOUNT_ID}"))
    pages = {p["name"]: p for p in data["pages"]}
    assert {"Endpoints", "Endpoint Threats", "Roles", "Users", "Service Users"} <= set(pages)
    tmpl = template(s1)
    for key in EXTRA_TITLES | {("Endpoint Threats", "Change Incident Status"),
                               ("Endpoint Threats", "Change Analyst Verdict"),
                               ("Endpoint Threats", "Add Notes"),
                               ("Endpoint Threats", "Edit Notes")}:
        assert key in tmpl, key
    identifiers = {p["identifier"] for p in tmpl.values()}
    for perm in tmpl.values():
        assert perm["value"] is False
        assert set(perm["dependsOn"]) <= identifiers
    shell = tmpl[("Endpoints", "Remote Shell")]
    assert tmpl[("Endpoints", "View")]["identifier"] in shell["dependsOn"]
    assert tmpl[("Endpoint Threats", "Change Incident Status")]["identifier"] \
        == "Threats.updateIncidentStatus"
    err(s1.get("/rbac/role?bogus=1"), 400)


def test_predefined_roles(s1: S1Client):
    roles = ok(s1.get(f"/rbac/roles?predefinedRole=true&accountIds={ACCOUNT_ID}&limit=100"))
    names = {r["name"] for r in roles}
    assert {"Viewer", "IR Team", "Admin", "SOC"} <= names
    assert all(r["predefinedRole"] for r in roles)
    viewer = ok(s1.get(f"/rbac/role/{role_id(s1, 'Viewer')}"))
    perms = granted(viewer)
    assert "Threats.view" in perms and "Endpoints.remoteShell" not in perms
    assert all(p.endswith(".view") for p in perms)
    ir = granted(ok(s1.get(f"/rbac/role/{role_id(s1, 'IR Team')}")))
    assert {"Threats.updateIncidentStatus", "Threats.addNotes"} <= set(ir)

    vid = viewer["id"]
    body = {"data": {"name": "Viewer", "description": "x", "permissionIds": perms}}
    assert "predefined" in err(s1.put(f"/rbac/role/{vid}", body), 403)["detail"]
    assert "predefined" in err(s1.delete(f"/rbac/role/{vid}", {"data": {}}), 403)["detail"]
    assert ok(s1.get(f"/rbac/role/{vid}"))["name"] == "Viewer"
    # a predefined name is taken in every scope
    err(s1.post("/rbac/role", {"data": {"name": "viewer", "description": "", "permissionIds": []},
                               "filter": {"accountIds": [ACCOUNT_ID]}}), 409)


def test_create_role_with_missing_dependency_is_400(s1: S1Client):
    tmpl = template(s1)
    shell = tmpl[("Endpoints", "Remote Shell")]
    e = err(s1.post("/rbac/role", {
        "data": {"name": "Broken", "description": "", "permissionIds": [shell["identifier"]]},
        "filter": {"accountIds": [ACCOUNT_ID]}}), 400)
    assert shell["identifier"] in e["detail"] and "Endpoints.view" in e["detail"]
    e = err(s1.post("/rbac/role", {
        "data": {"name": "Broken", "description": "", "permissionIds": ["Nope.nothing"]},
        "filter": {"accountIds": [ACCOUNT_ID]}}), 400)
    assert "data.permissionIds[0]" in e["detail"]
    assert ok(s1.get("/rbac/roles?name=Broken")) == []


def test_role_crud(s1: S1Client):
    perms = viewer_expel_permissions(s1)
    role = create_role(s1, "Viewer - Expel", perms)
    rid = role["id"]
    assert role["predefinedRole"] is False and role["scope"] == "Account"
    assert role["scopeId"] == ACCOUNT_ID and sorted(granted(role)) == perms

    got = ok(s1.get(f"/rbac/role/{rid}?accountIds={ACCOUNT_ID}"))
    assert sorted(granted(got)) == perms and got["name"] == "Viewer - Expel"
    listed = ok(s1.get(f"/rbac/roles?accountIds={ACCOUNT_ID}&predefinedRole=false"))
    assert [r["id"] for r in listed] == [rid]
    assert ok(s1.get(f"/rbac/roles?name={quote('Viewer - Expel')}"))[0]["usersInRoles"] == 0

    err(s1.post("/rbac/role", {"data": {"name": "VIEWER - expel", "description": "",
                                        "permissionIds": []},
                               "filter": {"accountIds": [ACCOUNT_ID]}}), 409)
    err(s1.post("/rbac/role", {"data": {"name": "Elsewhere", "description": "",
                                        "permissionIds": []},
                               "filter": {"accountIds": ["42"]}}), 400)

    fewer = [p for p in perms if p not in ("Endpoints.remoteShell",)]
    updated = ok(s1.put(f"/rbac/role/{rid}", {"data": {
        "name": "Viewer - Expel", "description": "updated", "permissionIds": fewer}}))
    assert sorted(granted(updated)) == fewer and updated["description"] == "updated"
    # removing a permission others depend on is refused
    e = err(s1.put(f"/rbac/role/{rid}", {"data": {
        "name": "Viewer - Expel", "description": "updated",
        "permissionIds": [p for p in fewer if p != "Endpoints.view"]}}), 400)
    assert "Endpoints.view" in e["detail"]

    # a role held by a user needs a targetId to be deleted
    user = ok(s1.post("/users", {"data": {
        "email": "holder@acme.example", "fullName": "Holder", "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": rid}]}}))
    assert "targetId" in err(s1.delete(f"/rbac/role/{rid}", {"data": {}}), 400)["detail"]
    ok(s1.delete(f"/users/{user['id']}"))

    err(s1.delete(f"/rbac/role/{rid}"), 400)  # the body {"data": {}} is required
    assert ok(s1.delete(f"/rbac/role/{rid}", {"data": {}})) == {"success": True}
    err(s1.get(f"/rbac/role/{rid}"), 404)
    err(s1.delete(f"/rbac/role/{rid}", {"data": {}}), 404)
    state = s1.http.get("/_admin/state").body["sentinelone"]
    assert state["custom_roles"] == []


# ---- users ----------------------------------------------------------------------------------


def test_user_create_invitation_and_filters(s1: S1Client):
    viewer = role_id(s1, "Viewer")
    body = {"data": {"email": "soc+acme_corp@expel.io", "fullName": "Expel SOC",
                     "scope": "account", "scopeRoles": [{"id": ACCOUNT_ID, "roleId": viewer}]}}
    user = ok(s1.post("/users", body))
    uid = user["id"]
    assert user["invitationSent"] is True and user["emailVerified"] is False
    assert user["scopeRoles"][0]["roleId"] == viewer
    assert user["scopeRoles"][0]["roleName"] == "Viewer"
    err(s1.post("/users", body), 409)

    found = ok(s1.get(f"/users?email={quote('soc+acme_corp@expel.io')}"))
    assert [u["id"] for u in found] == [uid]
    assert ok(s1.get(f"/users?email={quote('nobody@expel.io')}")) == []
    assert [u["id"] for u in ok(s1.get(f"/users?roleIds={viewer}"))] == [uid]
    assert ok(s1.get(f"/users/{uid}"))["fullName"] == "Expel SOC"

    updated = ok(s1.put(f"/users/{uid}", {"data": {"fullName": "Expel SOC team"}}))
    assert updated["fullName"] == "Expel SOC team"
    assert "email" in err(s1.put(f"/users/{uid}", {"data": {"email": "x@expel.io"}}),
                          400)["detail"]
    e = err(s1.post("/users", {"data": dict(body["data"], email="t@expel.io", scope="tenant")}),
            403)
    assert "tenant" in e["detail"]
    e = err(s1.post("/users", {"data": dict(body["data"], email="r@expel.io",
                                            scopeRoles=[{"id": ACCOUNT_ID, "roleId": "9"}])}),
            400)
    assert "data.scopeRoles[0].roleId" in e["detail"]

    assert ok(s1.delete(f"/users/{uid}")) == {"success": True}
    err(s1.get(f"/users/{uid}"), 404)
    second = ok(s1.post("/users", body))
    assert ok(s1.post("/users/delete-users", {"filter": {"ids": [second["id"]]}})) \
        == {"affected": 1}
    state = s1.http.get("/_admin/state").body["sentinelone"]
    assert [u["email"] for u in state["users"]] == ["admin@acme.example"]


# ---- service users and tokens -----------------------------------------------------------------


def test_service_user_token_once_and_auth(s1: S1Client):
    ir = role_id(s1, "IR Team")
    su = create_service_user(s1, "Expel API", ir)
    token = su["apiToken"]["value"]
    assert token and su["apiToken"]["expiresAt"]
    assert su["scopeRoles"][0]["roleName"] == "IR Team"

    got = ok(s1.get(f"/service-users/{su['id']}"))
    assert "value" not in got["apiToken"] and got["apiToken"]["expiresAt"]
    assert got["account"] == {"id": ACCOUNT_ID, "name": "Acme Corp"}
    for item in ok(s1.get("/service-users")):
        assert "value" not in (item["apiToken"] or {})
    assert token not in str(s1.get("/service-users").body)
    assert token not in str(s1.get(f"/service-users/{su['id']}").body)

    client = s1.as_token(token)
    threats = client.get("/threats")
    assert threats.status == 200 and threats.body["pagination"]["totalItems"] == 7
    # IR Team may not manage roles
    assert "Roles.create" in err(client.post("/rbac/role", {
        "data": {"name": "x", "description": "", "permissionIds": []},
        "filter": {"accountIds": [ACCOUNT_ID]}}), 403)["detail"]

    err(s1.post("/service-users", {"data": {
        "name": "Expel API", "expirationDate": future(), "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": ir}]}}), 409)
    e = err(s1.put(f"/service-users/{su['id']}", {"data": {"name": "Renamed"}}), 400)
    assert "data.name" in e["detail"]
    updated = ok(s1.put(f"/service-users/{su['id']}", {"data": {"description": "new"}}))
    assert updated["description"] == "new" and "value" not in updated["apiToken"]

    assert ok(s1.delete(f"/service-users/{su['id']}")) == {"success": True}
    err(client.get("/threats"), 401)
    state = s1.http.get("/_admin/state").body["sentinelone"]
    assert state["service_users"] == []
    assert not [t for t in state["tokens"] if t["active"] and t["ownerKind"] == "serviceUser"]


def test_service_user_expiration_must_be_future(s1: S1Client):
    ir = role_id(s1, "IR Team")
    past = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "data.expirationDate" in err(s1.post("/service-users", {"data": {
        "name": "Old", "expirationDate": past, "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": ir}]}}), 400)["detail"]
    assert "data.expirationDate" in err(s1.post("/service-users", {"data": {
        "name": "Old", "expirationDate": "next week", "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": ir}]}}), 400)["detail"]
    assert "data.expirationDate" in err(s1.post("/service-users", {"data": {
        "name": "Old", "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": ir}]}}), 400)["detail"]


def test_generate_api_token_revokes_old(s1: S1Client):
    su = create_service_user(s1, "Expel API", role_id(s1, "IR Team"))
    old = su["apiToken"]["value"]
    new = ok(s1.post(f"/service-users/{su['id']}/generate-api-token",
                     {"data": {"expirationDate": future(60)}}))
    assert new["token"] and new["token"] != old and new["expiresAt"]
    assert err(s1.as_token(old).get("/threats"), 401)["detail"] == "API token was revoked"
    assert s1.as_token(new["token"]).get("/threats").status == 200
    details = ok(s1.get(f"/users/{su['id']}/api-token-details"))
    assert details["expiresAt"] == new["expiresAt"]

    ok(s1.post("/users/revoke-api-token", {"data": {"id": su["id"]}}))
    err(s1.as_token(new["token"]).get("/threats"), 401)
    assert ok(s1.get(f"/service-users/{su['id']}"))["apiToken"] is None


def test_expired_token_is_401(s1: S1Client):
    su = create_service_user(s1, "Expel API", role_id(s1, "IR Team"))
    client = s1.as_token(su["apiToken"]["value"])
    assert client.get("/threats").status == 200
    r = s1.http.post("/_admin/sentinelone/expire-token", {"serviceUserId": su["id"]})
    assert r.status == 200 and r.body["ownerId"] == su["id"]
    e = err(client.get("/threats"), 401)
    assert e["code"] == 4010010 and e["detail"] == "API token expired"
    assert s1.http.post("/_admin/sentinelone/expire-token", {"serviceUserId": "1"}).status == 404
    assert s1.http.post("/_admin/sentinelone/expire-token", {"bogus": "1"}).status == 400


def test_permissions_follow_the_role(s1: S1Client):
    tmpl = template(s1)
    dash = tmpl[("Dashboard", "View")]["identifier"]
    role = create_role(s1, "Dashboard only", [dash])
    su = create_service_user(s1, "Dash", role["id"])
    client = s1.as_token(su["apiToken"]["value"])
    e = err(client.get("/threats"), 403)
    assert "Threats.view" in e["detail"] and e["code"] == 4030010

    # granting the permission to the role takes effect at once
    ok(s1.put(f"/rbac/role/{role['id']}", {"data": {
        "name": "Dashboard only", "description": "", "permissionIds": [dash, "Threats.view"]}}))
    assert client.get("/threats").status == 200
    err(client.post("/threats/incident", {"filter": {"ids": ["1900000000000000001"]},
                                          "data": {"incidentStatus": "resolved"}}), 403)


def test_threat_status_syncing_actions(s1: S1Client):
    ir = s1.as_token(create_service_user(s1, "Expel API", role_id(s1, "IR Team"))
                     ["apiToken"]["value"])
    viewer = s1.as_token(create_service_user(s1, "Viewer SU", role_id(s1, "Viewer"))
                         ["apiToken"]["value"])
    tid = "1900000000000000001"
    body = {"filter": {"ids": [tid]}, "data": {"incidentStatus": "in_progress"}}
    e = err(viewer.post("/threats/incident", body), 403)
    assert "Threats.updateIncidentStatus" in e["detail"]
    assert ok(ir.post("/threats/incident", body)) == {"affected": 1}
    assert ok(ir.post("/threats/incident", body)) == {"affected": 0}  # already set
    assert ok(ir.post("/threats/analyst-verdict", {
        "filter": {"ids": [tid], "tenant": "true"},
        "data": {"analystVerdict": "true_positive"}})) == {"affected": 1}
    assert ok(ir.post("/threats/notes", {"filter": {"ids": [tid]},
                                        "data": {"text": "Closed (True Positive)"}})) \
        == {"affected": 1}
    err(viewer.post("/threats/notes", {"filter": {"ids": [tid]}, "data": {"text": "x"}}), 403)
    info = ok(viewer.get(f"/threats?ids={tid}"))[0]["threatInfo"]
    assert info["incidentStatus"] == "in_progress" and info["analystVerdict"] == "true_positive"
    notes = ok(viewer.get(f"/threats/{tid}/notes"))
    assert [n["text"] for n in notes] == ["Closed (True Positive)"]
    e = err(ir.post("/threats/incident", {"filter": {"ids": [tid]},
                                          "data": {"incidentStatus": "done"}}), 400)
    assert "data.incidentStatus" in e["detail"]
    err(ir.post("/threats/incident", {"filter": {}, "data": {"incidentStatus": "resolved"}}), 400)
    assert [t["id"] for t in ok(s1.get("/threats?incidentStatuses=in_progress"))] == [tid]


# ---- lists, validation, limits ----------------------------------------------------------------


def test_cursor_pagination(s1: S1Client):
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/threats?limit=3" + (f"&cursor={quote(cursor)}" if cursor else "")
        r = s1.get(path)
        assert r.status == 200 and r.body["pagination"]["totalItems"] == 7
        seen += [t["id"] for t in r.body["data"]]
        pages += 1
        cursor = r.body["pagination"]["nextCursor"]
        if cursor is None:
            break
        base64.b64decode(cursor)  # opaque, but base64
    assert pages == 3 and len(seen) == 7 and len(set(seen)) == 7

    desc = ok(s1.get("/threats?sortBy=createdAt&sortOrder=desc&limit=1000"))
    assert [t["id"] for t in desc] == list(reversed(seen))
    roles = s1.get("/rbac/roles?limit=2")
    assert len(roles.body["data"]) == 2 and roles.body["pagination"]["nextCursor"]
    cursor = roles.body["pagination"]["nextCursor"]
    assert "another list" in err(s1.get(f"/threats?cursor={quote(cursor)}"), 400)["detail"]
    err(s1.get("/threats?cursor=%21%21notbase64"), 400)
    err(s1.get("/threats?limit=0"), 400)
    err(s1.get("/threats?limit=1001"), 400)
    err(s1.get("/threats?limit=ten"), 400)
    err(s1.get("/threats?sortBy=color"), 400)
    counted = s1.get("/threats?countOnly=true")
    assert counted.body["data"] == [] and counted.body["pagination"]["totalItems"] == 7
    assert len(ok(s1.get("/threats?skip=5"))) == 2


def test_strict_validation(s1: S1Client):
    body = {"data": {"name": "X", "description": "", "permissionIds": [], "color": "red"},
            "filter": {"accountIds": [ACCOUNT_ID]}}
    assert "data.color" in err(s1.post("/rbac/role", body), 400)["detail"]
    body = {"data": {"name": "X", "description": "", "permissionIds": "Threats.view"},
            "filter": {"accountIds": [ACCOUNT_ID]}}
    assert "data.permissionIds" in err(s1.post("/rbac/role", body), 400)["detail"]
    body = {"data": {"name": 5, "description": ""}, "filter": {"accountIds": [ACCOUNT_ID]}}
    assert "data.name" in err(s1.post("/rbac/role", body), 400)["detail"]
    body = {"data": {"name": "X", "description": ""}, "filter": {"accountIds": [ACCOUNT_ID]},
            "extra": 1}
    assert "extra" in err(s1.post("/rbac/role", body), 400)["detail"]
    assert "filter" in err(s1.post("/rbac/role", {"data": {"name": "X", "description": ""}}),
                           400)["detail"]
    e = err(s1.post("/users", {"data": {"email": "a@b.io", "fullName": "A", "scope": "account",
                                        "scopeRoles": [{"id": ACCOUNT_ID, "roles": ["Viewer"]}]}}),
            400)
    assert "data.scopeRoles[0].roles" in e["detail"]
    err(s1.post("/rbac/role", "{not json"), 400)
    err(s1.post("/rbac/role", {"data": {}}, headers={"Content-Type": "text/plain"}), 415)
    assert "color" in err(s1.get("/users?color=red"), 400)["detail"]
    assert s1.http.get("/_admin/state").body["sentinelone"]["custom_roles"] == []


def test_rate_limit_429(s1: S1Client):
    r = s1.http.post("/_admin/sentinelone/rate-limits",
                     {"rules": [{"prefix": "/threats", "rate": 0.2, "burst": 2}]})
    assert r.status == 200 and r.body["rules"][0]["prefix"] == "/threats"
    assert s1.get("/threats").status == 200
    assert s1.get("/threats").status == 200
    limited = s1.get("/threats")
    e = err(limited, 429)
    assert e["code"] == 4290010 and int(limited.headers["Retry-After"]) >= 1
    assert s1.get("/rbac/roles").status == 200  # other prefixes are not limited
    # buckets are per token
    su = create_service_user(s1, "Expel API", role_id(s1, "IR Team"))
    assert s1.as_token(su["apiToken"]["value"]).get("/threats").status == 200
    # sub-paths match the /threats rule too unless a /threats/ rule exists
    assert err(s1.get("/threats/1900000000000000001/notes"), 429)
    assert s1.http.post("/_admin/sentinelone/rate-limits", {"rules": "x"}).status == 400
    assert s1.http.post("/_admin/sentinelone/rate-limits", {"defaults": True}).status == 200
    assert s1.get("/threats").status == 200
    s1.http.post("/_admin/sentinelone/rate-limits", {"rules": []})
    for _ in range(12):
        assert s1.get("/service-users").status == 200
    # reset restores the vendor table (/service-users: 5/s, burst 10)
    assert s1.http.post("/_admin/reset").status == 204
    statuses = []
    while 429 not in statuses and len(statuses) < 40:
        statuses.append(s1.get("/service-users").status)
    assert 429 in statuses and statuses.index(429) >= 10
    assert s1.http.get("/_admin/sentinelone/rate-limits").body["rules"]


def test_injected_fault_uses_the_vendor_envelope(s1: S1Client):
    r = s1.http.post("/_admin/faults", {"route": f"GET {S1}/threats", "status": 503,
                                        "retry_after": 2})
    assert r.status == 201
    reply = s1.get("/threats")
    assert err(reply, 503)["code"] == 5030010 and reply.headers["Retry-After"] == "2"
    assert s1.get("/threats").status == 200
    calls = s1.http.get("/_admin/calls").body["routes"]
    assert calls[f"GET {S1}/threats"] == 2


def test_reset_restores_the_seed(s1: S1Client):
    create_role(s1, "Temp", [])
    su = create_service_user(s1, "Temp SU", role_id(s1, "IR Team"))
    ok(s1.post("/threats/incident", {"filter": {"ids": ["1900000000000000002"]},
                                     "data": {"incidentStatus": "resolved"}}))
    assert s1.http.post("/_admin/reset").status == 204
    state = s1.http.get("/_admin/state").body["sentinelone"]
    assert state["custom_roles"] == [] and state["service_users"] == []
    assert [t["ownerId"] for t in state["tokens"]] == [state["users"][0]["id"]]
    err(s1.as_token(su["apiToken"]["value"]).get("/threats"), 401)
    assert ok(s1.get("/threats?incidentStatuses=resolved")) == []


# ---- Workbench health check -------------------------------------------------------------------


DEVICES = "/api/v2/security_devices"


def device_status(api: Http, spec: dict[str, Any], name: str) -> dict[str, Any]:
    r = api.post(DEVICES, {"data": {
        "type": "security_devices",
        "attributes": {"name": name, "device_type": "ENDPOINT", "plugin_slug": "sentinelone",
                       "device_spec": spec},
        "relationships": {"organization": {"data": {"type": "organizations", "id": ORG_ID}}}}})
    assert r.status == 201, r.body
    dev_id = r.body["data"]["id"]
    deadline = time.monotonic() + 10
    while True:
        attrs = api.get(f"{DEVICES}/{dev_id}").body["data"]["attributes"]
        if not attrs["is_verifying_status"]:
            return attrs
        assert time.monotonic() < deadline, attrs
        time.sleep(0.05)


def test_health_check(s1: S1Client, api: Http, sandbox_url: str):
    ir_token = create_service_user(s1, "Expel API", role_id(s1, "IR Team"))["apiToken"]["value"]
    viewer_role = create_role(s1, "Viewer - Expel", viewer_expel_permissions(s1))
    viewer_token = create_service_user(s1, "Viewer API", viewer_role["id"])["apiToken"]["value"]

    attrs = device_status(api, {"console_url": sandbox_url, "api_token": ir_token,
                                "status_syncing": True}, "S1 healthy")
    assert attrs["status"] == "healthy", attrs["status_details"]
    assert [c["name"] for c in attrs["status_details"]["checks"]] \
        == ["list_threats", "status_syncing"]
    assert attrs["status_details"]["checks"][0]["via"] == "http"

    attrs = device_status(api, {"console_url": sandbox_url, "api_token": viewer_token,
                                "status_syncing": False}, "S1 viewer no sync")
    assert attrs["status"] == "healthy", attrs["status_details"]

    attrs = device_status(api, {"console_url": sandbox_url, "api_token": viewer_token,
                                "status_syncing": True}, "S1 viewer sync")
    assert attrs["status"] == "unhealthy"
    reason = attrs["status_details"]["reason"]
    for perm in ("Threats.updateIncidentStatus", "Threats.updateAnalystVerdict",
                 "Threats.addNotes"):
        assert perm in reason
    assert "Change Incident Status" in reason

    attrs = device_status(api, {"console_url": sandbox_url, "api_token": "wrong"}, "S1 bad")
    assert attrs["status"] == "unhealthy" and "401" in attrs["status_details"]["reason"]

    # a vendor hostname is checked in-process against the emulator
    attrs = device_status(api, {"console_url": "https://usea1-1001.sentinelone.net",
                                "api_token": ir_token, "status_syncing": True}, "S1 alias")
    assert attrs["status"] == "healthy", attrs["status_details"]

    # a console URL on this machine that is not the sandbox fails
    attrs = device_status(api, {"console_url": "http://127.0.0.1:9", "api_token": ir_token},
                          "S1 wrong port")
    assert attrs["status"] == "unhealthy" and "cannot reach" in attrs["status_details"]["reason"]


# ---- more accounts, sites, predefined roles (admin hooks) --------------------------------------


def add_account(s1: S1Client, name: str) -> tuple[str, str]:
    r = s1.http.post("/_admin/sentinelone/accounts", {"name": name})
    assert r.status == 201, r.body
    return r.body["account"]["id"], r.body["site"]["id"]


def test_second_account_users_hold_a_role_per_account(s1: S1Client):
    assert s1.http.post("/_admin/sentinelone/accounts", {"name": "Acme Corp"}).status == 400
    assert s1.http.post("/_admin/sentinelone/accounts", {"nom": "x"}).status == 400
    other, other_site = add_account(s1, "Acme EU")
    names = [a["name"] for a in ok(s1.get("/accounts"))]
    assert names == ["Acme Corp", "Acme EU"]
    assert ok(s1.get(f"/accounts/{other}"))["name"] == "Acme EU"
    sites = ok(s1.get(f"/sites?accountIds={other}"))["sites"]
    assert [s["id"] for s in sites] == [other_site]

    # The same role name in each account; a role of one account is not usable in the other.
    mine = create_role(s1, "Viewer - Expel", ["Dashboard.view"])
    theirs = ok(s1.post("/rbac/role", {
        "data": {"name": "Viewer - Expel", "description": "", "permissionIds": ["Dashboard.view"]},
        "filter": {"accountIds": [other]}}))
    assert theirs["accountName"] == "Acme EU"
    listed = ok(s1.get(f"/rbac/roles?accountIds={other}&predefinedRole=false"))
    assert [r["id"] for r in listed] == [theirs["id"]]
    body = {"data": {"email": "soc+acme@expel.io", "fullName": "Expel SOC", "scope": "account",
                     "scopeRoles": [{"id": other, "roleId": mine["id"]}]}}
    assert "not available" in err(s1.post("/users", body), 400)["detail"]

    # One console user, a role in each account; listing by account sees it in both.
    body["data"]["scopeRoles"] = [{"id": ACCOUNT_ID, "roleId": mine["id"]},
                                  {"id": other, "roleId": theirs["id"]}]
    user = ok(s1.post("/users", body))
    assert [(sr["id"], sr["accountName"]) for sr in user["scopeRoles"]] == \
        [(ACCOUNT_ID, "Acme Corp"), (other, "Acme EU")]
    for acct in (ACCOUNT_ID, other):
        assert user["id"] in [u["id"] for u in ok(s1.get(f"/users?accountIds={acct}"))]
    # Removing one account's role keeps the user with the other.
    kept = ok(s1.put(f"/users/{user['id']}", {"data": {
        "scopeRoles": [{"id": other, "roleId": theirs["id"]}]}}))
    assert [sr["id"] for sr in kept["scopeRoles"]] == [other]
    assert user["id"] not in [u["id"] for u in ok(s1.get(f"/users?accountIds={ACCOUNT_ID}"))]

    # Service user names are unique per account, not per tenant.
    ir = role_id(s1, "IR Team")
    create_service_user(s1, "Expel API", ir)
    second = ok(s1.post("/service-users", {"data": {
        "name": "Expel API", "expirationDate": future(), "scope": "account",
        "scopeRoles": [{"id": other, "roleId": ir}]}}))
    assert ok(s1.get(f"/service-users/{second['id']}"))["account"]["id"] == other
    found = ok(s1.get(f"/service-users?accountIds={other}&query=Expel%20API"))
    assert [s["id"] for s in found] == [second["id"]]
    err(s1.post("/service-users", {"data": {
        "name": "Expel API", "expirationDate": future(), "scope": "account",
        "scopeRoles": [{"id": other, "roleId": ir}]}}), 409)

    # Reset forgets the added account.
    assert s1.http.post("/_admin/reset").status == 204
    err(s1.get(f"/accounts/{other}"), 404)


def test_site_scope_roles_and_users(s1: S1Client):
    site_role = ok(s1.post("/rbac/role", {
        "data": {"name": "Viewer - Expel", "description": "", "permissionIds": ["Dashboard.view"]},
        "filter": {"siteIds": [SITE_ID]}}))
    assert site_role["scope"] == "Site" and site_role["siteName"] == "Acme Corp - Default site"
    assert [r["id"] for r in ok(s1.get(f"/rbac/roles?siteIds={SITE_ID}&predefinedRole=false"))] \
        == [site_role["id"]]
    # A site role is not visible under the account without includeChildren.
    assert ok(s1.get(f"/rbac/roles?accountIds={ACCOUNT_ID}&predefinedRole=false")) == []
    user = ok(s1.post("/users", {"data": {
        "email": "soc+acme_corp@expel.io", "fullName": "Expel SOC", "scope": "site",
        "scopeRoles": [{"id": SITE_ID, "roleId": site_role["id"]}]}}))
    assert user["scope"] == "site" and user["scopeRoles"][0]["name"] == "Acme Corp - Default site"
    assert [u["id"] for u in ok(s1.get(f"/users?siteIds={SITE_ID}"))] == [user["id"]]
    # The site role cannot be given at account scope.
    e = err(s1.put(f"/users/{user['id']}", {"data": {"scope": "account", "scopeRoles": [
        {"id": ACCOUNT_ID, "roleId": site_role["id"]}]}}), 400)
    assert "not available" in e["detail"]
    su = ok(s1.post("/service-users", {"data": {
        "name": "Expel API", "expirationDate": future(), "scope": "site",
        "scopeRoles": [{"id": SITE_ID, "roleId": role_id(s1, "IR Team")}]}}))
    assert [s["id"] for s in ok(s1.get(f"/service-users?siteIds={SITE_ID}"))] == [su["id"]]
    e = err(s1.post("/users", {"data": {
        "email": "x@expel.io", "fullName": "X", "scope": "site",
        "scopeRoles": [{"id": "42", "roleId": site_role["id"]}]}}), 400)
    assert "no site with id 42" in e["detail"]


def test_predefined_role_permissions_can_be_changed_by_admin(s1: S1Client):
    ir = role_id(s1, "IR Team")
    client = s1.as_token(create_service_user(s1, "Expel API", ir)["apiToken"]["value"])
    role = ok(s1.get(f"/rbac/role/{ir}?accountIds={ACCOUNT_ID}"))
    keep = [p for p in granted(role) if p not in
            ("Threats.updateIncidentStatus", "Threats.updateAnalystVerdict", "Threats.addNotes",
             "Threats.editNotes", "Threats.markAsBenign")]
    put = s1.http.call("PUT", "/_admin/sentinelone/predefined-role",
                       {"name": "IR Team", "permissionIds": keep}, auth=False)
    assert put.status == 200, put.body
    after = ok(s1.get(f"/rbac/role/{ir}?accountIds={ACCOUNT_ID}"))
    assert "Threats.updateIncidentStatus" not in granted(after)
    e = err(client.post("/threats/incident", {"filter": {"ids": ["1900000000000000001"]},
                                              "data": {"incidentStatus": "resolved"}}), 403)
    assert "Change Incident Status" in e["detail"]
    for bad in ({"name": "Nope", "permissionIds": []}, {"name": "IR Team"},
                {"name": "IR Team", "permissionIds": ["No.such"]}):
        r = s1.http.call("PUT", "/_admin/sentinelone/predefined-role", bad, auth=False)
        assert r.status == 400, (bad, r.body)
    assert s1.http.post("/_admin/reset").status == 204
    assert "Threats.updateIncidentStatus" in granted(
        ok(s1.get(f"/rbac/role/{ir}?accountIds={ACCOUNT_ID}")))


# ---- contract: requests shaped as the public SDKs define them ------------------------------------
# s1buildpartners/sentinelone-go-sdk (`types/`, `users.go`, `rbac_input.go`) and
# ayol377/sentinelone-rs (`models/`, `services/`).


def test_contract_service_user_list_carries_a_null_name(s1: S1Client):
    nameless = s1.http.post("/_admin/sentinelone/nameless-service-user",
                            {"description": "made by a SIEM connector"})
    assert nameless.status == 201 and nameless.body["name"] is None, nameless.body
    ours = create_service_user(s1, "Expel API", role_id(s1, "IR Team"))
    listed = ok(s1.get(f"/service-users?accountIds={ACCOUNT_ID}&limit=1"))
    page2 = s1.get(f"/service-users?accountIds={ACCOUNT_ID}&limit=1&cursor="
                   + quote(s1.get(f"/service-users?accountIds={ACCOUNT_ID}&limit=1")
                           .body["pagination"]["nextCursor"]))
    names = {su["id"]: su["name"] for su in listed + ok(page2)}
    assert names == {nameless.body["id"]: None, ours["id"]: "Expel API"}
    # filters and sorting pass over the null name instead of failing on it
    assert [su["id"] for su in ok(s1.get("/service-users?query=Expel%20API"))] == [ours["id"]]
    # full-text query over name and description finds the nameless one by its description
    found = ok(s1.get("/service-users?query=connector"))
    assert [(su["id"], su["name"]) for su in found] == [(nameless.body["id"], None)]
    by_name = ok(s1.get("/service-users?sortBy=name&sortOrder=asc"))
    assert [su["name"] for su in by_name] == ["Expel API", None]
    err(s1.post("/service-users", {"data": {
        "name": "Expel API", "expirationDate": future(), "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": role_id(s1, "IR Team")}]}}), 409)
    assert s1.http.post("/_admin/sentinelone/nameless-service-user",
                        {"accountId": "9"}).status == 400


def test_contract_revoke_api_token_takes_one_body_shape_at_a_time(s1: S1Client):
    su = create_service_user(s1, "Expel API", role_id(s1, "IR Team"))
    token = su["apiToken"]["value"]
    # go-sdk UserIDRequest {data: {userId}}: not the shape this console takes
    e = err(s1.post("/users/revoke-api-token", {"data": {"userId": su["id"]}}), 400)
    assert "data.userId" in e["detail"]
    assert s1.as_token(token).get("/threats").status == 200
    # ayol377 UserIdBody {data: {id, currentPassword?, twoFaCode?}} -> SuccessResponse
    assert ok(s1.post("/users/revoke-api-token",
                      {"data": {"id": su["id"], "twoFaCode": "123456"}})) == {"success": True}
    err(s1.as_token(token).get("/threats"), 401)

    new = ok(s1.post(f"/service-users/{su['id']}/generate-api-token",
                     {"data": {"expirationDate": future()}}))["token"]
    r = s1.http.call("PUT", "/_admin/sentinelone/revoke-body", {"idField": "userId"},
                     content_type="application/json")
    assert r.status == 200 and r.body == {"idField": "userId"}
    e = err(s1.post("/users/revoke-api-token", {"data": {"id": su["id"]}}), 400)
    assert "data.id" in e["detail"] or "data.userId" in e["detail"]
    assert s1.as_token(new).get("/threats").status == 200
    assert ok(s1.post("/users/revoke-api-token", {"data": {"userId": su["id"]}})) \
        == {"success": True}
    err(s1.as_token(new).get("/threats"), 401)
    assert s1.http.call("PUT", "/_admin/sentinelone/revoke-body", {"idField": "uid"},
                        content_type="application/json").status == 400
    s1.http.post("/_admin/reset")
    assert s1.http.get("/_admin/state").body["sentinelone"]["service_users"] == []
    err(s1.post("/users/revoke-api-token", {"data": {"userId": "1"}}), 400)  # back to `id`


def test_contract_roles_and_users_as_the_sdks_send_and_read_them(s1: S1Client):
    # go-sdk ListRolesParams: name, predefinedRole, accountIds
    viewer = ok(s1.get(f"/rbac/roles?name=Viewer&predefinedRole=true&accountIds={ACCOUNT_ID}"))
    assert [r["name"] for r in viewer] == ["Viewer"]
    assert {"id", "name", "description", "scope", "scopeId", "predefinedRole", "usersInRoles",
            "accountName", "siteName", "creator", "createdAt", "updatedAt"} <= set(viewer[0])
    # go-sdk CreateRoleRequest: {data: {name, description, permissionIds}, filter: {accountIds}}
    role = create_role(s1, "Viewer - Expel", viewer_expel_permissions(s1))
    assert ok(s1.get(f"/rbac/role/{role['id']}?accountIds={ACCOUNT_ID}"))["pages"]
    # go-sdk CreateUserData: email, fullName, scope, scopeRoles [{id, roleId}]
    user = ok(s1.post("/users", {"data": {
        "email": "soc+acme@expel.io", "fullName": "Expel SOC", "scope": "account",
        "scopeRoles": [{"id": ACCOUNT_ID, "roleId": role["id"]}]}}))
    # the SDKs read scopeRoles[].name and .accountName (required in ayol377 UserScopeRole)
    [sr] = user["scopeRoles"]
    assert (sr["id"], sr["roleId"], sr["roleName"]) == (ACCOUNT_ID, role["id"], "Viewer - Expel")
    assert sr["name"] == sr["accountName"] == "Acme Corp"
    found = ok(s1.get(f"/users?email={quote('soc+acme@expel.io')}"))
    assert [u["id"] for u in found] == [user["id"]]
    # go-sdk UpdateUserData: scope is required next to scopeRoles
    moved = ok(s1.put(f"/users/{user['id']}", {"data": {
        "scope": "account", "scopeRoles": [{"id": ACCOUNT_ID, "roleId": role_id(s1, "Viewer")}]}}))
    assert moved["scopeRoles"][0]["roleName"] == "Viewer"
