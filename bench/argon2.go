package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/password"
)

// argon2Samples is how many times the password cost is measured; the header
// shows the medians.
const argon2Samples = 9

// passwordCost is what a password grant costs at the real parameters,
// measured apart from the scenarios: the argon2id check alone, and a whole
// password grant through the token endpoint of the gateway scenarios' stack,
// which hashes with password.Default.
type passwordCost struct {
	params          password.Params
	verify          time.Duration // wall time of one password.Verify
	verifyCPU       time.Duration // process CPU time during it
	grant           time.Duration // wall time of one password grant over HTTP
	verifyN, grantN int
}

// measurePasswordCost times argon2Samples calls of password.Verify at
// password.Default, one after another, then argon2Samples password grants
// against p's stack.
func measurePasswordCost(ctx context.Context, p *parts) (passwordCost, error) {
	c := passwordCost{params: password.Default, verifyN: argon2Samples, grantN: argon2Samples}
	pw := rand.Text()
	hash, err := password.Hash(pw, c.params)
	if err != nil {
		return c, err
	}
	var wall, cpu, grant []time.Duration
	for range argon2Samples {
		cpu0, t0 := processCPU(), time.Now()
		if ok, _, err := password.Verify(pw, hash, c.params); !ok || err != nil {
			return c, fmt.Errorf("argon2id: the password does not verify against its own hash (%v)", err)
		}
		wall, cpu = append(wall, time.Since(t0)), append(cpu, processCPU()-cpu0)
	}
	for range argon2Samples {
		t0 := time.Now()
		if _, err := passwordGrant(ctx, p.tokenURL, p.clientSecret, p.userPassword); err != nil {
			return c, err
		}
		grant = append(grant, time.Since(t0))
	}
	c.verify, c.verifyCPU, c.grant = median(wall), median(cpu), median(grant)
	return c, nil
}

// String is the header line.
func (c passwordCost) String() string {
	return fmt.Sprintf("argon2id at password.Default (m=%d KiB, t=%d, p=%d): one password check %s wall, %s CPU "+
		"(median of %d); one whole password grant over HTTP %s wall (median of %d, one at a time, idle otherwise). "+
		"The authorization-server scenarios' stacks hash with cheap parameters instead, to mint the refresh token pool.",
		c.params.Memory, c.params.Time, c.params.Threads, round3(c.verify), round3(c.verifyCPU), c.verifyN,
		round3(c.grant), c.grantN)
}
