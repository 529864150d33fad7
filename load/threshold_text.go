package load

// FormatValue writes a value of the threshold's metric in its unit, as
// the terminal summary prints observed values ("412.30ms", "99.5%",
// "48.2/s"), so that the HTML report and the terminal print one figure
// the same way. It formats the threshold's own limit (t.Value) too.
func (t Threshold) FormatValue(v float64) string { return formatValue(t, v) }
