// Package syndication sends users' consented public profile data to partner
// sites and takes it back when consent goes: the partner registry, the one
// pure function that builds what a partner may see (Build), the delivery
// worker, the pull feed, the delivery log and the demo partner. Standard
// Webhooks signing is the pure subpackage webhook.
//
// The adsyn_profiles bucket, which package profiles owns, is the source of
// truth; syndication reads it only through a profiles.Reader. Workers
// follow its change feed as "adsyn_synd" (profiles.Reader.Follow) and turn
// the changes waiting together (while changes keep coming, those of the
// next 20 ms too) into one task per partner and shard in the work queue
// ADSYN_SYND_OUT (adsyn.synd.out.<partner>.<shard>); a change is
// acknowledged only once every task is stored. A task means "bring this
// partner up to date on these users, each at least to this version": the
// lane builds the view of the newest profile, compares its hash with
// adsyn_synd_state (<partner>.<user>) and sends an upsert or a deletion only
// when something changed; partners whose contracts give the same view share
// its encoding. A lane delivers the distinct users of a task at once, up
// to the partner's concurrency (WithPartnerConcurrency). It remembers the
// states it read and wrote while its consumer's deliveries stay
// consecutive (no other worker had one of its tasks meanwhile), and sends
// its log entries and state writes without waiting, confirming them all
// before the task is acknowledged.
//
// Order and isolation: each shard of a partner is a durable consumer with one
// message in flight across all workers, so deliveries of one (partner, user)
// never overlap and a version older than what the partner has is never sent.
// A lane holds its task under a lease (the ack wait, renewed while it works)
// and does every side effect under a deadline inside it, so a stalled worker
// cannot act after another took over. A slow or dead partner holds only its
// own lanes. State writes are compare-and-set; a first delivery is recorded
// as pending before it is sent, and a redelivered task does not trust the
// state, so a crash never makes an erasure skip a partner that got data.
//
// Email, phone and the resume cannot reach a partner: View has no field for
// them and Build copies from an allowlist (P2, P5). Tasks, dead letters and
// the delivery log carry ids, versions and field names, never profile values;
// only the pull feed holds views, exactly what pull partners may read.
//
// The worker's files follow a change: fanout.go (one task per partner and
// shard), lane.go and lease.go (one task at a time per shard), lanestate.go
// (what a lane knows of its users' states), delivery.go (what to send),
// request.go (the signed HTTP request and its retries), outcome.go
// (recording and settling), recent.go (the profiles seen on the feed).
//
// Tasks holding several users ("b") are read by this version on; an older
// worker would drop them as malformed, so every worker of a deployment is
// upgraded before this one runs.
//
// A Worker's Run is called once; run one Worker per process (its metrics go
// to one registry) and as many processes as wanted.
package syndication
