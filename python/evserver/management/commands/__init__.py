"""The ``runevserver`` command."""
