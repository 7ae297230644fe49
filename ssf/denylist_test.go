package ssf_test

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

func TestDenylist(t *testing.T) {
	at := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	drop := at.Add(time.Hour)
	var d ssf.Denylist
	d.RevokeToken("j1", drop)
	d.RevokeSession("s1", drop)
	d.RevokeSubject("u1", at, drop)
	d.RevokeClient("c1", at, drop)
	d.RevokeKey("k1", drop)
	tests := []struct {
		name string
		p    resource.Principal
		want bool
	}{
		{"revoked jti", resource.Principal{TokenID: "j1", IssuedAt: at.Add(time.Minute)}, true},
		{"revoked session", resource.Principal{SessionID: "s1", IssuedAt: at.Add(time.Minute)}, true},
		{"subject, issued before", resource.Principal{Subject: "u1", IssuedAt: at.Add(-time.Second)}, true},
		{"subject, issued the same second", resource.Principal{Subject: "u1", IssuedAt: at}, true},
		{"subject, issued after", resource.Principal{Subject: "u1", IssuedAt: at.Add(time.Second)}, false},
		{"client, issued before", resource.Principal{ClientID: "c1", IssuedAt: at.Add(-time.Minute)}, true},
		{"client, issued after", resource.Principal{ClientID: "c1", IssuedAt: at.Add(time.Second)}, false},
		{"revoked key, issued after", resource.Principal{KeyID: "k1", IssuedAt: at.Add(time.Hour)}, true},
		{"another key", resource.Principal{KeyID: "k2", IssuedAt: at.Add(-time.Hour)}, false},
		{"unrelated", resource.Principal{TokenID: "j2", SessionID: "s2", Subject: "u2", ClientID: "c2", KeyID: "k2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Revoked(&tt.p); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if n := d.Sweep(drop); n != 0 || d.Len() != 5 {
		t.Errorf("sweep at drop time: removed %d, left %d; want 0 and 5", n, d.Len())
	}
	if n := d.Sweep(drop.Add(time.Second)); n != 5 || d.Len() != 0 {
		t.Errorf("sweep after: removed %d, left %d; want 5 and 0", n, d.Len())
	}
}
