"""The apps built on the engine. Each declares one `sleuth.app.App` in its `app.py`, published
in the `sleuth.apps` entry-point group (pyproject.toml); the engine finds them there."""

OWN_ORDER = ("images", "finder", "forum", "graph")
"""sleuth's own apps in the order pyproject.toml lists them: setuptools writes entry points
sorted by name, so the installed metadata loses that order, and the first (the monitoring page's
default) must stay `images` as apps are added."""
