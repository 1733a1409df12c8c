"""The Wiz emulator over real HTTP: OAuth, GraphQL strictness, objects, webhooks, health."""

from __future__ import annotations

import time
from typing import Any, Callable
from urllib.parse import urlencode

import pytest

from conftest import ORG_ID, Http, Reply
from sandbox.wiz import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

TOKEN = "/wiz/oauth/token"
GRAPHQL = "/wiz/graphql"
DEVICES = "/api/v2/security_devices"
SEVERITIES = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
IR_ANALYST = "Global Incident Response Analyst"


# ---- helpers ---------------------------------------------------------------------------------

def token_reply(http: Http, cid: str, secret: str, **over: str) -> Reply:
    form = {"grant_type": "client_credentials", "client_id": cid,
            "client_secret": secret, "audience": "wiz-api", **over}
    return http.post(TOKEN, urlencode(form), auth=False,
                     content_type="application/x-www-form-urlencoded")


def get_token(http: Http, client_id: str = DEFAULT_CLIENT_ID,
              secret: str = DEFAULT_CLIENT_SECRET) -> str:
    r = token_reply(http, client_id, secret)
    assert r.status == 200, r.body
    return r.body["access_token"]


class Gql:
    """A GraphQL client with one bearer token."""

    def __init__(self, base: str, token: str | None) -> None:
        self.http = Http(base, token)

    def __call__(self, query: str, variables: dict[str, Any] | None = None,
                 operation: str | None = None) -> Reply:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation is not None:
            body["operationName"] = operation
        return self.http.post(GRAPHQL, body, content_type="application/json")

    def ok(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = self(query, variables)
        assert r.status == 200 and "errors" not in r.body, r.body
        return r.body["data"]

    def error(self, query: str, variables: dict[str, Any] | None = None,
              code: str | None = None) -> dict[str, Any]:
        r = self(query, variables)
        assert r.status == 200, r.body
        err = r.errors()[0]
        assert err["message"], err
        if code is not None:
            assert err["extensions"]["code"] == code, r.body
        return err


@pytest.fixture
def wiz(sandbox_url, admin) -> Gql:
    """GraphQL as the seeded admin service account, on a freshly reset sandbox."""
    return Gql(sandbox_url, get_token(admin))


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


CREATE_SA = """mutation CreateServiceAccount($input: CreateServiceAccountInput!) {
  createServiceAccount(input: $input) {
    serviceAccount { id name clientId clientSecret scopes type createdAt lastRotatedAt
                     assignedProjects { id } } } }"""
READ_SA = """query ServiceAccount($id: ID!) {
  serviceAccount(id: $id) { id name clientId clientSecret scopes type lastRotatedAt } }"""
CREATE_USER = """mutation CreateUser($input: CreateUserInput!) {
  createUser(input: $input) { user { id name email effectiveRole { id name }
                                     effectiveAssignedProjects { id } isSuspended } } }"""
CREATE_INTEGRATION = """mutation CreateIntegration($input: CreateIntegrationInput!) {
  createIntegration(input: $input) { integration { id } } }"""
READ_INTEGRATION = """query integration($id: ID!) { integration(id: $id) {
  id name type isAccessibleToAllProjects project { id } usedByRules { id }
  paramsType: params { type: __typename }
  params { ... on WebhookIntegrationParams { url onPremConfig { isOnPrem } headers { key value }
    authorization { ... on WebhookIntegrationBasicAuthorization { username password }
                    ... on WebhookIntegrationBearerAuthorization { token } } } } } }"""
CREATE_RULE = """mutation CreateAutomationRule($input: CreateAutomationRuleInput!) {
  createAutomationRule(input: $input) { automationRule { id } } }"""
READ_RULE = """query automationRule($id: ID!) { automationRule(id: $id) {
  id name description triggerSource triggerType filters enabled project { id }
  actions { id actionTemplateType integration { id }
            actionTemplateParams { ... on WebhookActionTemplateParams { body } } } } }"""


def create_sa(wiz: Gql, name: str = "Expel", scopes: list[str] | None = None,
              **over: Any) -> dict[str, Any]:
    data = wiz.ok(CREATE_SA, {"input": {"name": name, "type": "THIRD_PARTY",
                                        "scopes": scopes or ["read:issues"], **over}})
    return data["createServiceAccount"]["serviceAccount"]


def webhook_input(url: str, username: str = "user", password: str = "pass",
                  name: str = "Expel Webhook") -> dict[str, Any]:
    return {"name": name, "type": "WEBHOOK", "isAccessibleToAllProjects": True,
            "params": {"webhook": {"url": url,
                                   "authorization": {"username": username, "password": password},
                                   "headers": [], "isOnPrem": False}}}


def create_integration(wiz: Gql, url: str = "https://hooks.example/x", **kw: Any) -> str:
    data = wiz.ok(CREATE_INTEGRATION, {"input": webhook_input(url, **kw)})
    return data["createIntegration"]["integration"]["id"]


# Bodies as Wiz's issue body reads in the public example (AxtonGrams
# examples/resources/wiz_automation_rule_aws_sns/resource.tf), re-typed and shortened; the
# detection body is [G].
ISSUE_BODY = ('{"trigger": {"source": "{{triggerSource}}", "type": "{{triggerType}}", '
              '"ruleId": "{{ruleId}}", "ruleName": "{{ruleName}}"}, '
              '"issue": {"id": "{{issue.id}}", "status": "{{issue.status}}", '
              '"severity": "{{issue.severity}}", "created": "{{issue.createdAt}}", '
              '"projects": "{{#issue.projects}}{{name}}, {{/issue.projects}}"}, '
              '"resource": {"id": "{{issue.entitySnapshot.providerId}}", '
              '"name": "{{issue.entitySnapshot.name}}"}, '
              '"control": {"id": "{{issue.control.id}}", "name": "{{issue.control.name}}"}}')
DETECTION_BODY = ('{"trigger": {"source": "{{triggerSource}}", "ruleName": "{{ruleName}}"}, '
                  '"detection": {"id": "{{detection.id}}", "title": "{{detection.title}}", '
                  '"severity": "{{detection.severity}}"}}')


def rule_input(integration_id: str, source: str = "ISSUES",
               severities: list[str] | None = None, enabled: bool = True,
               body: str | None = None, name: str = "Expel Webhook Rule") -> dict[str, Any]:
    if body is None:
        body = DETECTION_BODY if source == "DETECTIONS" else ISSUE_BODY
    hook: dict[str, Any] = {"headers": [], "body": body}
    return {"name": name, "description": "send to Expel", "enabled": enabled,
            "triggerSource": source, "triggerType": ["CREATED"],
            "filters": {"severity": severities or list(SEVERITIES)},
            "actions": [{"integrationId": integration_id, "actionTemplateType": "WEBHOOK",
                         "actionTemplateParams": {"webhook": hook}}]}


def create_rule(wiz: Gql, integration_id: str, **kw: Any) -> str:
    data = wiz.ok(CREATE_RULE, {"input": rule_input(integration_id, **kw)})
    return data["createAutomationRule"]["automationRule"]["id"]


def wiz_device(api: Http, name: str = "Acme Wiz", product: str = "cloud",
               client_id: str = "nobody", secret: str = "nothing",
               endpoint: str | None = None) -> dict[str, Any]:
    spec = {"api_endpoint_url": endpoint or f"{api.base}{GRAPHQL}", "client_id": client_id,
            "client_secret": secret, "product": product}
    r = api.post(DEVICES, {"data": {
        "type": "security_devices",
        "attributes": {"name": name, "location": "cloud", "device_type": "CLOUD",
                       "plugin_slug": "wiz", "device_spec": spec},
        "relationships": {"organization": {"data": {"type": "organizations", "id": ORG_ID}}}}})
    assert r.status == 201, r.body
    return r.body["data"]


def settled(api: Http, device_id: str) -> dict[str, Any]:
    return wait_for(lambda: api.get(f"{DEVICES}/{device_id}").body["data"]["attributes"],
                    lambda a: not a["is_verifying_status"])


def finished_deliveries(admin: Http, n: int) -> list[dict[str, Any]]:
    return wait_for(lambda: admin.get("/_admin/wiz/deliveries").body["deliveries"],
                    lambda ds: len(ds) >= n and all(d["status"] != "pending" for d in ds))


# ---- OAuth -----------------------------------------------------------------------------------

def test_token_endpoint_issues_bearer_tokens(admin: Http):
    r = token_reply(admin, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert r.status == 200, r.body
    assert r.body["token_type"] == "Bearer" and r.body["expires_in"] == 86400
    assert r.body["scope"] == "admin:all"
    assert r.body["access_token"].count(".") == 2  # JWT-shaped


@pytest.mark.parametrize("over,status,error", [
    ({"client_secret": "wrong"}, 401, "access_denied"),
    ({"client_id": "unknown-client"}, 401, "access_denied"),
    ({"audience": "beyond-api"}, 400, "invalid_request"),
    ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ({"client_secret": ""}, 400, "invalid_request"),
])
def test_token_endpoint_refuses_bad_requests(admin: Http, over, status, error):
    r = token_reply(admin, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, **over)
    assert r.status == status, r.body
    assert r.body["error"] == error and r.body["error_description"]


def test_token_endpoint_wants_a_form(admin: Http):
    r = admin.post(TOKEN, {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
                           "client_secret": DEFAULT_CLIENT_SECRET, "audience": "wiz-api"},
                   auth=False, content_type="application/json")
    assert r.status == 400 and r.body["error"] == "invalid_request"


def test_missing_or_invalid_token_is_unauthenticated_with_http_200(sandbox_url, admin: Http):
    for token in (None, "not-a-token"):
        r = Gql(sandbox_url, token)("{ userRoles { totalCount } }")
        assert r.status == 200
        assert r.errors()[0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert r.body["data"] is None
    r = Gql(sandbox_url, None).http.post(GRAPHQL, {"query": "{ __typename }"},
                                         headers={"Authorization": "Basic eDp5"},
                                         content_type="application/json")
    assert r.errors()[0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The HTTP status is a setting, so clients can be tried against a 401 as well.
    assert admin.call("PUT", "/_admin/wiz/settings", {"unauthenticated_http_status": 401},
                      content_type="application/json").status == 200
    r = Gql(sandbox_url, "not-a-token")("{ __typename }")
    assert r.status == 401 and r.errors()[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_expire(sandbox_url, admin: Http):
    r = admin.call("PUT", "/_admin/wiz/settings", {"token_ttl_seconds": 1},
                   content_type="application/json")
    assert r.status == 200 and r.body["token_ttl_seconds"] == 1
    reply = token_reply(admin, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert reply.body["expires_in"] == 1
    gql = Gql(sandbox_url, reply.body["access_token"])
    assert gql.ok("{ __typename }") == {"__typename": "Query"}
    time.sleep(1.2)
    err = gql.error("{ __typename }", code="UNAUTHENTICATED")
    assert "expired" in err["message"]
    # Expiring every token at once (for clients' refresh logic).
    assert admin.call("PUT", "/_admin/wiz/settings", {"token_ttl_seconds": 3600},
                      content_type="application/json").status == 200
    fresh = Gql(sandbox_url, get_token(admin))
    assert fresh.ok("{ __typename }")
    assert admin.post("/_admin/wiz/expire-tokens").body["expired"] >= 1
    fresh.error("{ __typename }", code="UNAUTHENTICATED")
    bad = admin.call("PUT", "/_admin/wiz/settings", {"token_ttl_seconds": 0},
                     content_type="application/json")
    assert bad.status == 400


# ---- GraphQL protocol ------------------------------------------------------------------------

def test_malformed_document_is_a_parse_error(wiz: Gql):
    r = wiz("{ serviceAccounts(first: 1) { nodes { id } ")
    assert r.status == 200 and "data" not in r.body
    err = r.errors()[0]
    assert err["extensions"]["code"] == "GRAPHQL_PARSE_FAILED" and err["locations"]


def test_unknown_field_and_wrong_argument_are_validation_errors(wiz: Gql):
    err = wiz.error("{ serviceAccounts { nodes { id secretSauce } } }",
                    code="GRAPHQL_VALIDATION_FAILED")
    assert "secretSauce" in err["message"]
    wiz.error('{ serviceAccounts(frist: 2) { totalCount } }', code="GRAPHQL_VALIDATION_FAILED")
    wiz.error('mutation { createAutomationRule(input: {name: "x", triggerSource: ISSUES, '
              'triggerType: [CREATED, EXPLODED], actions: []}) { automationRule { id } } }',
              code="GRAPHQL_VALIDATION_FAILED")


def test_variables_are_coerced_and_checked(wiz: Gql):
    sa = create_sa(wiz, "by-variables")
    assert wiz.ok(READ_SA, {"id": sa["id"]})["serviceAccount"]["name"] == "by-variables"
    err = wiz.error(READ_SA, {}, code="BAD_USER_INPUT")
    assert "$id" in err["message"]
    err = wiz.error(CREATE_SA, {"input": {"name": "x", "type": "NOT_A_TYPE", "scopes": ["a:b"]}},
                    code="BAD_USER_INPUT")
    assert "NOT_A_TYPE" in err["message"]
    err = wiz.error(CREATE_SA, {"input": {"name": "x", "scopes": ["a:b"], "colour": "red"}},
                    code="BAD_USER_INPUT")
    assert "colour" in err["message"]


def test_operation_name_selects_the_operation(wiz: Gql):
    doc = "query A { userRoles(first: 1) { totalCount } } query B { projects { totalCount } }"
    r = wiz(doc, operation="B")
    assert r.body == {"data": {"projects": {"totalCount": 2}}}
    assert wiz(doc).errors()[0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_http_level_errors_use_the_errors_envelope(sandbox_url, wiz: Gql):
    r = wiz.http.post(GRAPHQL, "not json", content_type="application/json")
    assert r.status == 400 and r.errors()[0]["extensions"]["code"] == "BAD_REQUEST"
    r = wiz.http.post(GRAPHQL, {"query": "{ __typename }"}, content_type="text/plain")
    assert r.status == 400
    r = wiz.http.get(GRAPHQL)
    assert r.status == 405 and r.errors()
    r = wiz.http.post("/wiz/nowhere", {})
    assert r.status == 404 and r.errors()[0]["extensions"]["code"] == "NOT_FOUND"


def test_injected_faults_use_each_endpoints_envelope(sandbox_url, admin: Http, wiz: Gql):
    assert admin.post("/_admin/faults", {"route": "POST /wiz/graphql", "nth": 1,
                                         "status": 500}).status == 201
    r = wiz("{ __typename }")
    assert r.status == 500 and r.errors()[0]["extensions"]["code"] == "INTERNAL"
    assert admin.post("/_admin/faults", {"route": "POST /wiz/oauth/token", "nth": 1,
                                         "status": 429, "retry_after": 2}).status == 201
    r = token_reply(admin, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert r.status == 429 and r.headers["Retry-After"] == "2" and r.body["error"]
    calls = admin.get("/_admin/calls").body["routes"]
    assert calls["POST /wiz/graphql"] >= 1 and calls["POST /wiz/oauth/token"] >= 1


def test_faults_pick_one_operation_and_can_act_then_fail(admin: Http, wiz: Gql):
    """"Act then fail": the mutation takes effect, the answer is a 503 or no answer at all."""
    f = admin.post("/_admin/faults", {"route": "POST /wiz/graphql",
                                      "operation": "createServiceAccount",
                                      "status": 503, "phase": "after"})
    assert f.status == 201, f.body
    assert wiz.ok("{ __typename }")  # another operation: neither hit nor counted
    r = wiz(CREATE_SA, {"input": {"name": "Lost answer", "scopes": ["read:issues"]}})
    assert r.status == 503 and r.errors()[0]["extensions"]["code"] == "INTERNAL"
    assert "carried out" in r.errors()[0]["message"]
    names = [sa["name"] for sa in admin.get("/_admin/state").body["wiz"]["service_accounts"]]
    assert names == ["Lost answer"]
    fault = admin.get("/_admin/faults").body["faults"][0]
    assert fault["matched"] == 1 and fault["fired"] == 1 and fault["operation"] == \
        "createServiceAccount"
    # The operationName matches as well as the root field.
    admin.delete("/_admin/faults")
    assert admin.post("/_admin/faults", {"route": "POST /wiz/graphql",
                                         "operation": "CreateIntegration", "reset": True,
                                         "phase": "after"}).status == 201
    since = admin.get("/_admin/calls").body["total"]
    with pytest.raises((ConnectionError, OSError)):
        wiz(CREATE_INTEGRATION, {"input": webhook_input("https://hooks.example/x")},
            operation="CreateIntegration")
    assert len(admin.get("/_admin/state").body["wiz"]["integrations"]) == 1
    log = admin.get(f"/_admin/calls?since={since}").body["log"]
    assert [e["status"] for e in log] == [0], log
    # Before the handler: nothing is made.
    admin.delete("/_admin/faults")
    assert admin.post("/_admin/faults", {"route": "POST /wiz/graphql",
                                         "operation": "createServiceAccount",
                                         "reset": True}).status == 201
    with pytest.raises((ConnectionError, OSError)):
        wiz(CREATE_SA, {"input": {"name": "Never made", "scopes": ["read:issues"]}})
    assert len(admin.get("/_admin/state").body["wiz"]["service_accounts"]) == 1


@pytest.mark.parametrize("spec,needle", [
    ({"route": "POST /wiz/graphql", "status": 503, "reset": True}, "not both"),
    ({"route": "POST /wiz/graphql", "reset": "yes"}, "reset"),
    ({"route": "POST /wiz/graphql", "status": 503, "operation": ""}, "operation"),
    ({"route": "POST /wiz/graphql"}, "status, reset or a latency_ms"),
])
def test_fault_spec_is_checked(admin: Http, spec, needle):
    r = admin.post("/_admin/faults", spec)
    assert r.status == 400 and needle in r.body["error"], r.body


def test_refusing_service_account_tokens(api: Http, admin: Http, wiz: Gql):
    sa = create_sa(wiz, "Expel", ["read:issues"])
    r = admin.call("PUT", "/_admin/wiz/settings", {"refuse_service_account_tokens": True},
                   content_type="application/json")
    assert r.status == 200 and r.body["refuse_service_account_tokens"] is True
    refused = token_reply(admin, sa["clientId"], sa["clientSecret"])
    assert refused.status == 401 and refused.body["error"] == "access_denied"
    assert get_token(admin)  # the seeded admin still signs in
    device = wiz_device(api, "Wiz refused", client_id=sa["clientId"], secret=sa["clientSecret"])
    attrs = settled(api, device["id"])
    assert attrs["status"] == "unhealthy"
    assert "not allowed" in attrs["status_details"]["checks"][-1]["detail"]
    assert admin.call("PUT", "/_admin/wiz/settings", {"refuse_service_account_tokens": 1},
                      content_type="application/json").status == 400
    admin.call("PUT", "/_admin/wiz/settings", {"refuse_service_account_tokens": False},
               content_type="application/json")
    assert token_reply(admin, sa["clientId"], sa["clientSecret"]).status == 200


def test_enums_are_introspectable(wiz: Gql):
    def values(name: str) -> list[str]:
        data = wiz.ok('query($n: String!) { __type(name: $n) { kind enumValues { name } } }',
                      {"n": name})
        assert data["__type"]["kind"] == "ENUM"
        return [v["name"] for v in data["__type"]["enumValues"]]
    assert values("AutomationRuleTriggerType") == ["CREATED", "UPDATED", "RESOLVED", "REOPENED"]
    assert {"ISSUES", "CLOUD_EVENTS", "DETECTIONS"} <= set(values("AutomationRuleTriggerSource"))
    assert values("Severity") == SEVERITIES
    assert "THIRD_PARTY" in values("ServiceAccountType")
    assert "WEBHOOK" in values("IntegrationType")
    data = wiz.ok('{ __schema { mutationType { fields { name } } } }')
    names = {f["name"] for f in data["__schema"]["mutationType"]["fields"]}
    assert {"createServiceAccount", "rotateServiceAccountSecret", "createUser",
            "createIntegration", "createAutomationRule", "addAllowedLoginDomain"} <= names


# ---- service accounts ------------------------------------------------------------------------

def test_service_account_lifecycle_and_its_own_tokens(sandbox_url, admin: Http, wiz: Gql):
    sa = create_sa(wiz, "Expel Workbench", ["read:issues", "read:detections"],
                   assignedProjectIds=[])
    assert sa["clientId"] and len(sa["clientSecret"]) >= 32 and sa["type"] == "THIRD_PARTY"
    assert sa["lastRotatedAt"] is None and sa["assignedProjects"] == []
    read = wiz.ok(READ_SA, {"id": sa["id"]})["serviceAccount"]
    assert read["clientSecret"] is None and read["scopes"] == ["read:issues", "read:detections"]
    # Its credentials get tokens limited to its scopes.
    reply = token_reply(admin, sa["clientId"], sa["clientSecret"])
    assert reply.status == 200 and reply.body["scope"] == "read:issues read:detections"
    own = Gql(sandbox_url, reply.body["access_token"])
    assert own.ok("{ issues(first: 1) { totalCount } }") == {"issues": {"totalCount": 0}}
    err = own.error("{ serviceAccounts { totalCount } }", code="FORBIDDEN")
    assert "read:service_accounts" in err["message"]
    # Listing, filters.
    listed = wiz.ok('{ serviceAccounts(filterBy: {search: "expel"}) { totalCount nodes { id } } }')
    assert listed["serviceAccounts"]["nodes"] == [{"id": sa["id"]}]
    # Delete: gone, and its tokens with it.
    wiz.ok("mutation($i: DeleteServiceAccountInput!) { deleteServiceAccount(input: $i) { _stub } }",
           {"i": {"id": sa["id"]}})
    assert wiz.error(READ_SA, {"id": sa["id"]}, code="NOT_FOUND")
    assert wiz(READ_SA, {"id": sa["id"]}).body["data"] == {"serviceAccount": None}
    own.error("{ issues { totalCount } }", code="UNAUTHENTICATED")
    assert token_reply(admin, sa["clientId"], sa["clientSecret"]).status == 401
    wiz.error("mutation { deleteServiceAccount(input: {id: \"nope\"}) { _stub } }",
              code="NOT_FOUND")


def test_rotation_invalidates_the_old_secret(admin: Http, wiz: Gql):
    sa = create_sa(wiz)
    rotated = wiz.ok("""mutation($id: String!) { rotateServiceAccountSecret(ID: $id) {
        serviceAccount { clientId clientSecret lastRotatedAt } } }""", {"id": sa["id"]})
    new = rotated["rotateServiceAccountSecret"]["serviceAccount"]
    assert new["clientId"] == sa["clientId"] and new["clientSecret"] != sa["clientSecret"]
    assert new["lastRotatedAt"]
    assert token_reply(admin, sa["clientId"], sa["clientSecret"]).status == 401
    assert token_reply(admin, sa["clientId"], new["clientSecret"]).status == 200
    assert wiz.ok(READ_SA, {"id": sa["id"]})["serviceAccount"]["lastRotatedAt"] == \
        new["lastRotatedAt"]


@pytest.mark.parametrize("over,needle", [
    ({"scopes": []}, "scope"),
    ({"scopes": ["read issues"]}, "read issues"),
    ({"scopes": ["read:issues", "read:issues"]}, "duplicates"),
    ({"name": "  "}, "name"),
    ({"assignedProjectIds": ["no-such-project"]}, "no-such-project"),
])
def test_service_account_input_is_checked(wiz: Gql, over, needle):
    data = {"name": "x", "type": "THIRD_PARTY", "scopes": ["read:issues"], **over}
    err = wiz.error(CREATE_SA, {"input": data}, code="BAD_USER_INPUT")
    assert needle in err["message"]


def test_cursor_pagination(wiz: Gql):
    ids = [create_sa(wiz, f"page-{i}")["id"] for i in range(5)]
    query = """query($after: String) { serviceAccounts(first: 2, after: $after,
                 filterBy: {search: "page-"}) {
                 totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }"""
    seen, after, pages = [], None, 0
    while True:
        conn = wiz.ok(query, {"after": after})["serviceAccounts"]
        assert conn["totalCount"] == 5
        seen += [e["node"]["id"] for e in conn["edges"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        assert after == conn["edges"][-1]["cursor"]
    assert seen == ids and pages == 3
    wiz.error('{ serviceAccounts(after: "garbage!") { totalCount } }', code="BAD_USER_INPUT")
    wiz.error("{ serviceAccounts(first: 501) { totalCount } }", code="BAD_USER_INPUT")
    empty = wiz.ok("{ integrations { totalCount pageInfo { hasNextPage endCursor } nodes { id } } }")
    assert empty["integrations"] == {"totalCount": 0, "nodes": [],
                                     "pageInfo": {"hasNextPage": False, "endCursor": None}}


# ---- users, roles, login domains -------------------------------------------------------------

def test_user_roles_and_users(wiz: Gql):
    roles = wiz.ok("{ userRoles(first: 100) { nodes { id name isProjectScoped scopes } } }")
    by_name = {r["name"]: r for r in roles["userRoles"]["nodes"]}
    assert {"GlobalAdmin", "GlobalReader", IR_ANALYST} <= set(by_name)
    analyst = by_name[IR_ANALYST]["id"]
    expel = {"name": "Expel Analyst", "email": "soc+acme_corp@expel.io", "role": analyst}

    # The guide's order: expel.io must be an allowed login domain before the invite.
    settings = wiz.ok("{ loginSettings { domainVerificationCode allowedDomains } }")
    assert settings["loginSettings"]["domainVerificationCode"]
    assert "expel.io" not in settings["loginSettings"]["allowedDomains"]
    err = wiz.error(CREATE_USER, {"input": expel}, code="BAD_USER_INPUT")
    assert "expel.io" in err["message"]
    added = wiz.ok('mutation { addAllowedLoginDomain(input: {domain: "Expel.io"}) '
                   '{ loginSettings { allowedDomains } } }')
    assert "expel.io" in added["addAllowedLoginDomain"]["loginSettings"]["allowedDomains"]
    wiz.error('mutation { addAllowedLoginDomain(input: {domain: "expel.io"}) '
              '{ loginSettings { allowedDomains } } }', code="BAD_USER_INPUT")
    wiz.error('mutation { addAllowedLoginDomain(input: {domain: "not a domain"}) '
              '{ loginSettings { allowedDomains } } }', code="BAD_USER_INPUT")

    user = wiz.ok(CREATE_USER, {"input": expel})["createUser"]["user"]
    assert user["effectiveRole"] == {"id": analyst, "name": IR_ANALYST}
    assert user["isSuspended"] is False and user["effectiveAssignedProjects"] == []
    wiz.error(CREATE_USER, {"input": dict(expel, email="SOC+acme_corp@expel.io")},
              code="BAD_USER_INPUT")  # same address, other case
    found = wiz.ok('query($s: String) { users(filterBy: {search: $s}) { totalCount nodes { id } } }',
                   {"s": "soc+ACME_corp@expel"})
    assert found["users"] == {"totalCount": 1, "nodes": [{"id": user["id"]}]}
    legacy = wiz.ok("{ users(filterBy: {source: LEGACY}) { totalCount } }")
    assert legacy["users"]["totalCount"] == 0

    # Role checks: project-scoped roles need projects, global roles refuse them.
    project = wiz.ok("{ projects { nodes { id } } }")["projects"]["nodes"][0]["id"]
    wiz.error(CREATE_USER, {"input": {"name": "p", "email": "p@expel.io",
                                      "role": "PROJECT_READER"}}, code="BAD_USER_INPUT")
    wiz.error(CREATE_USER, {"input": dict(expel, email="g@expel.io",
                                          assignedProjectIds=[project])}, code="BAD_USER_INPUT")
    wiz.error(CREATE_USER, {"input": dict(expel, email="r@expel.io", role="NO_SUCH_ROLE")},
              code="BAD_USER_INPUT")

    updated = wiz.ok("""mutation($i: UpdateUserInput!) { updateUser(input: $i) {
        user { id name effectiveRole { id } effectiveAssignedProjects { id } } } }""",
                     {"i": {"id": user["id"], "patch": {"role": "PROJECT_READER",
                                                        "assignedProjectIds": [project]}}})
    assert updated["updateUser"]["user"]["effectiveRole"] == {"id": "PROJECT_READER"}
    assert updated["updateUser"]["user"]["effectiveAssignedProjects"] == [{"id": project}]
    suspended = wiz.ok("""mutation($i: UpdateUserInput!) { updateUser(input: $i) {
        user { isSuspended manualOverrideRole { id } identityProviderRole { id } } } }""",
                       {"i": {"id": user["id"], "patch": {"isSuspended": True}}})
    assert suspended["updateUser"]["user"] == {"isSuspended": True,
                                               "manualOverrideRole": {"id": "PROJECT_READER"},
                                               "identityProviderRole": None}
    read = wiz.ok('query Users($id: ID!) { user(id: $id) { id name email '
                  'effectiveAssignedProjects { id } effectiveRole { id } } }', {"id": user["id"]})
    assert read["user"]["email"] == "soc+acme_corp@expel.io"

    wiz.ok("mutation($i: DeleteUserInput!) { deleteUser(input: $i) { _stub } }",
           {"i": {"id": user["id"]}})
    wiz.error('query($id: ID!) { user(id: $id) { id } }', {"id": user["id"]}, code="NOT_FOUND")
    wiz.ok('mutation { removeAllowedLoginDomain(input: {domain: "expel.io"}) '
           '{ loginSettings { allowedDomains } } }')
    wiz.error('mutation { removeAllowedLoginDomain(input: {domain: "expel.io"}) '
              '{ loginSettings { allowedDomains } } }', code="NOT_FOUND")


# ---- integrations ----------------------------------------------------------------------------

def test_webhook_integration_lifecycle(wiz: Gql):
    integ_id = create_integration(wiz, "https://hooks.example/in", username="u1", password="p1")
    read = wiz.ok(READ_INTEGRATION, {"id": integ_id})["integration"]
    assert read["type"] == "WEBHOOK" and read["isAccessibleToAllProjects"] is True
    assert read["paramsType"] == {"type": "WebhookIntegrationParams"}
    assert read["params"]["url"] == "https://hooks.example/in"
    assert read["params"]["authorization"] == {"username": "u1", "password": None}
    assert read["usedByRules"] == [] and read["project"] is None

    wiz.ok("""mutation($i: UpdateIntegrationInput!) { updateIntegration(input: $i) {
        integration { id } } }""",
           {"i": {"id": integ_id, "patch": {"name": "renamed", "params": {"webhook": {
               "url": "https://hooks.example/new",
               "headers": [{"key": "X-Env", "value": "sandbox"}]}}}}})
    read = wiz.ok(READ_INTEGRATION, {"id": integ_id})["integration"]
    assert read["name"] == "renamed" and read["params"]["url"] == "https://hooks.example/new"
    assert read["params"]["headers"] == [{"key": "X-Env", "value": "sandbox"}]
    assert read["params"]["authorization"]["username"] == "u1"  # untouched by the patch

    listed = wiz.ok('{ integrations(filterBy: {type: [WEBHOOK], search: "RENAMED"}) '
                    '{ totalCount nodes { id name } } }')
    assert listed["integrations"]["nodes"] == [{"id": integ_id, "name": "renamed"}]

    rule_id = create_rule(wiz, integ_id)
    assert wiz.ok(READ_INTEGRATION, {"id": integ_id})["integration"]["usedByRules"] == \
        [{"id": rule_id}]
    delete = "mutation($i: DeleteIntegrationInput!) { deleteIntegration(input: $i) { _stub } }"
    err = wiz.error(delete, {"i": {"id": integ_id}}, code="BAD_USER_INPUT")
    assert rule_id in err["message"]
    wiz.ok("mutation($i: DeleteAutomationRuleInput!) { deleteAutomationRule(input: $i) "
           "{ _stub } }", {"i": {"id": rule_id}})
    wiz.ok(delete, {"i": {"id": integ_id}})
    wiz.error(READ_INTEGRATION, {"id": integ_id}, code="NOT_FOUND")
    wiz.error(delete, {"i": {"id": integ_id}}, code="NOT_FOUND")


@pytest.mark.parametrize("change,needle", [
    (lambda i: i.update(type="SLACK"), "WEBHOOK"),
    (lambda i: i["params"]["webhook"].update(url="ftp://x"), "url"),
    (lambda i: i["params"]["webhook"]["authorization"].update(token="t"), "not both"),
    (lambda i: i["params"]["webhook"]["authorization"].pop("password"), "password"),
    (lambda i: i.update(isAccessibleToAllProjects=False), "projectId"),
    (lambda i: i.update(params={}), "params.webhook"),
])
def test_integration_input_is_checked(wiz: Gql, change, needle):
    data = webhook_input("https://hooks.example/x")
    change(data)
    err = wiz.error(CREATE_INTEGRATION, {"input": data}, code="BAD_USER_INPUT")
    assert needle in err["message"]


def test_bearer_integration_and_project_scope(wiz: Gql):
    project = wiz.ok("{ projects { nodes { id } } }")["projects"]["nodes"][1]["id"]
    data = webhook_input("https://hooks.example/b")
    data.update(isAccessibleToAllProjects=False, projectId=project)
    data["params"]["webhook"]["authorization"] = {"token": "secret-token"}
    integ_id = wiz.ok(CREATE_INTEGRATION, {"input": data})["createIntegration"]["integration"]["id"]
    read = wiz.ok(READ_INTEGRATION, {"id": integ_id})["integration"]
    assert read["project"] == {"id": project} and read["params"]["authorization"] == {"token": None}


# ---- automation rules ------------------------------------------------------------------------

def test_automation_rule_lifecycle(wiz: Gql):
    integ_id = create_integration(wiz)
    rule_id = create_rule(wiz, integ_id, severities=["HIGH", "CRITICAL"], body='{"id": "{{issue.id}}"}')
    read = wiz.ok(READ_RULE, {"id": rule_id})["automationRule"]
    assert read["triggerSource"] == "ISSUES" and read["triggerType"] == ["CREATED"]
    assert read["filters"] == {"severity": ["HIGH", "CRITICAL"]} and read["enabled"] is True
    assert read["actions"][0]["actionTemplateType"] == "WEBHOOK"
    assert read["actions"][0]["integration"] == {"id": integ_id}
    assert read["actions"][0]["actionTemplateParams"] == {"body": '{"id": "{{issue.id}}"}'}

    update = """mutation updateAutomationRule($input: UpdateAutomationRuleInput!) {
        updateAutomationRule(input: $input) { automationRule { id enabled filters name } } }"""
    out = wiz.ok(update, {"input": {"id": rule_id, "patch": {"enabled": False,
                                                             "filters": {"severity": ["LOW"]}}}})
    assert out["updateAutomationRule"]["automationRule"] == {
        "id": rule_id, "enabled": False, "filters": {"severity": ["LOW"]},
        "name": "Expel Webhook Rule"}
    wiz.error(update, {"input": {"id": rule_id, "patch": {"enabled": None}}}, code="BAD_USER_INPUT")

    for i in range(3):
        create_rule(wiz, integ_id, name=f"extra {i}", source="DETECTIONS")
    page = wiz.ok("""{ automationRules(first: 2, filterBy: {triggerSource: [DETECTIONS]}) {
        totalCount pageInfo { hasNextPage } nodes { name } } }""")["automationRules"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"] is True
    assert [n["name"] for n in page["nodes"]] == ["extra 0", "extra 1"]
    disabled = wiz.ok("{ automationRules(filterBy: {enabled: false}) { nodes { id } } }")
    assert disabled["automationRules"]["nodes"] == [{"id": rule_id}]

    delete = "mutation($i: DeleteAutomationRuleInput!) { deleteAutomationRule(input: $i) { _stub } }"
    assert wiz.ok(delete, {"i": {"id": rule_id}}) == {"deleteAutomationRule": {"_stub": None}}
    wiz.error(READ_RULE, {"id": rule_id}, code="NOT_FOUND")
    wiz.error(delete, {"i": {"id": rule_id}}, code="NOT_FOUND")


@pytest.mark.parametrize("change,needle", [
    (lambda r: r.update(filters={"severity": ["SEVERE"]}), "severity"),
    (lambda r: r.update(filters={"severity": []}), "severity"),
    (lambda r: r.update(filters={"colour": "red"}), "colour"),
    (lambda r: r.update(filters='{"severity": ["HIGH"]}'), "JSON object"),
    (lambda r: r.update(triggerSource="DETECTIONS", triggerType=["CREATED", "UPDATED"]),
     "DETECTIONS"),
    (lambda r: r.update(triggerType=[]), "triggerType"),
    (lambda r: r.update(actions=[]), "action"),
    (lambda r: r["actions"][0].update(integrationId="missing"), "missing"),
    (lambda r: r["actions"][0].update(actionTemplateType="SLACK"), "WEBHOOK"),
    (lambda r: r["actions"][0].update(actionTemplateParams={}), "webhook"),
    (lambda r: r["actions"][0]["actionTemplateParams"]["webhook"].update(body=" "), "body"),
])
def test_automation_rule_input_is_checked(wiz: Gql, change, needle):
    data = rule_input(create_integration(wiz))
    change(data)
    err = wiz.error(CREATE_RULE, {"input": data}, code="BAD_USER_INPUT")
    assert needle in err["message"]


# ---- issues and detections -------------------------------------------------------------------

def test_issues_and_detections_are_read_only_connections(admin: Http, wiz: Gql):
    for sev in ("LOW", "HIGH", "HIGH"):
        r = admin.post("/_admin/wiz/issues", {"severity": sev, "title": f"{sev} thing",
                                              "resource": {"name": "i-0abc", "type": "VM"}})
        assert r.status == 201 and r.body["deliveries"] == []
    assert admin.post("/_admin/wiz/detections", {"severity": "MEDIUM",
                                                 "title": "Crypto miner"}).status == 201
    assert admin.post("/_admin/wiz/issues", {"severity": "SEVERE", "title": "x"}).status == 400
    assert admin.post("/_admin/wiz/issues", {"severity": "LOW"}).status == 400
    data = wiz.ok("""{ issues(first: 1, filterBy: {severity: [HIGH]}) {
        totalCount pageInfo { hasNextPage } nodes { id title severity status type
        entitySnapshot { name type } sourceRule { name } } }
        detections { totalCount nodes { title severity } } }""")
    assert data["issues"]["totalCount"] == 2 and data["issues"]["pageInfo"]["hasNextPage"]
    issue = data["issues"]["nodes"][0]
    assert issue["severity"] == "HIGH" and issue["status"] == "OPEN"
    assert issue["entitySnapshot"] == {"name": "i-0abc", "type": "VM"}
    assert data["detections"] == {"totalCount": 1,
                                  "nodes": [{"title": "Crypto miner", "severity": "MEDIUM"}]}
    wiz.error('mutation { createIssue(input: {}) { id } }', code="GRAPHQL_VALIDATION_FAILED")


# ---- Workbench device webhook credentials and the webhook -> alert flow ----------------------

def test_wiz_device_gives_back_webhook_credentials(api: Http):
    device = wiz_device(api)
    attrs = device["attributes"]
    assert attrs["webhook_url"] == f"{api.base}/api/v2/webhooks/wiz/{device['id']}"
    assert attrs["webhook_username"] and len(attrs["webhook_password"]) >= 20
    patched = api.patch(f"{DEVICES}/{device['id']}", {"data": {
        "type": "security_devices", "id": device["id"], "attributes": {"name": "Renamed"}}})
    assert patched.status == 200
    for key in ("webhook_url", "webhook_username", "webhook_password"):
        assert patched.body["data"]["attributes"][key] == attrs[key]
    refused = api.patch(f"{DEVICES}/{device['id']}", {"data": {
        "type": "security_devices", "attributes": {"webhook_password": "mine"}}})
    assert refused.status == 422
    assert refused.errors()[0]["source"]["pointer"] == "/data/attributes/webhook_password"
    # The webhook wants the device's basic auth (no Workbench API key).
    hook = Http(api.base)
    r = hook.post(attrs["webhook_url"], {"x": 1}, content_type="application/json")
    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    r = hook.post(f"{api.base}/api/v2/webhooks/wiz/no-such-device", {"x": 1},
                  content_type="application/json")
    assert r.status == 404


def test_issue_created_delivers_webhook_to_workbench(api: Http, admin: Http, wiz: Gql):
    attrs = wiz_device(api)["attributes"]
    integ_id = create_integration(wiz, attrs["webhook_url"], username=attrs["webhook_username"],
                                  password=attrs["webhook_password"])
    rule_id = create_rule(wiz, integ_id, severities=["HIGH", "CRITICAL"])
    create_rule(wiz, integ_id, severities=["HIGH"], enabled=False, name="disabled")
    create_rule(wiz, integ_id, source="DETECTIONS", name="defend only")

    r = admin.post("/_admin/wiz/issues", {"severity": "HIGH", "title": "Public bucket with secrets"})
    assert r.status == 201 and [d["rule_id"] for d in r.body["deliveries"]] == [rule_id]
    issue_id = r.body["issue"]["id"]
    (delivery,) = finished_deliveries(admin, 1)
    assert delivery["status"] == "delivered" and delivery["status_code"] == 201, delivery
    assert delivery["url"] == attrs["webhook_url"] and delivery["subject_id"] == issue_id

    alerts = admin.get("/_admin/workbench/alerts").body["alerts"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["name"] == "Wiz Cloud: Public bucket with secrets"
    assert alert["severity"] == "HIGH" and alert["source_id"] == issue_id
    assert alert["payload"]["trigger"] == {"source": "ISSUES", "type": "Created",
                                           "ruleId": rule_id, "ruleName": "Expel Webhook Rule"}
    assert alert["payload"]["issue"]["id"] == issue_id

    # Severity outside the filter, disabled rules, other trigger sources: no delivery.
    r = admin.post("/_admin/wiz/issues", {"severity": "LOW", "title": "Old TLS"})
    assert r.status == 201 and r.body["deliveries"] == []
    time.sleep(0.3)
    assert len(admin.get("/_admin/wiz/deliveries").body["deliveries"]) == 1
    assert len(admin.get("/_admin/workbench/alerts").body["alerts"]) == 1


def test_detection_created_delivers_for_defend_rules_only(api: Http, admin: Http, wiz: Gql):
    attrs = wiz_device(api, product="defend")["attributes"]
    integ_id = create_integration(wiz, attrs["webhook_url"], username=attrs["webhook_username"],
                                  password=attrs["webhook_password"])
    create_rule(wiz, integ_id, source="ISSUES", name="cloud only")
    defend = create_rule(wiz, integ_id, source="DETECTIONS", severities=["CRITICAL"])
    assert admin.post("/_admin/wiz/detections", {"severity": "HIGH",
                                                 "title": "ignored"}).body["deliveries"] == []
    r = admin.post("/_admin/wiz/detections", {"severity": "CRITICAL", "title": "Reverse shell",
                                              "description": "bash -i"})
    assert [d["rule_id"] for d in r.body["deliveries"]] == [defend]
    (delivery,) = finished_deliveries(admin, 1)
    assert delivery["status_code"] == 201
    (alert,) = admin.get("/_admin/workbench/alerts").body["alerts"]
    assert alert["name"] == "Wiz Defend: Reverse shell"
    assert alert["payload"]["detection"]["id"] == r.body["detection"]["id"]


def test_body_template_is_rendered(api: Http, admin: Http, wiz: Gql):
    attrs = wiz_device(api)["attributes"]
    integ_id = create_integration(wiz, attrs["webhook_url"], username=attrs["webhook_username"],
                                  password=attrs["webhook_password"])
    body = ('{"trigger": {"source": "{{triggerSource}}", "ruleName": "{{ruleName}}"}, '
            '"issue": {"id": "{{issue.id}}", "severity": "{{issue.severity}}", '
            '"title": "{{issue.title}}", '
            '"projects": [{{#issue.projects}}"{{name}}",{{/issue.projects}}"end"]}}')
    create_rule(wiz, integ_id, body=body, name='Rule "quoted"')
    project_ids = [p["id"] for p in wiz.ok("{ projects { nodes { id } } }")["projects"]["nodes"]]
    r = admin.post("/_admin/wiz/issues", {"severity": "MEDIUM", "title": 'Say "hi"',
                                          "project_ids": project_ids})
    assert r.status == 201
    finished_deliveries(admin, 1)
    (alert,) = admin.get("/_admin/workbench/alerts").body["alerts"]
    assert alert["payload"] == {
        "trigger": {"source": "ISSUES", "ruleName": 'Rule "quoted"'},
        "issue": {"id": r.body["issue"]["id"], "severity": "MEDIUM", "title": 'Say "hi"',
                  "projects": ["Production", "Staging", "end"]}}


def test_wrong_webhook_password_fails_delivery(api: Http, admin: Http, wiz: Gql):
    attrs = wiz_device(api)["attributes"]
    integ_id = create_integration(wiz, attrs["webhook_url"], username=attrs["webhook_username"],
                                  password="not-the-password")
    create_rule(wiz, integ_id)
    admin.post("/_admin/wiz/issues", {"severity": "CRITICAL", "title": "x"})
    (delivery,) = finished_deliveries(admin, 1)
    assert delivery["status"] == "failed" and delivery["status_code"] == 401
    assert admin.get("/_admin/workbench/alerts").body["alerts"] == []


# ---- Workbench health check of a wiz device --------------------------------------------------

def test_health_check(api: Http, wiz: Gql):
    cloud = create_sa(wiz, "Expel cloud", ["read:issues"])
    healthy = wiz_device(api, "Wiz ok", client_id=cloud["clientId"], secret=cloud["clientSecret"])
    attrs = settled(api, healthy["id"])
    assert attrs["status"] == "healthy", attrs["status_details"]
    assert [c["name"] for c in attrs["status_details"]["checks"]] == ["wiz_token", "wiz_graphql"]

    wrong = wiz_device(api, "Wiz bad secret", client_id=cloud["clientId"], secret="nope")
    attrs = settled(api, wrong["id"])
    assert attrs["status"] == "unhealthy"
    assert "access_denied" in attrs["status_details"]["checks"][-1]["detail"]

    # A defend device needs detections, which this account may not read.
    defend = wiz_device(api, "Wiz defend", product="defend", client_id=cloud["clientId"],
                        secret=cloud["clientSecret"])
    attrs = settled(api, defend["id"])
    assert attrs["status"] == "unhealthy"
    assert "FORBIDDEN" in attrs["status_details"]["checks"][-1]["detail"]

    endpoint = wiz_device(api, "Wiz wrong url", client_id=cloud["clientId"],
                          secret=cloud["clientSecret"], endpoint=f"{api.base}/wiz/graphq1")
    attrs = settled(api, endpoint["id"])
    assert attrs["status"] == "unhealthy"
    assert "HTTP 404" in attrs["status_details"]["checks"][-1]["detail"]


def test_govcloud_device_is_unhealthy_until_expel_enables_ingestion(api: Http, admin: Http,
                                                                     wiz: Gql):
    r = admin.call("PUT", "/_admin/wiz/settings", {"govcloud": True},
                   content_type="application/json")
    assert r.status == 200 and r.body["govcloud"] is True
    sa = create_sa(wiz, "Expel gov", ["read:issues"])
    device = wiz_device(api, "Wiz gov", client_id=sa["clientId"], secret=sa["clientSecret"])
    attrs = settled(api, device["id"])
    assert attrs["status"] == "unhealthy"
    last = attrs["status_details"]["checks"][-1]
    assert last["name"] == "event_ingestion" and "legal addendum" in last["detail"], last
    # The credentials themselves work: the token and the query passed.
    assert [c["result"] for c in attrs["status_details"]["checks"][:2]] == ["ok", "ok"]

    r = admin.post(f"/_admin/workbench/security_devices/{device['id']}/enable-ingestion")
    assert r.status == 200 and r.body == {"id": device["id"], "ingestion_enabled": True}
    attrs = settled(api, device["id"])
    assert attrs["status"] == "healthy", attrs["status_details"]
    assert "ingestion_enabled" not in attrs  # Expel's switch is not an API attribute
    assert admin.post("/_admin/workbench/security_devices/nope/enable-ingestion").status == 404
    assert admin.call("PUT", "/_admin/wiz/settings", {"govcloud": "yes"},
                      content_type="application/json").status == 400
    assert admin.post("/_admin/reset").status == 204
    assert admin.get("/_admin/wiz/settings").body["govcloud"] is False


# ---- reset and dump --------------------------------------------------------------------------

def test_dump_and_reset(sandbox_url, api: Http, admin: Http, wiz: Gql):
    sa = create_sa(wiz)
    integ_id = create_integration(wiz)
    create_rule(wiz, integ_id)
    wiz.ok('mutation { addAllowedLoginDomain(input: {domain: "expel.io"}) '
           '{ loginSettings { allowedDomains } } }')
    state = admin.get("/_admin/state").body["wiz"]
    assert [s["clientSecret"] for s in state["service_accounts"]] == [sa["clientSecret"]]
    assert state["integrations"][0]["params"]["webhook"]["authorization"]["password"] == "pass"
    assert len(state["automation_rules"]) == 1 and "expel.io" in state["allowed_domains"]
    assert state["seed"]["service_accounts"][0]["clientId"] == DEFAULT_CLIENT_ID

    sa_token = get_token(admin, sa["clientId"], sa["clientSecret"])
    assert admin.post("/_admin/reset").status == 204
    state = admin.get("/_admin/state").body["wiz"]
    for key in ("service_accounts", "users", "integrations", "automation_rules", "issues",
                "detections", "deliveries"):
        assert state[key] == [], key
    assert state["allowed_domains"] == state["seed"]["allowed_domains"]
    assert admin.get("/_admin/state").body["workbench"]["alerts"] == []
    # The seeded admin's token survives a reset; others' do not.
    assert wiz.ok("{ serviceAccounts { totalCount } }") == {"serviceAccounts": {"totalCount": 1}}
    Gql(sandbox_url, sa_token).error("{ issues { totalCount } }", code="UNAUTHENTICATED")


def test_console_edit_changes_what_the_api_cannot(wiz: Gql, admin: Http):
    sa = create_sa(wiz, scopes=["read:issues"])
    r = admin.post("/_admin/wiz/console-edit",
                   {"serviceAccount": sa["id"], "scopes": ["read:issues", "write:issues"]})
    assert r.status == 200, r.body
    assert wiz.ok(READ_SA, {"id": sa["id"]})["serviceAccount"]["scopes"] == [
        "read:issues", "write:issues"]
    integ = create_integration(wiz)
    project = "3b9c1d2e-7f40-4a5b-8c6d-1e2f3a4b5c6d"
    assert admin.post("/_admin/wiz/console-edit",
                      {"integration": integ, "projectId": project}).status == 200
    got = wiz.ok(READ_INTEGRATION, {"id": integ})["integration"]
    assert got["isAccessibleToAllProjects"] is False and got["project"]["id"] == project
    # Bad edits are refused and change nothing.
    assert admin.post("/_admin/wiz/console-edit",
                      {"integration": integ, "projectId": "nope"}).status == 400
    assert admin.post("/_admin/wiz/console-edit",
                      {"serviceAccount": sa["id"], "scopes": ["Bad Scope"]}).status == 400
    assert admin.post("/_admin/wiz/console-edit",
                      {"serviceAccount": "missing", "scopes": []}).status == 404
    assert admin.post("/_admin/wiz/console-edit", {"name": "x"}).status == 400
    assert wiz.ok(READ_SA, {"id": sa["id"]})["serviceAccount"]["scopes"] == [
        "read:issues", "write:issues"]
