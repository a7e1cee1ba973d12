"""A module whose import fails: the user's bug, shown with its traceback."""

raise RuntimeError("broken-on-purpose")
