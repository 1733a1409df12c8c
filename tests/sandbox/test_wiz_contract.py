"""Contract of the Wiz emulator's GraphQL schema with the public client code (issue 9).

The operations below are those AxtonGrams/terraform-provider-wiz sends (re-typed from its
`internal/provider/resource_user.go`, `data_source_users.go`, `resource_service_account.go`,
`resource_integration*.go`, `resource_automation_rule*.go`; the shapes of the input variables
from `internal/wiz/structs.go` and its `examples/resources/*/resource.tf`). Where that provider
only has an AWS SNS variant, the same query shape is written with the webhook member, which is
what the Expel guide wires. Each must validate and run against the emulator; the fields our
own client used to ask for, which the real API lacks, must fail the way graphql-core fails
them, with its own message text.
"""

from __future__ import annotations

from typing import Any

import pytest

from test_wiz import DETECTION_BODY, ISSUE_BODY, Gql, get_token

# ---- the public provider's operations (query text shape re-typed) --------------------------

CREATE_USER = """mutation CreateUser($input: CreateUserInput!) {
    createUser(input: $input) {
        user {
            id
        }
    }
}"""
READ_USER = """query Users(
    $id: ID!
) {
    user(
        id: $id
    ) {
        id
        name
        email
        effectiveAssignedProjects {
            id
        }
        effectiveRole {
            id
        }
    }
}"""
UPDATE_USER = """mutation UpdateUser($input: UpdateUserInput!) {
    updateUser(input: $input) {
        user {
            id
        }
    }
}"""
DELETE_USER = """mutation DeleteUser (
    $input: DeleteUserInput!
) {
    deleteUser(
        input: $input
    ) {
        _stub
    }
}"""
LIST_USERS = """query users(
  $first: Int
  $filterBy: UserFilters
  $after: String
){
  users(
    first: $first,
    filterBy: $filterBy,
    after: $after
  ) {
      nodes {
        id
        name
        email
        identityProvider {
          name
        }
        identityProviderType
        effectiveRole {
          id
          name
          scopes
         }
      }
      pageInfo {
        endCursor
        hasNextPage
      }
      totalCount
    }
}"""
SA_FIELDS = """
            id
            name
            clientId
            clientSecret
            scopes
            type
            createdAt
            assignedProjects {
                id
            }
            lastRotatedAt"""
CREATE_SA = f"""mutation CreateServiceAccount($input: CreateServiceAccountInput!) {{
    createServiceAccount(input: $input) {{
        serviceAccount {{{SA_FIELDS}
        }}
    }}
}}"""
READ_SA = f"""query ServiceAccount  (
    $id: ID!
) {{
    serviceAccount(
        id: $id
    ) {{{SA_FIELDS}
        }}
}}"""
DELETE_SA = """mutation DeleteServiceAccount (
    $input: DeleteServiceAccountInput!
) {
    deleteServiceAccount(
        input: $input
    ) {
        _stub
    }
}"""
CREATE_INTEGRATION = """mutation CreateIntegration($input: CreateIntegrationInput!) {
  createIntegration(
    input: $input
  ) {
    integration {
      id
    }
  }
}"""
READ_INTEGRATION = """query integration (
  $id: ID!
) {
  integration(
    id: $id
  ) {
    id
    name
    createdAt
    updatedAt
    project {
      id
    }
    type
    isAccessibleToAllProjects
    usedByRules {
      id
    }
    paramsType: params {
      type: __typename
    }
    params {
      ... on WebhookIntegrationParams {
        url
        headers {
          key
          value
        }
        onPremConfig {
          isOnPrem
        }
        authorization {
          ... on WebhookIntegrationBasicAuthorization {
            username
          }
        }
      }
    }
  }
}"""
UPDATE_INTEGRATION = """mutation UpdateIntegration(
  $input: UpdateIntegrationInput!
) {
  updateIntegration(input: $input) {
    integration {
      id
    }
  }
}"""
DELETE_INTEGRATION = """mutation DeleteIntegration (
  $input: DeleteIntegrationInput!
) {
  deleteIntegration(
    input: $input
  ) {
    _stub
  }
}"""
CREATE_RULE = """mutation CreateAutomationRule (
  $input: CreateAutomationRuleInput!
) {
  createAutomationRule(
    input: $input
  ) {
    automationRule {
      id
    }
  }
}"""
READ_RULE = """query automationRule (
  $id: ID!
){
  automationRule(
    id: $id
  ){
    id
    name
    description
    createdAt
    triggerSource
    triggerType
    filters
    enabled
    project {
      id
    }
    actions {
      id
      actionTemplateType
      integration {
        id
      }
      actionTemplateParams {
        ... on WebhookActionTemplateParams {
          body
        }
      }
    }
  }
}"""
UPDATE_RULE = """mutation updateAutomationRule($input: UpdateAutomationRuleInput!) {
  updateAutomationRule(
    input: $input
  ) {
    automationRule {
      id
    }
  }
}"""
DELETE_RULE = """mutation DeleteAutomationRule (
            $input: DeleteAutomationRuleInput!
        ) {
            deleteAutomationRule (
                input: $input
            ) {
                _stub
            }
        }"""


