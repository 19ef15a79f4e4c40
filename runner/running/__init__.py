"""Running flows: admission, the engine, task attempts, rendering, logs and workspaces."""
