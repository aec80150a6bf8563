# METADATA
# title: regate.lib.secrets
# description: |
#   Credentials found by detectors of category "secret" (cloud and provider
#   keys, tokens, private key blocks, JWTs): one deny reason per detector.
#   Secrets are refused rather than redacted: a leaked key must be rotated,
#   and the caller should learn that it sent one.
package regate.lib.secrets

import rego.v1

import data.regate.lib.findings

labels := {
	"secret.aws_access_key": "AWS access key id",
	"secret.aws_secret_key": "AWS secret access key",
	"secret.gcp_api_key": "Google API key",
	"secret.gcp_service_account": "Google Cloud service-account key",
	"secret.openai_key": "OpenAI API key",
	"secret.anthropic_key": "Anthropic API key",
	"secret.github_token": "GitHub token",
	"secret.slack_token": "Slack token",
	"secret.slack_webhook": "Slack webhook URL",
	"secret.stripe_key": "Stripe live key",
	"secret.huggingface_token": "Hugging Face token",
	"secret.private_key": "private key block",
	"secret.jwt": "JSON Web Token",
}

# deny_reasons is one reason per detector that found a secret:
# {"code": "secret.aws_access_key", "message": "AWS access key id in a user message"}.
deny_reasons := findings.category_reasons("secret", labels)
