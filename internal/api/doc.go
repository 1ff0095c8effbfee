// Package api holds what every JSON endpoint on the API port shares: the error
// body {"error":{"code","message"}}, JSON writing and size-limited, strict
// body decoding. Feature packages register their routes on one http.ServeMux.
package api
