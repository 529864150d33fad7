package config_test

import (
	"fmt"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// A kind's loader decodes its documents strictly, then checks what only
// it knows with Errorf, which finds the field's position by its path.
func Example() {
	src := []byte(`kind: Budget
version: relia/v1
spec:
  objective: 99.9%
  period: 4w
---
kind: Budget
version: relia/v1
spec:
  objective: 100%
  perod: 30d
`)
	type budget struct {
		Spec struct {
			Objective config.Ratio  `yaml:"objective" config:"required"`
			Period    time.Duration `yaml:"period"`
		} `yaml:"spec"`
	}
	docs, err := config.Parse("budget.yaml", src)
	if err != nil {
		panic(err)
	}
	for _, d := range docs {
		var b budget
		if err := d.Decode(&b); err != nil {
			fmt.Println(err)
			continue
		}
		if b.Spec.Objective >= 1 {
			fmt.Println(d.Errorf("spec.objective", "%v is not in (0, 1)", b.Spec.Objective))
			continue
		}
		fmt.Printf("%v over %s\n", b.Spec.Objective, config.FormatDuration(b.Spec.Period))
	}
	// Output:
	// 99.9% over 4w
	// budget.yaml:11:3: spec.perod: unknown field (did you mean period?)
}
