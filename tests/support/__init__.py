"""Helpers shared by the test files, imported as ``tests.support.<module>`` (``tests`` is a package, so pytest puts
the project root on ``sys.path`` whether it runs from a checkout or from the unpacked sdist)."""
