package saga

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// Details is what every step of an order is given: the order, and its id
// (the job's), by which every step is idempotent.
type Details struct {
	ID    string `json:"id"`
	Order Order  `json:"order"`
}

// Activities are the order's steps and their undos, acting on the shop's
// systems. Each is idempotent per order, as an activity that Temporal may
// retry must be: a second call for the same order does nothing more.
type Activities struct {
	Inventory *Inventory
	Payments  *Payments
	// PackTime is how long packing one item takes when shipping (zero:
	// none), a stand-in for slow work: Ship heartbeats after each item.
	PackTime time.Duration
}

// Reserve reserves the order's items and returns the reservation's id.
// Items out of stock fail it for good (no retry can fix that).
func (a *Activities) Reserve(ctx context.Context, d Details) (string, error) {
	if err := a.Inventory.Reserve(d.ID, d.Order.Items); err != nil {
		return "", permanent(err, "out-of-stock")
	}
	return "res-" + d.ID, nil
}

// Charge charges the order's amount to its customer and returns the
// payment's id. A declined payment fails it for good.
func (a *Activities) Charge(ctx context.Context, d Details) (string, error) {
	if err := a.Payments.Charge(d.ID, d.Order.Customer, d.Order.Amount); err != nil {
		return "", permanent(err, "payment-declined")
	}
	return "pay-" + d.ID, nil
}

// Ship packs the order's items, one after the other, and hands the parcel
// over; it returns the tracking number. It heartbeats after each item, so
// that a cancellation reaches it and an attempt on another worker resumes
// after the items already packed.
func (a *Activities) Ship(ctx context.Context, d Details) (string, error) {
	packed := 0
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &packed)
	}
	for ; packed < len(d.Order.Items); packed++ {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(a.PackTime):
		}
		activity.RecordHeartbeat(ctx, packed+1)
	}
	if err := a.Inventory.Ship(d.ID); err != nil {
		return "", permanent(err, "not-reserved")
	}
	return "trk-" + d.ID, nil
}

// Refund refunds the order's payment, if there is one.
func (a *Activities) Refund(ctx context.Context, d Details) error {
	a.Payments.Refund(d.ID)
	return nil
}

// Release puts the order's reserved items back in stock, if there are
// any.
func (a *Activities) Release(ctx context.Context, d Details) error {
	a.Inventory.Release(d.ID)
	return nil
}

func permanent(err error, kind string) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), kind, err)
}

// ErrOutOfStock and ErrDeclined are the business failures of the shop's
// systems.
var (
	ErrOutOfStock = errors.New("out of stock")
	ErrDeclined   = errors.New("payment declined")
)

// Inventory is an in-memory warehouse: units in stock by SKU, and what
// each order has reserved. It stands for the shop's inventory service. It
// is safe for concurrent use.
type Inventory struct {
	mu     sync.Mutex
	stock  map[string]int
	orders map[string]*reservation
}

// reservation is what an order took out of stock, and what became of it.
type reservation struct {
	items             []Item
	released, shipped bool
}

// NewInventory returns an inventory with stock units of each SKU.
func NewInventory(stock map[string]int) *Inventory {
	inv := &Inventory{stock: map[string]int{}, orders: map[string]*reservation{}}
	for sku, n := range stock {
		inv.stock[sku] = n
	}
	return inv
}

// Stock returns the units of sku in stock, not reserved.
func (inv *Inventory) Stock(sku string) int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.stock[sku]
}

// Shipped reports whether order was shipped.
func (inv *Inventory) Shipped(order string) bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	r := inv.orders[order]
	return r != nil && r.shipped
}

// Reserve takes order's items out of stock, all or none; an order seen
// already is left as it is. It returns an error wrapping ErrOutOfStock
// when an item lacks units.
func (inv *Inventory) Reserve(order string, items []Item) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if _, ok := inv.orders[order]; ok {
		return nil
	}
	for _, it := range items {
		if inv.stock[it.SKU] < it.Quantity {
			return fmt.Errorf("%w: %d of %q ordered, %d in stock", ErrOutOfStock, it.Quantity, it.SKU, inv.stock[it.SKU])
		}
	}
	for _, it := range items {
		inv.stock[it.SKU] -= it.Quantity
	}
	inv.orders[order] = &reservation{items: items}
	return nil
}

// Release puts order's reserved items back in stock, unless they were
// shipped; releasing twice, or an order never reserved, does nothing.
func (inv *Inventory) Release(order string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	r := inv.orders[order]
	if r == nil || r.released || r.shipped {
		return
	}
	for _, it := range r.items {
		inv.stock[it.SKU] += it.Quantity
	}
	r.released = true
}

// Ship marks order's reservation as shipped; it fails for an order not
// reserved, or released.
func (inv *Inventory) Ship(order string) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	r := inv.orders[order]
	if r == nil || r.released {
		return fmt.Errorf("order %s has no reservation to ship", order)
	}
	r.shipped = true
	return nil
}

// Payments is an in-memory payment service: customers' balances in cents
// and the charges of orders. It is safe for concurrent use.
type Payments struct {
	mu       sync.Mutex
	balances map[string]int64
	charges  map[string]*charge
}

// charge is what an order was charged, and whether it was refunded.
type charge struct {
	customer string
	amount   int64
	refunded bool
}

// NewPayments returns a payment service with these customers' balances.
func NewPayments(balances map[string]int64) *Payments {
	p := &Payments{balances: map[string]int64{}, charges: map[string]*charge{}}
	for c, b := range balances {
		p.balances[c] = b
	}
	return p
}

// Balance returns customer's balance in cents.
func (p *Payments) Balance(customer string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.balances[customer]
}

// Charged returns what order was charged and not refunded.
func (p *Payments) Charged(order string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.charges[order]; c != nil && !c.refunded {
		return c.amount
	}
	return 0
}

// Charge takes amount from customer's balance for order; an order charged
// already is left as it is. It returns an error wrapping ErrDeclined when
// the balance is short.
func (p *Payments) Charge(order, customer string, amount int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.charges[order]; ok {
		return nil
	}
	if p.balances[customer] < amount {
		return fmt.Errorf("%w: %d cents for customer %q, whose balance is %d", ErrDeclined, amount, customer, p.balances[customer])
	}
	p.balances[customer] -= amount
	p.charges[order] = &charge{customer: customer, amount: amount}
	return nil
}

// Refund gives order's charge back to its customer; refunding twice, or
// an order never charged, does nothing.
func (p *Payments) Refund(order string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.charges[order]
	if c == nil || c.refunded {
		return
	}
	p.balances[c.customer] += c.amount
	c.refunded = true
}
