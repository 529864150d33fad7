// Package capacity answers "how many replicas, and will the autoscaler
// keep up?": it measures a service's knee under stepped load judged by
// SLOs, fits the Universal Scalability Law to the steps, plans replicas
// for a peak with headroom and failure tolerance, writes the autoscaler
// manifests (HPA, KEDA ScaledObject, VPA, PodDisruptionBudget) and
// simulates the autoscaler through a traffic curve.
//
//	fit, err := capacity.FitUSL([]capacity.Point{{N: 1, X: 95}, {N: 2, X: 180}, {N: 4, X: 320}, {N: 8, X: 480}, {N: 16, X: 560}})
//	if err != nil {
//		return err
//	}
//	n, x := fit.Model.Peak() // the concurrency of the highest throughput, and that throughput
//	fmt.Println(fit.Verdict) // "the fit explains the data well: R² 0.998, ..."
package capacity
