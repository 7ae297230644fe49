package store

import "context"

// EventNotifier is an optional capability of a Store: it tells a reader
// following the event log that events were appended, by any process that
// shares the store. The authorization server wakes its waiting long polls
// with it, so a receiver connected to one replica learns at once of an
// event another replica wrote. Check for it with a type assertion.
type EventNotifier interface {
	// ListenEvents calls notify whenever events may have been appended,
	// until ctx is done or the notification channel fails; it then returns
	// ctx's error or the failure. It calls notify once as soon as it
	// listens, since events appended before that were not announced to it.
	// notify must not block.
	ListenEvents(ctx context.Context, notify func()) error
}
