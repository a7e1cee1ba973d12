"""Runnable examples; a package so that the seed's ``--exec "import examples.framework_webpy; ..."``
works from the repository root."""
