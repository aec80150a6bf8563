package regate.decision_test

import rego.v1

import data.regate

_text := "/messages/0/content/0/text"

_request := {
	"model": "gpt-4o-mini",
	"principal": {"id": "support-bot", "kind": "app", "labels": {"region": "us"}},
	"messages": [{"role": "user", "content": [{"type": "text", "text": "mail a@b.co, key AKIAIOSFODNN7EXAMPLE"}]}],
	"findings": [],
	"context": {"providers": {"openai": {"healthy": true, "region": "us"}}},
}

_email := {"detector": "pii.email", "category": "pii", "path": _text, "start": 5, "end": 11}

_aws := {"detector": "secret.aws_access_key", "category": "secret", "path": _text, "start": 17, "end": 37}

_eu := {"id": "billing-bot", "kind": "app", "labels": {"region": "eu"}}

_codes(d) := {r.code | some r in d.reasons}

test_clean_request_is_allowed_with_token_cap if {
	d := regate.decision with input as _request
	d == {"action": "allow", "reasons": [], "limits": {"max_tokens": 4096}}
}

test_email_is_redacted if {
	d := regate.decision with input as object.union(_request, {"findings": [_email]})
	d.action == "redact"
	d.redactions == [{"path": _text, "start": 5, "end": 11, "replacement": "[EMAIL]"}]
	_codes(d) == {"pii.email"}
}

test_cloud_key_is_denied_and_nothing_else_reported if {
	d := regate.decision with input as object.union(_request, {"findings": [_email, _aws]})
	d == {
		"action": "deny",
		"status": 403,
		"reasons": [{"code": "secret.aws_access_key", "message": "AWS access key id in a user message"}],
	}
}

test_model_outside_allowlist_is_denied if {
	d := regate.decision with input as object.union(_request, {"model": "gpt-3.5-turbo"})
	d.action == "deny"
	_codes(d) == {"model.not_allowed"}
}

test_prefix_pattern_allows_model_family if {
	d := regate.decision with input as object.union(_request, {"model": "claude-sonnet-4-20250514"})
	d.action == "allow"
}

test_eu_principal_routed_to_eu_providers_only if {
	providers := {
		"openai": {"healthy": true, "region": "us"},
		"openai-eu": {"healthy": true, "region": "eu"},
		"azure-eu": {"healthy": true, "region": "westeurope"},
		"mistral-eu": {"healthy": false, "region": "eu"},
	}
	d := regate.decision with input as object.union(_request, {"principal": _eu, "context": {"providers": providers}})
	d.action == "route"
	d.route.targets == [{"provider": "azure-eu", "model": "gpt-4o-mini"}, {"provider": "openai-eu", "model": "gpt-4o-mini"}]
	_codes(d) == {"route.eu"}
	d.limits == {"max_tokens": 4096}
}

test_eu_route_keeps_redactions if {
	req := object.union(_request, {
		"principal": _eu,
		"findings": [_email],
		"context": {"providers": {"echo-eu": {"region": "eu"}}},
	})
	d := regate.decision with input as req
	d.action == "route"
	count(d.redactions) == 1
	_codes(d) == {"pii.email", "route.eu"}
}

test_eu_principal_without_eu_provider_is_denied if {
	d := regate.decision with input as object.union(_request, {"principal": _eu})
	d.action == "deny"
	_codes(d) == {"route.no_eu_provider"}
}

test_eu_principal_with_only_unhealthy_eu_provider_is_denied if {
	providers := {"openai-eu": {"healthy": false, "region": "eu"}}
	d := regate.decision with input as object.union(_request, {"principal": _eu, "context": {"providers": providers}})
	_codes(d) == {"route.no_eu_provider"}
}

test_eu_principal_without_context_is_denied if {
	req := json.remove(object.union(_request, {"principal": _eu}), ["context"])
	d := regate.decision with input as req
	_codes(d) == {"route.no_eu_provider"}
}

test_all_deny_reasons_are_reported_together if {
	req := object.union(_request, {"principal": _eu, "model": "gpt-3.5-turbo", "findings": [_aws]})
	d := regate.decision with input as req
	_codes(d) == {"route.no_eu_provider", "model.not_allowed", "secret.aws_access_key"}
}

test_token_cap_comes_from_data if {
	d := regate.decision with input as _request with data.regate.policy.max_tokens as 64
	d.limits.max_tokens == 64
}
