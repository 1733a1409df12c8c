"""JSON:API helpers: responses, the `errors` envelope, query parsing, pagination."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from flask import Request, Response
from werkzeug.http import HTTP_STATUS_CODES

from . import schema

MEDIA_TYPE = "application/vnd.api+json"
ACCEPTED_BODY_TYPES = {"application/json", MEDIA_TYPE}


def title_for(status: int) -> str:
    return HTTP_STATUS_CODES.get(status, "Error")


def error_object(status: int, detail: str, pointer: str | None = None, parameter: str | None = None,
                 title: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"status": str(status), "title": title or title_for(status), "detail": detail}
    if pointer is not None:
        err["source"] = {"pointer": pointer}
    elif parameter is not None:
        err["source"] = {"parameter": parameter}
    return err


def attribute_errors(attributes: dict[str, Any], writable: dict[str, dict[str, Any]],
                     read_only: set[str]) -> list[dict[str, Any]]:
    """422 error objects (with source.pointer) for a document's attributes: read-only ones,
    unknown ones, and values that break their JSON Schema in `writable`."""
    errors = []
    for name, value in attributes.items():
        pointer = f"/data/attributes/{name}"
        if name in read_only:
            errors.append(error_object(422, f"{name} is read-only", pointer=pointer))
        elif name not in writable:
            errors.append(error_object(
                422, f"unknown attribute {name!r}; allowed: {', '.join(writable)}",
                pointer=pointer))
        else:
            errors += [error_object(422, e.detail, pointer=e.pointer)
                       for e in schema.validate(value, writable[name], pointer, name)]
    return errors


class ApiError(Exception):
    """Raised by handlers; rendered as `{"errors": [...]}` with `status`."""

    def __init__(self, status: int, errors: list[dict[str, Any]] | str,
                 pointer: str | None = None, parameter: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        if isinstance(errors, str):
            errors = [error_object(status, errors, pointer=pointer, parameter=parameter)]
        super().__init__(errors[0]["detail"] if errors else title_for(status))
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
    resp = Response(body, status=status, mimetype=MEDIA_TYPE)
    if payload is None:
        del resp.headers["Content-Type"]
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def errors_response(status: int, errors: list[dict[str, Any]],
                    headers: dict[str, str] | None = None) -> Response:
    return response({"errors": errors}, status, headers)


def read_body(request: Request) -> Any:
    """The parsed JSON body, or ApiError 415/400."""
    if request.mimetype not in ACCEPTED_BODY_TYPES:
        raise ApiError(415, f"Content-Type must be {MEDIA_TYPE} or application/json, "
                            f"got {request.mimetype or 'none'}")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except ValueError as err:
        raise ApiError(400, f"request body is not valid JSON: {err}") from None


_BRACKETS = re.compile(r"^([a-z_]+)((?:\[[^\[\]]+\])*)$")


def parse_query(request: Request, filters: set[str], sorts: set[str],
                includes: set[str] = frozenset(), flags: set[str] = frozenset()
                ) -> dict[str, Any]:
    """Validate the query string of a list call.

    Returns {"filters": {name: value}, "sort": [(field, descending)], "limit", "offset"}.
    Unknown parameters, filters or sort fields are 400 (strict, like a JSON:API server).
    """
    out: dict[str, Any] = {"filters": {}, "sort": [], "limit": 50, "offset": 0}
    for key in request.args.keys():
        values = request.args.getlist(key)
        value = values[-1]
        m = _BRACKETS.match(key)
        family, members = (m.group(1), m.group(2)) if m else (key, "")
        if family == "filter" and members:
            name = ".".join(re.findall(r"\[([^\]]+)\]", members))
            if name not in filters:
                raise ApiError(400, f"unknown filter {key}; allowed: "
                                    + ", ".join(_filter_key(f) for f in sorted(filters)),
                               parameter=key)
            out["filters"][name] = value
        elif family == "page" and members in ("[limit]", "[offset]"):
            try:
                number = int(value)
            except ValueError:
                number = -1
            if number < 0 or (members == "[limit]" and not 1 <= number <= 500):
                raise ApiError(400, f"{key} must be an integer"
                                    + (" from 1 to 500" if members == "[limit]" else " >= 0"),
                               parameter=key)
            out[members[1:-1]] = number
        elif family == "sort" and not members:
            # pyexclient (workbench.py, class `sort` and `search`) repeats the parameter, one
            # field each, with a "+" (ascending) or "-" (descending) prefix, and sends
            # `sort=+created_at&sort=+id` on every search; JSON:API's comma list is read too.
            for item in (i for v in values for i in v.split(",")):
                desc = item.startswith("-")
                name = item[1:] if item[:1] in ("+", "-") else item
                if name not in sorts:
                    raise ApiError(400, f"cannot sort by {name!r}; allowed: {', '.join(sorted(sorts))}",
                                   parameter="sort")
                out["sort"].append((name, desc))
        elif family == "include" and not members:
            for item in filter(None, value.split(",")):
                if item not in includes:
                    raise ApiError(400, f"cannot include {item!r}", parameter="include")
        elif family == "flag" and members and members[1:-1] in flags:
            pass
        else:
            raise ApiError(400, f"unknown query parameter {key}", parameter=key)
    return out


def _filter_key(name: str) -> str:
    return "filter" + "".join(f"[{p}]" for p in name.split("."))


def sort_items(items: list[dict[str, Any]], sort: list[tuple[str, bool]],
               key_of) -> list[dict[str, Any]]:
    def key(item: dict[str, Any], name: str) -> tuple[bool, Any]:
        value = key_of(item, name)  # nulls last; False and 0 are values, not nulls
        return (value is None, "" if value is None else value)

    for name, desc in reversed(sort):
        items = sorted(items, key=lambda it: key(it, name), reverse=desc)
    return items


def paginate(request: Request, items: list[Any], limit: int, offset: int
             ) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """(page items, links, meta) with links.next only while more items remain."""
    total = len(items)
    page = items[offset: offset + limit]
    base = request.base_url

    def link(new_offset: int) -> str:
        args = [(k, v) for k, v in request.args.items(multi=True)
                if k not in ("page[offset]", "page[limit]")]
        args += [("page[limit]", str(limit)), ("page[offset]", str(new_offset))]
        return base + "?" + urlencode(args, safe="[]")

    links: dict[str, Any] = {"self": link(offset), "first": link(0)}
    links["next"] = link(offset + limit) if offset + limit < total else None
    links["prev"] = link(max(offset - limit, 0)) if offset > 0 else None
    meta = {"page": {"limit": limit, "offset": offset, "total": total}}
    return page, links, meta
