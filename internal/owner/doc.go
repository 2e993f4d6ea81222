// Package owner is the contract of the goroutines that own mutable state (the occupancy
// engine, the alert manager, the live feed): others ask them to change something through a
// command round-trip (Commands), learn of a change through a coalescing signal (Signal), and
// an owner that reacts to a busy source paces itself (Pacer). docs/architecture.md, "Owners".
package owner
