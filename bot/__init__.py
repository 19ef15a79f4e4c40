"""flowbot's GitHub-facing service: webhooks, GitHub access, commands, pages."""
