module github.com/relia-dev/relia/bench

go 1.26.0

replace github.com/relia-dev/relia => ../

require (
	github.com/failsafe-go/failsafe-go v0.9.8
	github.com/relia-dev/relia v0.0.0-00010101000000-000000000000
	github.com/sony/gobreaker/v2 v2.4.0
)

require github.com/bits-and-blooms/bitset v1.24.4 // indirect
