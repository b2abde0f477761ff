"""Schemathesis hooks for the API fuzz run (.ci/schemathesis).

They do not loosen any check. They teach the generator what a schema cannot say:
- rules that relate two values (OpenAPI has no way to state them), so a case that breaks one is
  not sent as if it were valid: `from` before `to`; a reassignment's `to` other than its `from`; lifecycle rule ids unique and testing only
  declared attributes; a directory target's attribute names distinct from those it manages;
- the caller's own credentials (FUZZ_OWN_IDS): revoking its token, disabling itself or dropping
  its binding would turn the rest of the run into 401/403s and test nothing;
- a text body (CSV, NDJSON) is text on the wire whatever the generator meant, so a "wrong type"
  text body is not a schema violation the server could see.

A failure is set aside only where the request was not what the check assumed:
- a stateful step put a non-UUID into a UUID path parameter: the request was never schema-valid;
- "created resource not found" whose 404 is about another resource (a person who never joined,
  in the tenant just created);
- a schema-valid request refused (400) only by rules that read stored state or the clock (the
  tenant's policy, directory and attributes; whether a referenced actor or tenant exists; "in
  the future"; an end after a start). Every issue of the 400 must be one of these, so any other
  refusal still fails the run.
"""

import json
import os
import re
from datetime import datetime

import schemathesis

OWN_IDS = {value for value in os.environ.get("FUZZ_OWN_IDS", "").split(",") if value}
SELF_HARM = {
    ("DELETE", "/v1/tokens/{tokenId}"),
    ("DELETE", "/v1/role-bindings/{bindingId}"),
    ("POST", "/v1/actors/{actorId}/disable"),
}


def _instant(value):
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _window_ok(query):
    start, end = _instant((query or {}).get("from")), _instant((query or {}).get("to"))
    return start is None or end is None or start < end


def _lifecycle_ok(policy):
    if not isinstance(policy, dict) or not isinstance(policy.get("lifecycle"), dict):
        return True
    lifecycle = policy["lifecycle"]
    attributes = lifecycle.get("attributes") or []
    rules = lifecycle.get("rules") or []
    # A section of the wrong shape is schema-invalid anyway: the server refuses it by field path.
    if not isinstance(attributes, list) or not isinstance(rules, list):
        return True
    declared = {a for a in attributes if isinstance(a, str)}
    ids = []
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        ids.append(json.dumps(rule.get("id"), sort_keys=True))
        when = rule.get("when")
        if isinstance(when, dict) and not set(when.keys()) <= declared:
            return False
    return len(ids) == len(set(ids))


LDAP_MANAGED = {"objectclass", "cn", "sn", "displayname", "mail", "pwdaccountlockedtime"}
LDAP_DEFAULT_MAP = {"department": "departmentNumber", "title": "title", "location": "l", "employeeType": "employeeType", "employeeNumber": "employeeNumber"}
SCIM_MANAGED = {"id", "externalid", "username", "displayname", "emails", "active", "groups", "meta", "schemas"}


def _directory_ok(policy):
    """The refinements of LdapTargetSettings and ScimTargetSettings (core/directory/targets.ts)."""
    if not isinstance(policy, dict) or not isinstance(policy.get("directory"), dict):
        return True
    target = policy["directory"]
    settings = target.get("settings") if isinstance(target.get("settings"), dict) else {}
    if target.get("type") == "ldap":
        user_id = str(settings.get("userIdAttribute", "uid")).lower()
        username = str(settings.get("usernameAttribute", "cn")).lower()
        if user_id == username:
            return False
        reserved = LDAP_MANAGED | {user_id, username}
        disable = settings.get("disable")
        if isinstance(disable, dict) and disable.get("mode") == "attribute":
            reserved.add(str(disable.get("attribute", "")).lower())
        mapping = settings.get("attributeMap", LDAP_DEFAULT_MAP)
        return not isinstance(mapping, dict) or all(str(v).lower() not in reserved for v in mapping.values())
    if target.get("type") == "scim":
        mapping = settings.get("attributeMap", {})
        return not isinstance(mapping, dict) or all(str(v).lower() not in SCIM_MANAGED for v in mapping.values())
    return True


STATE_RULES = (
    "no such tenant",
    "no such actor",
    "must be the actor’s home tenant",
    "no active directory user with this id",
    "no directory user with this id",
    "directory lacks the ",
    "not allowed under policy version",
    "in the tenant directory",
    "not grantable under policy version",
    "longer than the policy maximum",
    "required by the tenant policy",
    "must match ",
    "exceeds the policy cap",
    "unknown attribute; this tenant declares",
    "must be in the future",
    "is in the past",
    "must be after startAt",
    "not a member of this tenant’s own staff",
)
TEXT_MEDIA = ("text/csv", "application/x-ndjson")


def _error(response):
    try:
        return json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return {}


UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _not_a_uuid(case, issue):
    """The stateful phase reuses values across links without checking them against the target's
    schema (an MSP-wide binding's null tenant as "None", the chain id "msp" as a tenant id): such
    a request was never schema-valid, so its 400 is right."""
    path = issue.get("path", "")
    if not path.startswith("params.") or issue.get("message") != "Invalid UUID":
        return False
    params = case.path_parameters or {}
    name = path[len("params.") :]
    if name not in params:
        return False
    # A JSON null reused as a path value is sent as "None".
    value = params[name]
    return value is None or not UUID.match(str(value))


@schemathesis.hook
def filter_failure(context, failure, case, response):
    # "Created resource not found" where the 404 names another resource: a mover or leaver for a
    # person who never joined, in the tenant just created (which exists).
    if failure.code == "ST302":
        return _error(response).get("code") != "person_not_found"
    if failure.code != "ST202" or response.status_code != 400:
        return True
    issues = _error(response).get("issues")
    if not isinstance(issues, list):
        return True
    if issues and all(_not_a_uuid(case, issue) for issue in issues):
        return False
    refused_by_state = bool(issues) and all(any(rule in issue.get("message", "") for rule in STATE_RULES) for issue in issues)
    return not refused_by_state


@schemathesis.hook
def filter_case(context, case):
    if case.media_type in TEXT_MEDIA and not isinstance(case.body, str):
        return False
    key = (case.method.upper(), case.operation.path)
    if key in SELF_HARM and OWN_IDS & {str(v) for v in (case.path_parameters or {}).values()}:
        return False
    if case.operation.path.startswith("/v1/audit/"):
        return _window_ok(case.query)
    body = case.body if isinstance(case.body, dict) else {}
    if key == ("POST", "/v1/tenants/{tenantId}/reviews/{runId}/reassign") and body.get("from") == body.get("to"):
        return False
    if key == ("POST", "/v1/tenants"):
        return _lifecycle_ok(body.get("policy"))
    if key == ("PUT", "/v1/tenants/{tenantId}/policy"):
        return _lifecycle_ok(body.get("document")) and _directory_ok(body.get("document"))
    return True
