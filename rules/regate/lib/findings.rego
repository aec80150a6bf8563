# METADATA
# title: regate.lib.findings
# description: |
#   Helpers over input.findings (added by regate's detectors, Contract 1):
#   select findings by category, say where they are, and turn them into
#   reasons with one entry per detector.
package regate.lib.findings

import rego.v1

# of_category(category) is the set of input findings of that category.
of_category(category) := {f | some f in object.get(input, "findings", []); f.category == category}

# detectors(fs) is the set of detector ids among findings fs.
detectors(fs) := {f.detector | some f in fs}

# role(path) is the role of the message a finding's JSON pointer points into
# ("/messages/2/content/0/text" -> input.messages[2].role), else "message".
role(path) := r if {
	parts := split(path, "/")
	parts[1] == "messages"
	regex.match(`^[0-9]+$`, parts[2])
	r := input.messages[to_number(parts[2])].role
} else := "message"

# where(fs) says in which messages findings fs are: "a user message",
# "assistant, user messages".
where(fs) := sprintf("a %s message", [r]) if {
	roles := {role(f.path) | some f in fs}
	count(roles) == 1
	some r in roles
} else := sprintf("%s messages", [concat(", ", sort({role(f.path) | some f in fs}))])

# reason(id, fs, labels) is the reason for detector id's findings among fs:
# {"code": id, "message": "<label> in <where>"}; labels maps detector ids to
# human names (the id itself when missing).
reason(id, fs, labels) := {"code": id, "message": sprintf("%s in %s", [object.get(labels, id, id), where(same)])} if {
	same := {f | some f in fs; f.detector == id}
}

# reasons(fs, labels) is one reason per detector among fs.
reasons(fs, labels) := {reason(id, fs, labels) | some id in detectors(fs)}
