package regate.lib.findings_test

import rego.v1

import data.regate.lib.findings

_messages := [
	{"role": "system", "content": [{"type": "text", "text": "be nice"}]},
	{"role": "user", "content": [{"type": "text", "text": "a@b.co"}]},
	{"role": "tool", "content": [{"type": "text", "text": "c@d.co"}]},
]

_email_user := {"detector": "pii.email", "category": "pii", "path": "/messages/1/content/0/text", "start": 0, "end": 6}

_email_tool := {"detector": "pii.email", "category": "pii", "path": "/messages/2/content/0/text", "start": 0, "end": 6}

_key := {"detector": "secret.jwt", "category": "secret", "path": "/messages/1/content/0/text", "start": 0, "end": 6}

test_of_category_selects_only_that_category if {
	fs := findings.of_category("pii") with input as {"findings": [_email_user, _key]}
	fs == {_email_user}
}

test_of_category_without_findings_is_empty if {
	count(findings.of_category("pii")) == 0 with input as {}
}

test_role_reads_the_message_role if {
	findings.role("/messages/2/content/0/text") == "tool" with input.messages as _messages
}

test_role_of_tool_call_argument if {
	findings.role("/messages/1/tool_calls/0/arguments/to") == "user" with input.messages as _messages
}

test_role_falls_back_for_odd_paths if {
	findings.role("/messages/x/content/0/text") == "message" with input.messages as _messages
	findings.role("/tools/0/description") == "message" with input.messages as _messages
	findings.role("/messages/9/content/0/text") == "message" with input.messages as _messages
	findings.role("/messages/01/content/0/text") == "message" with input.messages as _messages
	findings.role("/messages/-1/content/0/text") == "message" with input.messages as _messages
	findings.role("/messages") == "message" with input.messages as _messages
	findings.role("") == "message" with input.messages as _messages
}

test_role_of_message_without_role if {
	findings.role("/messages/0/content/0/text") == "message" with input.messages as [{"content": []}]
}

test_role_without_messages if {
	findings.role("/messages/0/content/0/text") == "message" with input as {}
}

test_detectors_are_distinct if {
	findings.detectors([_email_user, _email_tool, _key]) == {"pii.email", "secret.jwt"}
}

test_reason_names_one_detector if {
	r := findings.reason("pii.email", [_email_user, _email_tool, _key], {"pii.email": "email address"}) with input.messages as _messages
	r == {"code": "pii.email", "message": "email address in tool, user messages"}
}

test_where_one_role if {
	findings.where({_email_user}) == "a user message" with input.messages as _messages
}

test_where_many_roles_sorted if {
	findings.where({_email_tool, _email_user}) == "tool, user messages" with input.messages as _messages
}

test_reasons_one_per_detector if {
	rs := findings.reasons({_email_user, _email_tool, _key}, {"pii.email": "email address"}) with input.messages as _messages
	rs == {
		{"code": "pii.email", "message": "email address in tool, user messages"},
		{"code": "secret.jwt", "message": "secret.jwt in a user message"},
	}
}

test_category_reasons_one_per_detector_of_that_category if {
	jwt_system := object.union(_key, {"path": "/messages/0/content/0/text"})
	rs := findings.category_reasons("secret", {}) with input as {
		"messages": _messages,
		"findings": [_email_user, _key, jwt_system, _key],
	}
	rs == {{"code": "secret.jwt", "message": "secret.jwt in system, user messages"}}
}

test_category_reasons_without_findings_is_empty if {
	count(findings.category_reasons("pii", {})) == 0 with input as {"messages": _messages}
}

test_category_reasons_match_reasons_of_category if {
	fs := [_email_user, _email_tool, _key, object.union(_email_user, {"detector": "pii.phone"})]
	labels := {"pii.email": "email address"}
	a := findings.category_reasons("pii", labels) with input as {"messages": _messages, "findings": fs}
	b := findings.reasons(findings.of_category("pii"), labels) with input as {"messages": _messages, "findings": fs}
	a == b
	count(a) == 2
}
