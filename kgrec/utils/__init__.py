"""Small helpers shared by every layer (no torch models, no data semantics)."""
