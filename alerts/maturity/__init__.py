"""The maturity scan: a short self-assessment, its scoring and anonymous statistics."""
