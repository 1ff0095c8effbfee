package auth

import (
	"context"
	"errors"
	"fmt"
)

// Key management by an operator at the machine (adsyn keys): the way back
// when every admin key is lost. The operator holds no key, so the audit log
// names them by actor, such as "cli@host".

// CreateAs makes a key like Create and records who made it. A key whose
// making cannot be recorded is revoked again: no key without its trace.
func (k *Keys) CreateAs(ctx context.Context, actor string, role Role, owner, name string) (string, Principal, error) {
	secret, p, err := k.Create(ctx, role, owner, name)
	if err != nil {
		return "", Principal{}, err
	}
	if err := k.audit.RecordActor(ctx, actor, "create key "+string(role), p.KeyID); err != nil {
		if rerr := k.Revoke(ctx, p.KeyID); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", Principal{}, fmt.Errorf("auth: create key %s: %w", p.KeyID, err)
	}
	return secret, p, nil
}

// RevokeAs revokes the key with id and records who did.
func (k *Keys) RevokeAs(ctx context.Context, actor, id string) error {
	if err := k.Revoke(ctx, id); err != nil {
		return err
	}
	if err := k.audit.RecordActor(ctx, actor, "revoke key", id); err != nil {
		return fmt.Errorf("auth: revoke %s: revoked, not recorded: %w", id, err)
	}
	return nil
}
