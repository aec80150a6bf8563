package regate.lib.secrets_test

import rego.v1

import data.regate.lib.secrets

_messages := [
	{"role": "user", "content": [{"type": "text", "text": "key AKIAIOSFODNN7EXAMPLE"}]},
	{"role": "assistant", "content": [], "tool_calls": [{"id": "c1", "name": "deploy", "arguments": {"token": "AKIAIOSFODNN7EXAMPLE"}}]},
]

_aws_user := {"detector": "secret.aws_access_key", "category": "secret", "path": "/messages/0/content/0/text", "start": 4, "end": 24}

_aws_tool := {"detector": "secret.aws_access_key", "category": "secret", "path": "/messages/1/tool_calls/0/arguments/token", "start": 0, "end": 20}

_email := {"detector": "pii.email", "category": "pii", "path": "/messages/0/content/0/text", "start": 0, "end": 3}

test_one_reason_per_detector if {
	rs := secrets.deny_reasons with input as {"messages": _messages, "findings": [_aws_user, _aws_tool, _email]}
	rs == {{"code": "secret.aws_access_key", "message": "AWS access key id in assistant, user messages"}}
}

test_custom_detector_uses_its_id_as_label if {
	custom := object.union(_aws_user, {"detector": "secret.acme_token"})
	rs := secrets.deny_reasons with input as {"messages": _messages, "findings": [custom]}
	rs == {{"code": "secret.acme_token", "message": "secret.acme_token in a user message"}}
}

test_pii_is_not_a_secret if {
	count(secrets.deny_reasons) == 0 with input as {"messages": _messages, "findings": [_email]}
}

test_no_findings_no_reasons if {
	count(secrets.deny_reasons) == 0 with input as {"messages": _messages}
}

test_secret_without_a_path_is_still_reported if {
	pathless := json.remove(_aws_user, ["path"])
	rs := secrets.deny_reasons with input as {"messages": _messages, "findings": [pathless]}
	rs == {{"code": "secret.aws_access_key", "message": "AWS access key id in a message message"}}
}
