"""The ``raysvc`` command line: the composition root.

It owns argument parsing and wiring only. Each subcommand lives in ``raysvc.commands.<name>`` and
exposes ``register(subparsers)``; the packages it wires (``rayservice``, ``webhook``, ``certs``,
``localkube``, ...) never import this package.
"""

__all__: list[str] = []
