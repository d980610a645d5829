"""A tiny app that lives only in the tests: it plugs in by its declaration alone."""
