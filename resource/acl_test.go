package resource

import (
	"errors"
	"testing"
)

func TestACLPolicy(t *testing.T) {
	pol := ACLPolicy{AdminRoles: []string{"admin"}}
	acl := ACL{Owner: "alice", Grants: []Grant{
		{Subject: "bob", Actions: []Action{Read}},
		{Role: "auditor", Actions: []Action{Read}},
		{Subject: "dave", Actions: []Action{Read, Write}},
	}}
	alice := &Principal{Subject: "alice"}
	bob := &Principal{Subject: "bob", Roles: []string{"consumer"}}
	carol := &Principal{Subject: "carol", Roles: []string{"consumer", "admin"}}
	erin := &Principal{Subject: "erin", Roles: []string{"auditor"}}
	dave := &Principal{Subject: "dave"}
	mallory := &Principal{Subject: "mallory", Roles: []string{"consumer"}}
	noSubject := &Principal{Roles: []string{"auditor"}}
	tests := []struct {
		name string
		p    *Principal
		act  Action
		want bool
	}{
		{"owner reads", alice, Read, true},
		{"owner shares", alice, Share, true},
		{"granted user reads", bob, Read, true},
		{"granted user cannot write", bob, Write, false},
		{"granted user cannot share", bob, Share, false},
		{"admin override", carol, Share, true},
		{"granted role reads", erin, Read, true},
		{"granted role cannot write", erin, Write, false},
		{"user with two actions writes", dave, Write, true},
		{"stranger reads", mallory, Read, false},
		{"principal without subject", noSubject, Read, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pol.Allows(tt.p, acl, tt.act); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			err := pol.Check(tt.p, acl, tt.act)
			if tt.want != (err == nil) || !tt.want && !errors.Is(err, ErrForbidden) {
				t.Fatalf("got Check error %v, want allowed=%v with ErrForbidden on denial", err, tt.want)
			}
		})
	}
	if err := pol.Check(nil, acl, Read); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("got %v for no principal, want ErrUnauthenticated", err)
	}
	if (ACLPolicy{}).Allows(carol, acl, Read) {
		t.Fatalf("got admin allowed without AdminRoles in the policy")
	}
}
