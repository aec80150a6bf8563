package regate.lib.pii_test

import rego.v1

import data.regate.lib.pii

_messages := [{"role": "user", "content": [{"type": "text", "text": "mail a@b.co or call 415-555-2671"}]}]

_email := {"detector": "pii.email", "category": "pii", "path": "/messages/0/content/0/text", "start": 5, "end": 11}

_phone := {"detector": "pii.phone", "category": "pii", "path": "/messages/0/content/0/text", "start": 20, "end": 32}

_secret := {"detector": "secret.jwt", "category": "secret", "path": "/messages/0/content/0/text", "start": 0, "end": 4}

test_redacts_each_pii_finding_in_order if {
	rs := pii.redactions with input as {"messages": _messages, "findings": [_phone, _secret, _email]}
	rs == [
		{"path": "/messages/0/content/0/text", "start": 5, "end": 11, "replacement": "[EMAIL]"},
		{"path": "/messages/0/content/0/text", "start": 20, "end": 32, "replacement": "[PHONE]"},
	]
}

test_reasons_name_detector_and_role if {
	rs := pii.reasons with input as {"messages": _messages, "findings": [_email, _secret]}
	rs == {{"code": "pii.email", "message": "email address in a user message"}}
}

test_no_findings_no_redactions if {
	count(pii.redactions) == 0 with input as {"messages": _messages, "findings": []}
	count(pii.reasons) == 0 with input as {"messages": _messages}
}

test_ignores_other_categories if {
	count(pii.redactions) == 0 with input as {"messages": _messages, "findings": [_secret]}
}

test_replacements_overridable_from_data if {
	rs := pii.redactions with input as {"messages": _messages, "findings": [_email]}
		with data.regate.policy.replacements as {"pii.email": "<email>"}
	rs == [{"path": "/messages/0/content/0/text", "start": 5, "end": 11, "replacement": "<email>"}]
}

test_unknown_detector_gets_derived_placeholder if {
	pii.replacement("pii.passport") == "[PASSPORT]"
	pii.replacement("acme.pii.badge_id") == "[BADGE_ID]"
	pii.replacement("pii.card") == "[CARD]"
}

test_overlapping_findings_are_all_redacted_for_the_enforcer_to_merge if {
	inner := {"detector": "pii.phone", "category": "pii", "path": _email.path, "start": 6, "end": 9}
	rs := pii.redactions with input as {"messages": _messages, "findings": [inner, _email]}
	rs == [
		{"path": _email.path, "start": 5, "end": 11, "replacement": "[EMAIL]"},
		{"path": _email.path, "start": 6, "end": 9, "replacement": "[PHONE]"},
	]
}

test_same_span_in_another_text_is_its_own_redaction if {
	other := object.union(_email, {"path": "/messages/1/content/0/text"})
	rs := pii.redactions with input as {"messages": _messages, "findings": [other, _email]}
	[r.path | some r in rs] == [_email.path, other.path]
}

test_same_span_and_placeholder_is_redacted_once if {
	badge := object.union(_email, {"detector": "acme.pii.email"})
	rs := pii.redactions with input as {"messages": _messages, "findings": [_email, badge, _email]}
		with data.regate.policy.replacements as {"acme.pii.email": "[EMAIL]"}
	rs == [{"path": _email.path, "start": 5, "end": 11, "replacement": "[EMAIL]"}]
}

test_same_span_sorted_by_placeholder if {
	card := object.union(_email, {"detector": "pii.card"})
	rs := pii.redactions with input as {"messages": _messages, "findings": [_email, card]}
	[r.replacement | some r in rs] == ["[CARD]", "[EMAIL]"]
}

test_unknown_detector_redacted_with_derived_placeholder if {
	passport := object.union(_email, {"detector": "pii.passport"})
	rs := pii.redactions with input as {"messages": _messages, "findings": [passport]}
	rs == [{"path": _email.path, "start": 5, "end": 11, "replacement": "[PASSPORT]"}]
}
