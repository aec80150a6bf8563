# METADATA
# title: regate.lib.decision
# description: |
#   Assemble a Contract 2 decision from its parts so that every policy obeys
#   the action rule: deny if any deny reason, else route if a route, else
#   redact if any redaction, else allow.
#
#   decide(parts) takes an object whose keys are all optional:
#     deny        reasons that refuse the request (set or array)
#     status      HTTP status of a denial (default 403)
#     reasons     reasons reported when the request goes through (pii, route)
#     redactions  Contract 2 redactions (a set, or an array already in order)
#     route       ordered route targets [{"provider", "model"}]
#     limits      {"max_tokens": n, "quotas": [...]}
#   A denial carries only its deny reasons and status; otherwise reasons come
#   sorted by code, a set of redactions sorted by path and offset (an array
#   keeps its order: regate.lib.pii.redactions is already sorted, and sorting
#   it again would cost a pass per finding), and redactions, route and limits
#   appear only when non-empty. Sets become sorted arrays, so OPA and regorus
#   return the same JSON.
package regate.lib.decision

import rego.v1

# reason(code, message) builds one reason object.
reason(code, message) := {"code": code, "message": message}

# action(parts) is the action the parts call for (the action rule).
action(parts) := "deny" if {
	count(object.get(parts, "deny", [])) > 0
} else := _effect(count(object.get(parts, "route", [])), count(object.get(parts, "redactions", [])))

# _effect is the action of a request that goes through.
_effect(n_targets, n_redactions) := "route" if n_targets > 0

else := "redact" if n_redactions > 0

else := "allow"

# decide(parts) is the Contract 2 decision for parts (see the package description).
decide(parts) := d if {
	deny := object.get(parts, "deny", [])
	count(deny) > 0
	d := {"action": "deny", "reasons": sorted_reasons(deny), "status": object.get(parts, "status", 403)}
} else := object.union(base, present) if {
	targets := object.get(parts, "route", [])
	redactions := object.get(parts, "redactions", [])
	base := {
		"action": _effect(count(targets), count(redactions)),
		"reasons": sorted_reasons(object.get(parts, "reasons", [])),
	}
	optional := {"redactions": redactions, "route": targets, "limits": object.get(parts, "limits", {})}
	present := {key: _shape(key, value) | some key, value in optional; count(value) > 0}
}

_shape("redactions", rs) := rs if is_array(rs)

else := sorted_redactions(rs)

_shape("route", targets) := {"targets": _ordered(targets)}

_shape("limits", limits) := limits

# A route is an ordered list; a set of targets is sorted by provider, model.
_ordered(targets) := targets if is_array(targets)

else := [x[2] | some x in sort([[t.provider, t.model, t] | some t in targets])]

# sorted_reasons(rs) is rs as an array sorted by code, then message.
sorted_reasons(rs) := [x[2] | some x in sort([[r.code, object.get(r, "message", ""), r] | some r in rs])]

# sorted_redactions(rs) is rs as an array sorted by path, start, end, pattern.
sorted_redactions(rs) := [x[4] |
	some x in sort([[r.path, object.get(r, "start", -1), object.get(r, "end", -1), object.get(r, "pattern", ""), r] |
		some r in rs
	])
]
