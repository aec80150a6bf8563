package regate.decision_test

import rego.v1

import data.regate

_text := "/messages/0/content/0/text"

_request := {
	"model": "gpt-4o-mini",
	"principal": {"id": "support-bot", "kind": "app", "labels": {"region": "us"}},
	"metadata": {"ticket": "SEC-1"},
	"messages": [{"role": "user", "content": [{"type": "text", "text": "mail a@b.co, key AKIAIOSFODNN7EXAMPLE"}]}],
	"findings": [],
	"context": {"providers": {"openai": {"healthy": true, "region": "us"}}},
}

_email := {"detector": "pii.email", "category": "pii", "path": _text, "start": 5, "end": 11}

_aws := {"detector": "secret.aws_access_key", "category": "secret", "path": _text, "start": 17, "end": 37}

_eu := {"id": "billing-bot", "kind": "app", "labels": {"region": "eu"}}

_codes(d) := {r.code | some r in d.reasons}

test_clean_request_is_allowed_with_small_token_cap if {
	d := regate.decision with input as _request
	d == {"action": "allow", "reasons": [], "limits": {"max_tokens": 1024}}
}

test_personal_data_is_denied_not_redacted if {
	d := regate.decision with input as object.union(_request, {"findings": [_email]})
	d == {
		"action": "deny",
		"status": 403,
		"reasons": [{"code": "pii.email", "message": "email address in a user message"}],
	}
}

test_secret_and_personal_data_both_reported if {
	d := regate.decision with input as object.union(_request, {"findings": [_email, _aws]})
	_codes(d) == {"pii.email", "secret.aws_access_key"}
}

test_model_allowed_by_default_bundle_is_denied_here if {
	d := regate.decision with input as object.union(_request, {"model": "gpt-4o"})
	_codes(d) == {"model.not_allowed"}
}

test_eu_principal_routed_to_eu_provider if {
	providers := {"openai": {"region": "us"}, "openai-eu": {"region": "eu"}}
	d := regate.decision with input as object.union(_request, {"principal": _eu, "context": {"providers": providers}})
	d.action == "route"
	d.route.targets == [{"provider": "openai-eu", "model": "gpt-4o-mini"}]
	_codes(d) == {"route.eu"}
}

test_eu_principal_without_eu_provider_is_denied if {
	d := regate.decision with input as object.union(_request, {"principal": _eu})
	_codes(d) == {"route.no_eu_provider"}
}

test_ticket_schema_is_in_data if {
	schema := data.regate.request_schemas.ticket
	"metadata" in schema.required
	"ticket" in schema.properties.metadata.required
}
