package authserver

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newSET describes the stored event e as the payload of a Security Event
// Token (RFC 8417) for the receiver aud on stream streamID:
//
//   - the event type is e.Type, its payload e.Data (a JSON object of CAEP
//     members) plus "event_timestamp" (CAEP §2) from e.CreatedAt;
//   - "sub_id" (SSF 1.0 §3, RFC 9493) names a user by iss_sub, a session,
//     a client or a token (its jti) by opaque, combined with the complex
//     format when the event names a user with a session or client;
//   - "jti" is setID(e.ID, streamID), unique per stream, and "txn" the
//     event's ID, the same on every stream.
//
// The SET's "iat" is the event's time, so a SET signed again on redelivery
// has the same claims.
func newSET(e store.Event, issuer, aud, streamID string) secevent.SET {
	payload := map[string]json.RawMessage{}
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &payload); err != nil {
			payload = map[string]json.RawMessage{} // never stored; keep the event deliverable
		}
	}
	payload["event_timestamp"] = json.RawMessage(strconv.FormatInt(e.CreatedAt.Unix(), 10))
	body, _ := json.Marshal(payload)
	return secevent.SET{
		Issuer: issuer, IssuedAt: e.CreatedAt.Unix(), ID: setID(e.ID, streamID), Audience: []string{aud},
		TxN: strconv.FormatInt(e.ID, 10), Subject: subjectOf(e, issuer),
		Events: map[string]json.RawMessage{e.Type: body},
	}
}

// subjectOf is the subject identifier of e.
func subjectOf(e store.Event, issuer string) *secevent.SubjectID {
	opaque := func(id string) *secevent.SubjectID {
		if id == "" {
			return nil
		}
		return &secevent.SubjectID{Format: secevent.FormatOpaque, ID: id}
	}
	switch e.Type {
	case secevent.TokenRevoked:
		return opaque(e.TokenID)
	case secevent.ClientDisabled:
		return &secevent.SubjectID{Format: secevent.FormatComplex, Application: opaque(e.ClientID)}
	case secevent.KeyRetired:
		var d secevent.EventPayload
		json.Unmarshal(e.Data, &d)
		return opaque(d.KeyID)
	}
	var user *secevent.SubjectID
	if e.Subject != "" {
		user = &secevent.SubjectID{Format: secevent.FormatIssSub, Iss: issuer, Sub: e.Subject}
	}
	if e.SessionID == "" && e.ClientID == "" {
		return user
	}
	return &secevent.SubjectID{Format: secevent.FormatComplex, User: user,
		Session: opaque(e.SessionID), Application: opaque(e.ClientID)}
}

// setID is the jti of the SET for event id on a stream. Acknowledging it
// (RFC 8936 §2.4 "ack") tells the transmitter the receiver has every event
// up to id.
func setID(id int64, streamID string) string {
	return strconv.FormatInt(id, 10) + "." + streamID
}

// parseSetID is setID's inverse.
func parseSetID(jti string) (id int64, streamID string, err error) {
	n, sid, ok := strings.Cut(jti, ".")
	if ok {
		id, err = strconv.ParseInt(n, 10, 64)
	}
	if !ok || err != nil || id <= 0 {
		return 0, "", fmt.Errorf("not a SET ID of this transmitter: %q", jti)
	}
	return id, sid, nil
}
