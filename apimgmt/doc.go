// Package apimgmt is relia's API management: named, versioned APIs
// (`kind: API`) over the gateway's routes, their lifecycle, a catalog and
// developer portal per tenant, and subscriptions that an admin approves,
// every change written to the append-only audit log of the call store.
//
//	kind: API
//	version: relia/v1
//	metadata: {name: orders}
//	spec:
//	  version: v1
//	  owner: team-orders
//	  openapi: orders-openapi.yaml
//	  routes: [orders]
//	  state: published              # draft | published | deprecated | retired
//	  access: {subscription: required}
//
// The gateway asks a Manager about each call (Check, which does not
// allocate): a draft API's routes answer 404 api_draft, a retired API's
// 410 api_retired naming the successor, a deprecated API's responses
// carry Deprecation (RFC 9745) and Sunset (RFC 8594) headers, and an API
// that requires a subscription answers 403 subscription_required,
// subscription_pending or subscription_revoked until the tenant's
// subscription is approved:
//
//	m, err := apimgmt.NewManager(ctx, store, apis, apimgmt.Options{})
//	d := m.Check(route, tenant)
//	if !d.Allow { reject(d.Status, d.Reason, d.Message) }
//	m.Subscribe(ctx, "acme", "orders", "acme", "for checkout")   // pending
//	m.Approve(ctx, "acme", "orders", "alice", "")                 // calls go through
//
// Subscriptions live in the store (a callstore.DB), so gateways sharing
// a PostgreSQL database share them; Run refreshes each Manager's view.
// Handler serves the catalog (JSON), the portal (HTML, through package
// report) and subscription changes on the admin API; Client drives it
// for `relia api`.
package apimgmt
