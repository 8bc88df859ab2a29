"""Examples of services built on hookstream; type-checked with the rest of the code."""
