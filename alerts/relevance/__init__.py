"""SME relevance: product families, rules as data, a pure engine that explains itself."""
