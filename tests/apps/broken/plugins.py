"""Entry-point targets for the discovery tests: not an App, an App under another name, and
one named like a core setting."""

from sleuth.app import App

not_an_app = {"name": "dict"}
misnamed = App(name="elsewhere", description="declares a name its entry point does not carry")
web = App(name="web", description="named like the core settings section [web]")
