"""flowbot's runner: flows, validation, execution, scheduling and state.

Nothing in this package knows about GitHub; it never imports ``bot``.
"""
