# METADATA
# title: regate strict policy
# description: |
#   For teams that would rather refuse than rewrite:
#   - deny personal data (e-mail, phone, SSN, payment card, IBAN) instead of
#     redacting it, so the caller fixes the prompt;
#   - deny cloud and provider keys, tokens, private key blocks and JWTs;
#   - deny models outside a short allowlist (data.regate.policy.allowed_models);
#   - route principals labelled region=eu to healthy EU providers only, and
#     deny when there is none;
#   - cap max_tokens at data.regate.policy.max_tokens.
#   Every request must carry metadata.ticket: the request schema
#   data.regate.request_schemas.ticket denies it (400, schema.ticket) before
#   this policy runs.
package regate

import rego.v1

import data.regate.lib.decision as verdict
import data.regate.lib.models

# Library rules are imported one by one: regorus evaluates every rule of a
# package that is referenced through a package import (pii.reasons would
# compute pii.redactions too), and functions are unaffected.
import data.regate.lib.models.not_allowed as model_not_allowed
import data.regate.lib.pii.reasons as pii_reasons
import data.regate.lib.secrets.deny_reasons as secret_reasons

settings := data.regate.policy

eu_regions := object.get(settings, "eu_regions", ["eu"])

eu_principal if models.principal_label("region") in eu_regions

eu_route := models.region_route(eu_regions)

deny_reasons contains r if some r in secret_reasons

deny_reasons contains r if some r in pii_reasons

deny_reasons contains r if some r in model_not_allowed

deny_reasons contains verdict.reason("route.no_eu_provider", msg) if {
	eu_principal
	count(eu_route) == 0
	msg := "the principal is EU-resident but no healthy EU provider is configured; nothing is sent outside the EU"
}

route := eu_route if eu_principal

else := []

route_reasons contains verdict.reason("route.eu", msg) if {
	eu_principal
	count(eu_route) > 0
	msg := sprintf("EU-resident principal: routed to %s", [concat(", ", [t.provider | some t in eu_route])])
}

decision := verdict.decide({
	"deny": deny_reasons,
	"reasons": route_reasons,
	"route": route,
	"limits": {"max_tokens": settings.max_tokens},
})
