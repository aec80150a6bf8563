# METADATA
# title: regate.lib.models
# description: |
#   Which models a request may name (an allowlist held in data) and where it
#   may go: route targets chosen from the gateway's configured providers
#   (input.context.providers.<name>.region / .healthy) and principal labels.
package regate.lib.models

import rego.v1

default _policy := {}

_policy := data.regate.policy

# A pattern is an exact model name ("gpt-4o"), a prefix ending in "*"
# ("gpt-4.1*", "claude-sonnet-4*") or "*" for any model. (glob.match is
# avoided: OPA and regorus treat "." and "**" differently.)

# allowed(model, patterns) holds when any pattern matches model.
allowed(model, patterns) if {
	is_string(model)
	model in patterns
}

allowed(model, patterns) if {
	is_string(model)
	strings.any_prefix_match(model, prefixes(patterns))
}

# prefixes(patterns) is the prefixes of the patterns that end in "*".
prefixes(patterns) := [trim_suffix(p, "*") | some p in patterns; endswith(p, "*")]

# allowlist is data.regate.policy.allowed_models; missing means no model is
# allowed (fail closed).
allowlist := object.get(_policy, "allowed_models", [])

# not_allowed is {reason} when input.model is not on the allowlist, else {}.
not_allowed contains reason if {
	model := object.get(input, "model", "")
	not model in allowlist
	not allowed(model, allowlist)
	reason := {
		"code": "model.not_allowed",
		"message": sprintf("model \"%v\" is not on this policy's allowlist", [model]),
	}
}

# providers is the gateway's configured providers, by name.
providers := object.get(input, ["context", "providers"], {})

# healthy(p) holds unless the gateway marked provider p unhealthy.
healthy(p) if not p.healthy == false

# in_regions(regions) is the names, sorted, of healthy providers whose region
# label is one of regions.
in_regions(regions) := sort([name |
	some name, p in providers
	p.region in regions
	healthy(p)
])

# targets(names, model) is an ordered list of route targets, one per name.
targets(names, model) := [{"provider": name, "model": model} | some name in names]

# region_route(regions) routes the requested model to the healthy providers
# in regions ([] when there is none).
region_route(regions) := targets(in_regions(regions), object.get(input, "model", ""))

# principal_label(key) is the authenticated principal's label key ("" if unset).
principal_label(key) := object.get(input, ["principal", "labels", key], "")
