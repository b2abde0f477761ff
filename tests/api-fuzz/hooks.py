"""Schemathesis hooks for the API fuzz run (.ci/schemathesis).

They do not loosen any check. They teach the generator what a schema cannot say:
- rules that relate two values (OpenAPI has no way to state them), so a case that breaks one is
  not sent as if it were valid: `from` before `to`; a reassignment's `to` other than its `from`; lifecycle rule ids unique and testing only
  declared attributes; a directory target's attribute names distinct from those it manages; a
  template's roles listed once and its placeholders declared; a
  campaign recurrence that is an interval or a cron (with its time zone), its ranges forwards,
  and exact review items only in tenants the scope lists;
- the caller's own credentials (FUZZ_OWN_IDS): revoking its token, disabling itself or dropping
  its binding would turn the rest of the run into 401/403s and test nothing;
- a text body (CSV, NDJSON) is text on the wire whatever the generator meant, so a "wrong type"
  text body is not a schema violation the server could see.

A failure is set aside only where the request was not what the check assumed:
- a stateful step put a non-UUID into a UUID path parameter: the request was never schema-valid;
- "created resource not found" whose 404 is about another resource (a person who never joined,
  or the template pin of the tenant just created, which has none);
- a schema-valid request refused (400) only by rules that read stored state or the clock (the
  tenant's policy, directory and attributes; whether a referenced actor or tenant exists; "in
  the future"; an end after a start; the template version named and its parameters). Every
  issue of the 400 must be one of these, so any other refusal still fails the run.
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


PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)


def _template_ok(document):
    """The refinements of TemplateDocument (core/templates/schemas.ts): role names listed once,
    placeholders naming declared parameters, and the lifecycle section's own rules."""
    if not isinstance(document, dict):
        return True
    policy = document.get("policy")
    if isinstance(policy, dict) and not _lifecycle_ok(policy):
        return False
    directory = document.get("directory") if isinstance(document.get("directory"), dict) else {}
    roles = directory.get("roles") if isinstance(directory.get("roles"), list) else []
    names = [json.dumps(r.get("name")) for r in roles if isinstance(r, dict)]
    if len(names) != len(set(names)):
        return False
    parameters = document.get("parameters") if isinstance(document.get("parameters"), dict) else {}
    known = {"tenant.name", "tenant.slug", *parameters.keys()}
    texts = [*_texts(directory), *_texts(policy)]
    return all(name in known for text in texts for name in PLACEHOLDER.findall(text))


STATE_RULES = (
    "no such tenant",
    "no such active tenant",
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
    # A drift exception's expiry: at most a year from the moment the request arrives.
    "days from now",
    "is in the past",
    "must be after startAt",
    "not a member of this tenant’s own staff",
    # Templates: the version named, and whether the tenant's pin and the parameters fit it.
    "no such template version",
    "the template declares no such parameter",
    "required: the parameter has no default",
    "required: no template is assigned",
    "required: the tenant is not pinned to this template",
    "once rendered for this tenant",
    # Rollouts: the tenants pinned to the template, and so what a canary may name.
    "no tenant is pinned to the template",
    "not among the rollout’s tenants",
    "more than the rollout’s",
)
TEXT_MEDIA = ("text/csv", "application/x-ndjson")


BACKWARDS = re.compile(r"(\d+)-(\d+)")


def _campaign_ok(definition):
    """A recurrence is an interval or a cron expression (a time zone only with cron, no range in it
    running backwards); a review of exact items names only tenants its scope lists."""
    if not isinstance(definition, dict):
        return True
    schedule = definition.get("schedule")
    if isinstance(schedule, dict):
        cron = schedule.get("cron")
        if ("intervalMinutes" in schedule) == ("cron" in schedule):
            return False
        if "timezone" in schedule and "cron" not in schedule:
            return False
        if isinstance(cron, str) and any(int(a) > int(b) for a, b in BACKWARDS.findall(cron)):
            return False
    scope = definition.get("scope") if isinstance(definition.get("scope"), dict) else {}
    items = definition.get("items") if isinstance(definition.get("items"), dict) else {}
    exactly = items.get("exactly")
    listed = scope.get("tenantIds") if isinstance(scope.get("tenantIds"), list) else []
    if isinstance(exactly, list):
        return all(not isinstance(e, dict) or e.get("tenantId") in listed for e in exactly)
    return True


def _rollout_ok(body):
    """A rollout's tenants are listed once, and a canary names only (and at most as many as) them."""
    tenants = body.get("tenants")
    canary = body.get("canary") if isinstance(body.get("canary"), dict) else {}
    named = canary.get("tenants") if isinstance(canary.get("tenants"), list) else []
    if len(named) != len(set(map(str, named))):
        return False
    if not isinstance(tenants, list):
        return True
    if len(tenants) != len(set(map(str, tenants))):
        return False
    count = canary.get("count")
    if isinstance(count, int) and count > len(tenants):
        return False
    return all(t in tenants for t in named)


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
    # "Created resource not found" where the 404 names another resource of the tenant just created
    # (which exists): a mover or leaver for a person who never joined; the pin of a tenant pinned to
    # no template.
    if failure.code == "ST302":
        return _error(response).get("code") not in ("person_not_found", "template_not_pinned")
    if failure.code != "ST202" or response.status_code != 400:
        return True
    issues = _error(response).get("issues")
    if not isinstance(issues, list):
        return True
    if issues and all(_not_a_uuid(case, issue) for issue in issues):
        return False
    refused_by_state = bool(issues) and all(any(rule in issue.get("message", "") for rule in STATE_RULES) for issue in issues)
    return not refused_by_state


def _carries_nul(value):
    return any("\x00" in text for text in _texts(value))


@schemathesis.hook
def filter_case(context, case):
    if case.media_type in TEXT_MEDIA and not isinstance(case.body, str):
        return False
    # The run asks for no NUL (--generation-allow-x00 false), yet a generated array item can still
    # carry one; the API's 400 for it is tested on every text field (tests/grants, tests/lifecycle).
    if _carries_nul(case.body) or _carries_nul(case.query):
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
    if case.operation.path.startswith("/v1/templates") and case.method.upper() in ("POST", "PUT"):
        return _template_ok(body.get("document"))
    if key in (("POST", "/v1/campaigns"), ("PUT", "/v1/campaigns/{definitionId}")):
        return _campaign_ok(body.get("definition"))
    if key == ("POST", "/v1/rollouts"):
        return _rollout_ok(body)
    if key == ("PUT", "/v1/tenants/{tenantId}/policy"):
        return _lifecycle_ok(body.get("document")) and _directory_ok(body.get("document"))
    return True
