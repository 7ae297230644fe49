package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Run runs the conformance suite against the stores open returns. Each call
// to open must return a new, empty store and arrange for it to be closed when
// t's test ends (with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Users", userCases},
		{"Clients", clientCases},
		{"RefreshTokens", tokenCases},
		{"RotateRefreshToken", rotateCases},
		{"RevokeRefreshFamily", revokeCases},
		{"SigningKeys", keyCases},
		{"ListSessions", sessionCases},
		{"RevokeUserSessions", revokeUserCases},
		{"AuthCodes", codeCases},
		{"Consent", consentCases},
		{"AccessTokens", accessTokenCases},
		{"Events", eventCases},
		{"Throttles", throttleCases},
		{"UseJTI", jtiCases},
		{"JoinTokens", joinTokenCases},
		{"DeleteExpired", gcCases},
		{"Concurrency", concurrencyCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
			}
		})
	}
}

// testCase is one test of the suite, run against a new, empty store.
type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// t0 is the suite's epoch. Every time the suite stores is a whole number of
// milliseconds after it.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 891_000_000, time.UTC)

// errUpdate is what the suite's failing update callbacks return.
var errUpdate = errors.New("storetest: update refused")

// check reports an error unless got equals want. A nil and an empty slice are
// alike, and times compare with time.Equal; every time in got must also be
// in UTC.
func check[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	for _, msg := range nonUTC(reflect.ValueOf(got), "") {
		t.Errorf("%s: %s", what, msg)
	}
	if !reflect.DeepEqual(normalized(reflect.ValueOf(got)).Interface(), normalized(reflect.ValueOf(want)).Interface()) {
		t.Errorf("%s: got %s, want %s", what, show(got), show(want))
	}
}

// checkErr reports an error unless errors.Is(err, want).
func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

// must stops the test if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: got error %v, want nil", what, err)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// normalized returns a copy of v with every time in UTC and every empty slice
// nil, so that reflect.DeepEqual compares only what a store must preserve.
func normalized(v reflect.Value) reflect.Value {
	switch {
	case v.Type() == timeType:
		return reflect.ValueOf(v.Interface().(time.Time).UTC())
	case v.Kind() == reflect.Pointer && !v.IsNil():
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(normalized(v.Elem()))
		return p
	case v.Kind() == reflect.Slice && v.Len() == 0:
		return reflect.Zero(v.Type())
	case v.Kind() == reflect.Slice:
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(normalized(v.Index(i)))
		}
		return s
	case v.Kind() == reflect.Struct:
		s := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			s.Field(i).Set(normalized(v.Field(i)))
		}
		return s
	}
	return v
}

// nonUTC describes each time in v that is not in UTC, naming it by its path
// (like "Old.CreatedAt" or "[2].RetiredAt").
func nonUTC(v reflect.Value, path string) []string {
	switch {
	case v.Type() == timeType:
		if loc := v.Interface().(time.Time).Location(); loc != time.UTC {
			return []string{fmt.Sprintf("%s: got location %v, want UTC", path, loc)}
		}
	case v.Kind() == reflect.Pointer && !v.IsNil():
		return nonUTC(v.Elem(), path)
	case v.Kind() == reflect.Slice:
		var paths []string
		for i := range v.Len() {
			paths = append(paths, nonUTC(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return paths
	case v.Kind() == reflect.Struct:
		var paths []string
		for i := range v.NumField() {
			name := v.Type().Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			paths = append(paths, nonUTC(v.Field(i), name)...)
		}
		return paths
	}
	return nil
}

// show formats a record for a failure message, times as RFC 3339 and
// optional times by value.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// checkNil reports an error unless got is nil exactly when want is: check
// treats a nil and an empty slice alike, and an optional document such as a
// client's JWKS must keep them apart.
func checkNil(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Errorf("%s: got nil %t, want nil %t", what, got == nil, want == nil)
	}
}
