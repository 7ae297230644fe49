// Package demo holds the example services that `gatehouse dev` and the
// end-to-end tests run behind the gateway, and that `gatehouse demo orders`
// and `gatehouse demo consumers` run as processes of their own:
//
//   - orders (NewOrders): a small FTGO-style order service whose per-object
//     rule — an order is readable by its owner and by admins — is enforced
//     in the service from the verified token, not at the gateway;
//   - consumers (NewConsumers): tells the caller who the token says it is.
//
// They import only what a user's service would (package resource), so they
// are the proof that the library is enough.
package demo
