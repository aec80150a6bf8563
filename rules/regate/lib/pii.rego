# METADATA
# title: regate.lib.pii
# description: |
#   Personal data found by detectors of category "pii": redactions that replace
#   each finding with a placeholder ("[EMAIL]"), and one reason per detector.
#   Placeholders come from default_replacements, overridden per detector id by
#   data.regate.policy.replacements; an unknown id "pii.passport" gives "[PASSPORT]".
package regate.lib.pii

import rego.v1

import data.regate.lib.findings

default_replacements := {
	"pii.email": "[EMAIL]",
	"pii.phone": "[PHONE]",
	"pii.ssn": "[SSN]",
	"pii.card": "[CARD]",
	"pii.iban": "[IBAN]",
}

labels := {
	"pii.email": "email address",
	"pii.phone": "phone number",
	"pii.ssn": "US social security number",
	"pii.card": "payment card number",
	"pii.iban": "IBAN",
}

default _policy := {}

_policy := data.regate.policy

replacements := object.union(default_replacements, object.get(_policy, "replacements", {}))

# replacement(id) is the placeholder that replaces a finding of detector id.
replacement(id) := object.get(replacements, id, _derived_placeholder(id))

_derived_placeholder(id) := sprintf("[%s]", [upper(parts[count(parts) - 1])]) if parts := split(id, ".")

# reasons is one reason per detector that found personal data:
# {"code": "pii.email", "message": "email address in a user message"}.
# A policy that redacts reports them with the redactions; a strict policy
# denies with them.
reasons := findings.category_reasons("pii", labels)

# _placeholders maps each pii detector id of the input to its placeholder:
# reasons has one entry per detector, so replacement() runs once per
# detector rather than once per finding.
_placeholders := {r.code: replacement(r.code) | some r in reasons}

# redactions is one Contract 2 redaction per pii finding, as an array sorted
# by path, start, end and replacement, without duplicates: the order
# regate.lib.decision gives a set of redactions, built in two passes over the
# findings. Findings of different detectors may overlap (a phone number
# inside an e-mail address); the enforcer merges overlapping spans and the
# wider, earlier one's replacement wins. (Dropping contained findings here
# would cost a comparison per pair of findings: too slow for a pasted
# contact list.)
redactions := [{"path": k[0], "start": k[1], "end": k[2], "replacement": k[3]} | some k in spans] if {
	placeholders := _placeholders
	spans := sort({[f.path, f.start, f.end, placeholders[f.detector]] |
		some f in input.findings
		f.category == "pii"
	})
}
