"""The flow model: flows as data, image references and sizes, input patterns (pure)."""
