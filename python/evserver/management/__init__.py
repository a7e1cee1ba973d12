"""Django management commands of the ``evserver`` Django app (``runevserver``)."""
