package regate.lib.models_test

import rego.v1

import data.regate.lib.models

_providers := {
	"openai": {"healthy": true, "region": "us"},
	"openai-eu": {"healthy": true, "region": "eu"},
	"anthropic-eu": {"region": "eu-central-1"},
	"mistral-eu": {"healthy": false, "region": "eu"},
}

test_exact_pattern if {
	models.allowed("gpt-4o", ["gpt-4o"])
	not models.allowed("gpt-4o-mini", ["gpt-4o"])
}

test_prefix_pattern_crosses_dots_and_dashes if {
	models.allowed("gpt-4.1-mini", ["gpt-4.1*"])
	models.allowed("claude-sonnet-4-20250514", ["claude-sonnet-4*"])
	not models.allowed("gpt-4o", ["gpt-4.1*"])
}

test_star_allows_any_model if {
	models.allowed("anything", ["*"])
}

test_no_patterns_allow_nothing if {
	not models.allowed("gpt-4o", [])
}

test_non_string_model_is_not_allowed if {
	not models.allowed(42, ["*"])
}

test_not_allowed_reason if {
	rs := models.not_allowed with input.model as "gpt-3.5-turbo"
		with data.regate.policy.allowed_models as ["gpt-4o*"]
	rs == {{"code": "model.not_allowed", "message": "model \"gpt-3.5-turbo\" is not on this policy's allowlist"}}
}

test_allowed_model_has_no_reason if {
	count(models.not_allowed) == 0 with input.model as "gpt-4o-mini"
		with data.regate.policy.allowed_models as ["gpt-4o*"]
}

test_missing_allowlist_fails_closed if {
	count(models.not_allowed) == 1 with input.model as "gpt-4o-mini" with data.regate.policy as {}
}

test_missing_model_is_not_allowed if {
	count(models.not_allowed) == 1 with input as {} with data.regate.policy.allowed_models as ["gpt-4o*"]
}

test_in_regions_picks_healthy_providers_sorted if {
	names := models.in_regions(["eu", "eu-central-1"]) with input.context.providers as _providers
	names == ["anthropic-eu", "openai-eu"]
}

test_in_regions_without_providers_is_empty if {
	models.in_regions({"eu"}) == [] with input as {}
}

test_region_route_uses_requested_model if {
	route := models.region_route(["eu"]) with input as {"model": "gpt-4o-mini", "context": {"providers": _providers}}
	route == [{"provider": "openai-eu", "model": "gpt-4o-mini"}]
}

test_principal_label if {
	models.principal_label("region") == "eu" with input.principal as {"id": "a", "labels": {"region": "eu"}}
	models.principal_label("region") == "" with input.principal as {"id": "a"}
}
