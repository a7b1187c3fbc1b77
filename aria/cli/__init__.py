"""The ``aria`` command line: a thin edge that parses flags, calls a service, prints."""
