// Package webhook signs and verifies webhooks as Standard Webhooks v1.0.0
// specifies: the webhook-id, webhook-timestamp and webhook-signature
// headers, whsec_ secrets, HMAC-SHA256 signatures. It is a pure core: plain
// values in and out, no network (neither nats nor fasthttp, nor net/http),
// so partners' receivers and tests can use it as it is.
package webhook
