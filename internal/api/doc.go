// Package api holds what every JSON endpoint on the API port shares: the error
// body {"error":{"code","message"}}, JSON writing and size-limited, strict
// body decoding, and the OpenAPI 3.1 document of the whole API (openapi.json,
// served at /v1/openapi.json). Feature packages register their routes on one
// Router, which lists them so that a test can hold the document to them.
package api
