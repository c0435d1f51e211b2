"""Command-line interfaces: ``coalmine`` and ``kubectl coalmine``."""
