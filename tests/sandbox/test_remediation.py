"""Workbench `remediation_action_settings` in the emulator: raw JSON:API and through pyexclient,
in an organization that already has foreign devices and records."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pyexclient import WorkbenchClient
from pyexclient.workbench import relationship

from conftest import API_KEY, ORG_ID, Http
from test_workbench import add_org, aws_attrs, create, doc

SETTINGS = "/api/v2/remediation_action_settings"
KEYS = "DISABLE_AND_MODIFY_AWS_ACCESS_KEYS"


def linkage(*ids: str) -> dict[str, Any]:
    return {"data": [{"type": "security_devices", "id": i} for i in ids]}


def setting_doc(attrs: dict[str, Any], org_id: str = ORG_ID, *device_ids: str) -> dict[str, Any]:
    body = doc(attrs, org_id, type_="remediation_action_settings")
    body["data"]["relationships"]["security_devices"] = linkage(*device_ids)
    return body


def opted_in(**over: Any) -> dict[str, Any]:
    attrs = {"action_type": KEYS, "automate_opt_in": True,
             "automate_opt_in_agreement_version": "V1", "automate_list_type": "DENY"}
    attrs.update(over)
    return attrs


def device_ids(reply) -> list[str]:
    return [d["id"] for d in reply.body["data"]["relationships"]["security_devices"]["data"]]


def test_create_read_filter_and_one_record_per_action_type(api: Http):
    ours = create(api, aws_attrs("Acme - CloudTrail"))["id"]
    foreign = create(api, aws_attrs("Someone else's trail"))["id"]
    contain = api.post(SETTINGS, setting_doc({"action_type": "CONTAIN_HOSTS"}, ORG_ID, foreign))
    assert contain.status == 201, contain.body
    assert contain.body["data"]["attributes"]["automate_opt_in"] is False
    r = api.post(SETTINGS, setting_doc(opted_in(), ORG_ID, ours))
    assert r.status == 201, r.body
    rec = r.body["data"]
    assert rec["type"] == "remediation_action_settings"
    assert rec["attributes"]["automate_opt_in_at"] and rec["attributes"]["automate_list_type"] == "DENY"
    assert device_ids(r) == [ours]
    assert rec["relationships"]["organization"]["data"] == {"type": "organizations", "id": ORG_ID}
    assert api.get(f"{SETTINGS}/{rec['id']}").body["data"] == rec

    def listed(query: str) -> list[str]:
        reply = api.get(f"{SETTINGS}?{query}")
        assert reply.status == 200, reply.body
        return [x["id"] for x in reply.body["data"]]

    assert listed(f"filter[organization][id]={ORG_ID}&filter[action_type]={KEYS}") == [rec["id"]]
    assert listed(f"filter[security_devices][id]={ours}") == [rec["id"]]
    assert listed(f"filter[security_devices][id]={foreign}") == [contain.body["data"]["id"]]
    assert listed("filter[automate_opt_in]=false") == [contain.body["data"]["id"]]
    assert len(listed("sort=%2Bcreated_at&sort=%2Bid")) == 2
    assert api.get(f"{SETTINGS}?filter[colour]=red").status == 400

    again = api.post(SETTINGS, setting_doc(opted_in(), ORG_ID))
    assert again.status == 409 and rec["id"] in again.errors()[0]["detail"]


def test_bad_documents_are_refused_with_a_pointer(api: Http, admin: Http):
    dev = create(api, aws_attrs())["id"]
    cases = [
        (opted_in(automate_opt_in_agreement_version=None), "/data/attributes/automate_opt_in_agreement_version"),
        (opted_in(action_type="MAKE_COFFEE"), "/data/attributes/action_type"),
        (opted_in(automate_opt_in_at="2026-01-01T00:00:00Z"), "/data/attributes/automate_opt_in_at"),
        (opted_in(automate_list_type="MAYBE"), "/data/attributes/automate_list_type"),
        ({"automate_opt_in": False}, "/data/attributes/action_type"),
    ]
    for attrs, pointer in cases:
        r = api.post(SETTINGS, setting_doc(attrs, ORG_ID, dev))
        assert r.status == 422, (attrs, r.body)
        assert r.errors()[0]["source"]["pointer"] == pointer, r.body
    other_org = add_org(admin, "Globex")["id"]
    r = api.post(SETTINGS, setting_doc(opted_in(), other_org, dev))
    assert r.status == 422 and r.errors()[0]["source"]["pointer"].endswith("/data/0")
    r = api.post(SETTINGS, setting_doc(opted_in(), ORG_ID, "no-such-device"))
    assert r.status == 422
    assert api.get("/_admin/state").body["workbench"]["remediation_action_settings"] == []


def test_relationship_routes_add_and_remove_members_leaving_others(api: Http):
    ours = create(api, aws_attrs("Acme - CloudTrail"))["id"]
    foreign = create(api, aws_attrs("Someone else's trail"))["id"]
    rec = api.post(SETTINGS, setting_doc(opted_in(), ORG_ID, foreign)).body["data"]
    members = f"{SETTINGS}/{rec['id']}/relationships/security_devices"
    r = api.post(members, linkage(ours))
    assert r.status == 200 and [d["id"] for d in r.body["data"]] == [foreign, ours]
    assert [d["id"] for d in api.get(members).body["data"]] == [foreign, ours]
    related = api.get(f"{SETTINGS}/{rec['id']}/security_devices").body["data"]
    assert [(d["type"], d["attributes"]["name"]) for d in related] == [
        ("security_devices", "Someone else's trail"), ("security_devices", "Acme - CloudTrail")]
    r = api.call("DELETE", members, linkage(ours))
    assert r.status == 200 and [d["id"] for d in r.body["data"]] == [foreign]
    assert api.patch(members, linkage(ours)).body["data"] == linkage(ours)["data"]
    assert api.post(members, linkage("no-such-device")).status == 422


def test_opt_out_and_back_in_and_immutable_fields(api: Http, admin: Http):
    dev = create(api, aws_attrs())["id"]
    rec = api.post(SETTINGS, setting_doc(opted_in(), ORG_ID, dev)).body["data"]
    path = f"{SETTINGS}/{rec['id']}"
    patch = {"data": {"type": "remediation_action_settings", "id": rec["id"],
                      "attributes": {"automate_opt_in": False}}}
    r = api.patch(path, patch)
    assert r.status == 200 and r.body["data"]["attributes"]["automate_opt_in"] is False
    assert device_ids(r) == [dev], "an attribute PATCH leaves the members alone"
    patch["data"]["attributes"] = {"automate_opt_in": True}
    r = api.patch(path, patch)
    on_at = r.body["data"]["attributes"]["automate_opt_in_at"]
    assert r.status == 200 and on_at >= rec["attributes"]["automate_opt_in_at"]
    patch["data"]["attributes"] = {"action_type": "CONTAIN_HOSTS"}
    assert api.patch(path, patch).status == 422
    patch["data"]["attributes"] = {}
    patch["data"]["relationships"] = {"organization": {"data": {
        "type": "organizations", "id": add_org(admin, "Initech")["id"]}}}
    assert api.patch(path, patch).status == 422
    assert api.patch(f"{SETTINGS}/nope", patch).status == 404


def test_deleting_a_device_takes_it_out_of_every_record(api: Http):
    dev = create(api, aws_attrs())["id"]
    rec = api.post(SETTINGS, setting_doc(opted_in(), ORG_ID, dev)).body["data"]
    assert api.delete(f"/api/v2/security_devices/{dev}").status == 204
    assert device_ids(api.get(f"{SETTINGS}/{rec['id']}")) == []
    assert api.delete(f"{SETTINGS}/{rec['id']}").status == 204
    assert api.get(f"{SETTINGS}/{rec['id']}").status == 404


def test_pyexclient_creates_searches_and_follows_the_relationship(sandbox_url: str, admin: Http):
    xc = WorkbenchClient(sandbox_url, token=API_KEY, prompt_on_delete=False)
    dev = xc.security_devices.create(relationship_organization=ORG_ID, **aws_attrs()).save()
    made = xc.remediation_action_settings.create(
        relationship_organization=ORG_ID, relationship_security_devices=[dev.id],
        **opted_in()).save()
    [found] = list(xc.remediation_action_settings.search(
        relationship("security_devices.id", dev.id), action_type=KEYS))
    assert found.id == made.id and found.automate_opt_in is True
    assert [d.id for d in found.security_devices] == [dev.id]  # links.related
    with xc.remediation_action_settings.get(id=made.id) as s:  # PATCH on exit
        s.automate_opt_in = False
    assert xc.remediation_action_settings.get(id=made.id).automate_opt_in is False
    with pytest.raises(requests.exceptions.HTTPError, match="already"):
        xc.remediation_action_settings.create(relationship_organization=ORG_ID,
                                               **opted_in()).save()
