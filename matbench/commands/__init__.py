"""The sub-commands, one file each: ``register(subparsers)`` and a lazy handler (see ``registry.COMMANDS``)."""
