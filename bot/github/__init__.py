"""GitHub access: narrow interfaces, the PyGithub implementation, GitHub in memory, payloads."""
