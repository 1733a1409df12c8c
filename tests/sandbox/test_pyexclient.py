"""Contract: the Workbench emulator driven by Expel's own client, pyexclient (PyPI), the way
it builds requests: Bearer API key, JSON:API bodies with a top-level id on PATCH and DELETE,
`sort=+created_at&sort=+id` on every search, paging by following `links.next`."""

from __future__ import annotations

import pytest
import requests
from pyexclient import WorkbenchClient
from pyexclient.workbench import limit, relationship, sort

from conftest import API_KEY, ORG_ID, Http

AWS_SPEC = {
    "role_arn": "arn:aws:iam::123456789012:role/ExpelServiceRole",
    "role_session_name": "ExpelCloudTrail",
    "region": "us-east-1",
    "sqs_queue_url": "http://127.0.0.1:5000/123456789012/ExpelMasterCloudTrailNotify",
}
LIST = "GET /api/v2/security_devices"


@pytest.fixture
def xc(sandbox_url, admin) -> WorkbenchClient:
    """pyexclient authenticated with an API key (it adds the `Bearer ` prefix itself)."""
    return WorkbenchClient(sandbox_url, token=API_KEY, prompt_on_delete=False)


def new_device(xc: WorkbenchClient, name: str, **over):
    attrs = dict(name=name, device_type="CLOUD", location="us-east-1", plugin_slug="aws",
                 task_source="EXPEL_TASKPOOL", device_spec=dict(AWS_SPEC))
    attrs.update(over)
    return xc.security_devices.create(relationship_organization=ORG_ID, **attrs).save()


def test_create_get_patch_delete_as_pyexclient_builds_them(xc: WorkbenchClient, admin: Http):
    dev = new_device(xc, "Acme - CloudTrail")
    assert dev.id and dev.name == "Acme - CloudTrail" and dev.deleted_at is None
    got = xc.security_devices.get(id=dev.id)
    assert got.plugin_slug == "aws" and got.device_spec == AWS_SPEC
    with xc.security_devices.get(id=dev.id) as d:  # PATCH on exit, only what changed
        d.location = "eu-west-1"
    assert xc.security_devices.get(id=dev.id).location == "eu-west-1"
    xc.security_devices.get(id=dev.id).delete(prompt_on_delete=False)
    assert admin.get("/_admin/state").body["workbench"]["security_devices"] == []
    with pytest.raises(requests.exceptions.HTTPError, match="not found"):
        xc.security_devices.get(id=dev.id)


def test_search_with_default_sort_pages_over_links_next(xc: WorkbenchClient, admin: Http):
    made = [new_device(xc, f"dev {i}").id for i in range(5)]
    admin.delete("/_admin/calls")
    found = [(d.created_at, d.id) for d in xc.security_devices.search(
        limit(2), relationship("organization.id", ORG_ID))]
    assert sorted(found) == found and {i for _, i in found} == set(made)  # +created_at, +id
    calls = admin.get("/_admin/calls").body
    assert calls["routes"].get(LIST) == 3, calls  # 2 + 2 + 1, by links.next
    by_name = [d.name for d in xc.security_devices.search(sort("name", "desc"), limit(3))]
    assert by_name == [f"dev {i}" for i in reversed(range(5))]
    assert [d.id for d in xc.security_devices.search(name="dev 3")] == [made[3]]


def test_unknown_sort_field_is_refused_in_the_errors_envelope(xc: WorkbenchClient):
    with pytest.raises(requests.exceptions.HTTPError, match="cannot sort by 'colour'"):
        list(xc.security_devices.search(sort("colour")))
    with pytest.raises(requests.exceptions.HTTPError, match="cannot sort by 'device_spec'"):
        list(xc.security_devices.search(sort("device_spec")))  # no-sort in pyexclient


def test_every_listing_takes_the_default_sort(xc: WorkbenchClient):
    assert [o.id for o in xc.organizations.search()] == [ORG_ID]
    slugs = sorted(p.plugin_slug for p in xc.plugins.search())
    assert slugs == ["aws", "sentinelone", "wiz"]


def test_soft_deleted_device_is_visible_with_deleted_at(xc: WorkbenchClient, admin: Http):
    dev = new_device(xc, "gone soft")
    r = admin.post(f"/_admin/workbench/security_devices/{dev.id}/soft-delete")
    assert r.status == 200
    got = xc.security_devices.get(id=dev.id)
    assert got.deleted_at == r.body["deleted_at"]
    listed = list(xc.security_devices.search(name="gone soft"))
    assert [(d.id, d.deleted_at) for d in listed] == [(dev.id, got.deleted_at)]
    with pytest.raises(requests.exceptions.HTTPError, match="not found"):
        got.delete(prompt_on_delete=False)


def test_a_plugin_publishing_an_empty_schema_still_takes_devices(xc: WorkbenchClient,
                                                                  admin: Http):
    r = admin.call("PUT", "/_admin/workbench/plugins/aws/published-schema",
                   {"device_spec_json": {}}, content_type="application/json")
    assert r.status == 200, r.body
    [aws] = list(xc.plugins.search(plugin_slug="aws"))
    assert aws.device_spec_json == {}
    dev = new_device(xc, "no local schema")
    assert xc.security_devices.get(id=dev.id).device_spec == AWS_SPEC
    # the server still checks the spec it knows
    with pytest.raises(requests.exceptions.HTTPError, match="device_spec"):
        new_device(xc, "bad spec", device_spec={"role_arn": 5})
    assert admin.call("PUT", "/_admin/workbench/plugins/nope/published-schema",
                      {"device_spec_json": {}}, content_type="application/json").status == 404
    assert admin.call("PUT", "/_admin/workbench/plugins/aws/published-schema",
                      {"schema": {}}, content_type="application/json").status == 400
