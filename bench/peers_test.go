package bench

import (
	_ "github.com/failsafe-go/failsafe-go"
	_ "github.com/relia-dev/relia/resilience"
	_ "github.com/sony/gobreaker/v2"
)
