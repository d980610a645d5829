"""The apps built on the engine. Each declares one `sleuth.app.App` in its `app.py`, published
in the `sleuth.apps` entry-point group (pyproject.toml); the engine finds them there."""
