# METADATA
# title: regate.lib.findings
# description: |
#   Helpers over input.findings (added by regate's detectors, Contract 1):
#   select findings by category, say where they are, and turn them into
#   reasons with one entry per detector.
#
#   A request can carry thousands of findings, so the work per finding is
#   kept to one pass that collects the distinct (category, detector, path)
#   triples, shared by every category; roles are then looked up once per
#   triple and messages written once per detector.
package regate.lib.findings

import rego.v1

# of_category(category) is the set of input findings of that category.
of_category(category) := {f | some f in object.get(input, "findings", []); f.category == category}

# detectors(fs) is the set of detector ids among findings fs.
detectors(fs) := {f.detector | some f in fs}

# role(path) is the role of the message a finding's JSON pointer points into
# ("/messages/2/content/0/text" -> input.messages[2].role), else "message":
# for a path outside the messages, an index that is not a plain decimal
# ("/messages/x", "/messages/01") or a message without a role. It costs a
# few builtins per distinct (detector, path), never per message or finding.
# The path is padded so that a short one fails a comparison rather than a
# lookup: regorus 0.13's VM skips a function's else when its body fails on a
# missing key.
role(path) := object.get(input, ["messages", to_number(parts[2]), "role"], "message") if {
	parts := array.concat(split(path, "/"), ["", ""])
	parts[1] == "messages"
	regex.match(`^(0|[1-9][0-9]*)$`, parts[2])
} else := "message"

# in_roles(roles) names the messages with those roles: "a user message",
# "assistant, user messages".
in_roles(roles) := sprintf("a %s message", [r]) if {
	count(roles) == 1
	some r in roles
} else := sprintf("%s messages", [concat(", ", sort(roles))])

# where(fs) says in which messages findings fs are: "a user message",
# "assistant, user messages".
where(fs) := in_roles({role(f.path) | some f in fs})

# reason(id, fs, labels) is the reason for detector id's findings among fs:
# {"code": id, "message": "<label> in <where>"}; labels maps detector ids to
# human names (the id itself when missing).
reason(id, fs, labels) := _reason(id, {role(f.path) | some f in fs; f.detector == id}, labels)

# reasons(fs, labels) is one reason per detector among findings fs.
reasons(fs, labels) := _reasons({[f.detector, object.get(f, "path", "")] | some f in fs}, labels)

# category_reasons(category, labels) is one reason per detector among the
# input findings of that category; the same as reasons(of_category(category),
# labels), but every category shares one pass over the findings.
category_reasons(category, labels) := _reasons({[x[1], x[2]] | some x in _located; x[0] == category}, labels)

# _located is the distinct [category, detector, path] of the input findings
# (a finding without a path still counts, as if in "a message").
_located := {[f.category, f.detector, object.get(f, "path", "")] | some f in input.findings}

# _reasons(pairs, labels) is one reason per detector among [detector, path] pairs.
_reasons(pairs, labels) := {_reason(id, {x[1] | some x in found_in; x[0] == id}, labels) |
	some id in {x[0] | some x in found_in}
} if {
	found_in := {[x[0], role(x[1])] | some x in pairs}
}

_reason(id, roles, labels) := {"code": id, "message": sprintf("%s in %s", [object.get(labels, id, id), in_roles(roles)])}
