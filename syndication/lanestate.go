package syndication

import "sync"

// laneStates is what one lane knows of its users' records in
// adsyn_synd_state, so that it reads the bucket only when another worker may
// have written it since.
//
// Its consumer numbers every delivery of the lane's tasks, redeliveries
// included, and hands out one at a time across all workers (MaxAckPending
// 1). When this lane got delivery n and now gets n+1, no other worker had a
// task of this lane in between, so none wrote the state of one of its users:
// every state write of a task happens before the task is settled or within
// its lease, which ends before the server redelivers. A gap in the numbers
// means another worker had tasks: what this lane knew is forgotten.
// A redelivered task reads the bucket whatever this lane knows (its outcome
// may be unrecorded), and a failed write forgets the user, since it may have
// been applied all the same.
//
// The users of a task are handled at once, so its methods lock.
type laneStates struct {
	mu   sync.Mutex
	last uint64 // consumer sequence of the previous delivery; 0: none
	m    map[string]knownState
}

type knownState struct {
	s   state
	rev uint64 // 0: no record
}

// laneStatesMax bounds a lane's memory; past it an arbitrary user is
// forgotten (and read from the bucket again when its turn comes).
const laneStatesMax = 8192

func newLaneStates() *laneStates { return &laneStates{m: map[string]knownState{}} }

// delivered notes the consumer sequence of a new delivery and forgets
// everything if another worker had a delivery since the previous one.
func (k *laneStates) delivered(seq uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.last == 0 || seq != k.last+1 {
		clear(k.m)
	}
	k.last = seq
}

func (k *laneStates) get(user string) (knownState, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[user]
	return e, ok
}

// put records the state a lane read or wrote, at its revision.
func (k *laneStates) put(user string, s state, rev uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[user]; !ok && len(k.m) >= laneStatesMax {
		for u := range k.m {
			delete(k.m, u)
			break
		}
	}
	k.m[user] = knownState{s: s, rev: rev}
}

// forget drops a user whose record may have changed unseen (a write that
// failed may still have been applied).
func (k *laneStates) forget(user string) {
	k.mu.Lock()
	delete(k.m, user)
	k.mu.Unlock()
}
