"""One module per verb; each has ``register(subparsers)`` and returns an exit code."""
