"""Subcommands of the ``msdnet`` CLI, one module each (discovered by ``msdnet.cli``)."""
