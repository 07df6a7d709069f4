"""Results as documents: the versioned JSON, the metric registry, comparison and the
regression gate, sweeps, and the letter's published numbers.  Prints nothing."""