@pytest.fixture
def wiz(sandbox_url, admin) -> Gql:
    return Gql(sandbox_url, get_token(admin))


def ok(wiz: Gql, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    r = wiz(query, variables)
    assert r.status == 200 and "errors" not in r.body, r.body
    return r.body["data"]


def test_public_user_operations_run(wiz: Gql):
    # wiz_user example: email, name, role (a role id); sendEmailInvite has no omitempty.
    created = ok(wiz, CREATE_USER, {"input": {"email": "psm@acme.example", "name": "psm",
                                              "role": "GLOBAL_READER",
                                              "sendEmailInvite": True}})
    user_id = created["createUser"]["user"]["id"]
    read = ok(wiz, READ_USER, {"id": user_id})["user"]
    assert read == {"id": user_id, "name": "psm", "email": "psm@acme.example",
                    "effectiveAssignedProjects": [], "effectiveRole": {"id": "GLOBAL_READER"}}
    # The patch sends changed fields only (omitempty).
    ok(wiz, UPDATE_USER, {"input": {"id": user_id, "patch": {"name": "psm2"}}})
    assert ok(wiz, READ_USER, {"id": user_id})["user"]["name"] == "psm2"
    # wiz_users data source: first 50, search, authentication_source MODERN by default.
    listed = ok(wiz, LIST_USERS, {"first": 50, "filterBy": {"search": "psm",
                                                             "source": "MODERN"}})["users"]
    assert listed["totalCount"] == 1
    assert listed["nodes"][0]["identityProvider"] is None
    assert listed["nodes"][0]["identityProviderType"] == "WIZ"
    assert listed["nodes"][0]["effectiveRole"]["id"] == "GLOBAL_READER"
    ok(wiz, DELETE_USER, {"input": {"id": user_id}})


def test_public_service_account_operations_run(wiz: Gql):
    # wiz_service_account examples: a project reader with scopes; a broker without.
    reader = ok(wiz, CREATE_SA, {"input": {"name": "project_reader",
                                           "scopes": ["read:projects"],
                                           "type": "THIRD_PARTY"}})
    sa = reader["createServiceAccount"]["serviceAccount"]
    assert sa["clientSecret"] and sa["scopes"] == ["read:projects"]
    helm = ok(wiz, CREATE_SA, {"input": {"name": "helm", "scopes": None, "type": "BROKER"}})
    assert helm["createServiceAccount"]["serviceAccount"]["type"] == "BROKER"
    read = ok(wiz, READ_SA, {"id": sa["id"]})["serviceAccount"]
    assert read["name"] == "project_reader" and read["assignedProjects"] == []
    ok(wiz, DELETE_SA, {"input": {"id": sa["id"]}})


def test_public_integration_and_rule_operations_run(wiz: Gql):
    created = ok(wiz, CREATE_INTEGRATION, {"input": {
        "name": "example", "type": "WEBHOOK", "isAccessibleToAllProjects": True,
        "params": {"webhook": {"url": "https://hooks.example/wiz", "isOnPrem": False,
                               "authorization": {"username": "u", "password": "p",
                                                 "token": ""},
                               "headers": [{"key": "X-Env", "value": "test"}]}}}})
    integ_id = created["createIntegration"]["integration"]["id"]
    read = ok(wiz, READ_INTEGRATION, {"id": integ_id})["integration"]
    assert read["paramsType"] == {"type": "WebhookIntegrationParams"}
    assert read["params"]["onPremConfig"] == {"isOnPrem": False}
    assert read["params"]["authorization"] == {"username": "u"}
    ok(wiz, UPDATE_INTEGRATION, {"input": {"id": integ_id, "patch": {
        "name": "example2", "params": {"webhook": {"url": "https://hooks.example/wiz2"}}}}})
    assert ok(wiz, READ_INTEGRATION, {"id": integ_id})["integration"]["name"] == "example2"

    # wiz_automation_rule_aws_sns example: ISSUES, [CREATED, REOPENED], a body template.
    rule = ok(wiz, CREATE_RULE, {"input": {
        "name": "example", "description": "example description", "enabled": True,
        "triggerSource": "ISSUES", "triggerType": ["CREATED", "REOPENED"],
        "filters": {"severity": ["CRITICAL", "HIGH"]},
        "actions": [{"integrationId": integ_id, "actionTemplateType": "WEBHOOK",
                     "actionTemplateParams": {"webhook": {"body": ISSUE_BODY}}}]}})
    rule_id = rule["createAutomationRule"]["automationRule"]["id"]
    read = ok(wiz, READ_RULE, {"id": rule_id})["automationRule"]
    assert read["actions"][0]["actionTemplateParams"] == {"body": ISSUE_BODY}
    assert read["actions"][0]["integration"] == {"id": integ_id}
    ok(wiz, UPDATE_RULE, {"input": {"id": rule_id, "patch": {
        "name": "example", "description": "changed", "triggerSource": "ISSUES",
        "triggerType": ["CREATED"], "enabled": True,
        "actions": [{"integrationId": integ_id, "actionTemplateType": "WEBHOOK",
                     "actionTemplateParams": {"webhook": {"body": DETECTION_BODY}}}]}}})
    assert ok(wiz, READ_RULE, {"id": rule_id})["automationRule"]["description"] == "changed"
    ok(wiz, DELETE_RULE, {"input": {"id": rule_id}})
    ok(wiz, DELETE_INTEGRATION, {"input": {"id": integ_id}})


# ---- what the real API lacks fails as GraphQL fails it -------------------------------------

def webhook_integration(wiz: Gql) -> str:
    data = ok(wiz, CREATE_INTEGRATION, {"input": {
        "name": "x", "type": "WEBHOOK", "isAccessibleToAllProjects": True,
        "params": {"webhook": {"url": "https://hooks.example/x"}}}})
    return data["createIntegration"]["integration"]["id"]


@pytest.mark.parametrize("query,message", [
    ("query($id: ID!) { user(id: $id) { id role { id } } }",
     "Cannot query field 'role' on type 'User'."),
    ("query($id: ID!) { user(id: $id) { id expiresAt } }",
     "Cannot query field 'expiresAt' on type 'User'."),
    ('{ users(filterBy: {email: "soc+acme@expel.io"}) { nodes { id } } }',
     "Expected value of type 'UserFilters' not to include unknown field 'email'"),
    ('mutation { createUser(input: {email: "a@acme.example", name: "a", role: "GLOBAL_READER", '
     'expiresAt: "2030-01-01T00:00:00Z"}) { user { id } } }',
     "Expected value of type 'CreateUserInput' not to include unknown field 'expiresAt'"),
    ('mutation { updateUser(input: {id: "u", patch: {expiresAt: null}}) { user { id } } }',
     "Expected value of type 'UpdateUserPatch' not to include unknown field 'expiresAt'"),
    ('mutation { updateIntegration(input: {id: "i", patch: {isAccessibleToAllProjects: true}}) '
     '{ integration { id } } }',
     "Expected value of type 'UpdateIntegrationPatch' not to include unknown field "
     "'isAccessibleToAllProjects'"),
    ("query($id: ID!) { integration(id: $id) { params { ... on WebhookIntegrationParams "
     "{ isOnPrem } } } }",
     "Cannot query field 'isOnPrem' on type 'WebhookIntegrationParams'."),
    ('{ automationRules(filterBy: {triggerSource: [BOGUS]}) { nodes { id } } }',
     "Value 'BOGUS' does not exist in 'AutomationRuleTriggerSource' enum."),
    ('mutation { createAutomationRule(input: {name: "r", triggerSource: ISSUES, '
     'triggerType: [CREATED], actions: [{integrationId: "i", actionTemplateType: WEBHOOK, '
     'actionTemplateParams: {webhook: {headers: []}}}]}) { automationRule { id } } }',
     "Expected value of type 'WebhookActionTemplateParamsInput' to include required field "
     "'body'"),
])
def test_old_wrong_fields_fail_validation(wiz: Gql, query: str, message: str):
    r = wiz(query, {"id": "x"} if "$id" in query else None)
    assert r.status == 200 and r.body.get("data") is None, r.body
    (err,) = r.body["errors"]
    assert err["message"].startswith(message), err
    assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", err


@pytest.mark.parametrize("variables,message", [
    ({"f": {"email": "soc+acme@expel.io"}},
     "Variable '$f' has invalid value: Expected value of type 'UserFilters' not to include "
     "unknown field 'email'"),
    ({"f": {"source": "SSO"}}, "Value 'SSO' does not exist in 'AuthenticationSource' enum."),
])
def test_wrong_variables_fail_coercion(wiz: Gql, variables: dict[str, Any], message: str):
    r = wiz("query($f: UserFilters) { users(filterBy: $f) { totalCount } }", variables)
    (err,) = r.body["errors"]
    assert message in err["message"], err
    assert err["extensions"]["code"] == "BAD_USER_INPUT", err


def test_patch_cannot_change_integration_scope_or_rule_project(wiz: Gql):
    integ_id = webhook_integration(wiz)
    r = wiz(UPDATE_INTEGRATION, {"input": {"id": integ_id, "patch": {
        "isAccessibleToAllProjects": False}}})
    assert "Expected value of type 'UpdateIntegrationPatch' not to include unknown field " \
        "'isAccessibleToAllProjects'" in r.body["errors"][0]["message"], r.body
    rule = ok(wiz, CREATE_RULE, {"input": {
        "name": "r", "triggerSource": "ISSUES", "triggerType": ["CREATED"],
        "actions": [{"integrationId": integ_id, "actionTemplateType": "WEBHOOK",
                     "actionTemplateParams": {"webhook": {"body": ISSUE_BODY}}}]}})
    rule_id = rule["createAutomationRule"]["automationRule"]["id"]
    r = wiz(UPDATE_RULE, {"input": {"id": rule_id, "patch": {"projectId": "p"}}})
    assert "Expected value of type 'UpdateAutomationRulePatch' not to include unknown field " \
        "'projectId'" in r.body["errors"][0]["message"], r.body
