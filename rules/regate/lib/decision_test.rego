package regate.lib.decision_test

import rego.v1

import data.regate.lib.decision

_secret := {"code": "secret.jwt", "message": "JSON Web Token in a user message"}

_email := {"code": "pii.email", "message": "email address in a user message"}

_redaction := {"path": "/messages/0/content/0/text", "start": 5, "end": 11, "replacement": "[EMAIL]"}

_target := {"provider": "openai-eu", "model": "gpt-4o-mini"}

test_nothing_allows if {
	decision.decide({}) == {"action": "allow", "reasons": []}
}

test_limits_alone_still_allow if {
	decision.decide({"limits": {"max_tokens": 64}}) == {"action": "allow", "reasons": [], "limits": {"max_tokens": 64}}
}

test_redaction_redacts if {
	d := decision.decide({"reasons": {_email}, "redactions": {_redaction}, "route": [], "deny": set()})
	d == {"action": "redact", "reasons": [_email], "redactions": [_redaction]}
}

test_route_beats_redaction if {
	d := decision.decide({"redactions": {_redaction}, "route": [_target]})
	d.action == "route"
	d.route == {"targets": [_target]}
	d.redactions == [_redaction]
}

test_deny_beats_everything_and_drops_the_rest if {
	d := decision.decide({
		"deny": {_secret},
		"reasons": {_email},
		"redactions": {_redaction},
		"route": [_target],
		"limits": {"max_tokens": 64},
	})
	d == {"action": "deny", "reasons": [_secret], "status": 403}
}

test_deny_status_can_be_chosen if {
	decision.decide({"deny": [_secret], "status": 451}).status == 451
}

test_action_rule if {
	decision.action({"deny": [_secret], "route": [_target]}) == "deny"
	decision.action({"route": [_target], "redactions": [_redaction]}) == "route"
	decision.action({"redactions": [_redaction]}) == "redact"
	decision.action({"reasons": [_email]}) == "allow"
}

test_reasons_sorted_by_code if {
	d := decision.decide({"deny": {_secret, _email, decision.reason("model.not_allowed", "m")}})
	[r.code | some r in d.reasons] == ["model.not_allowed", "pii.email", "secret.jwt"]
}

test_redactions_sorted_by_path_then_offsets_pattern_paths_first if {
	later := object.union(_redaction, {"start": 20, "end": 25})
	other := object.union(_redaction, {"path": "/messages/1/content/0/text", "start": 0})
	pattern := {"path": "/messages/*/content/*/text", "pattern": "(?i)secret-\\d+", "replacement": "[SECRET]"}
	d := decision.decide({"redactions": {other, later, _redaction, pattern}})
	d.redactions == [pattern, _redaction, later, other]
}

test_redaction_array_keeps_its_order if {
	later := object.union(_redaction, {"start": 20, "end": 25})
	d := decision.decide({"redactions": [later, _redaction]})
	d.redactions == [later, _redaction]
}

test_route_set_is_sorted if {
	first := {"provider": "a-eu", "model": "m"}
	d := decision.decide({"route": {_target, first}})
	d.route.targets == [first, _target]
}

test_route_order_is_kept if {
	first := {"provider": "z-eu", "model": "m"}
	d := decision.decide({"route": [first, _target]})
	d.route.targets == [first, _target]
}
