"""Entry-point targets for the tests of discovery and of the engine's checks: apps that are
wrong in one way each."""

from dataclasses import replace

import click

from sleuth.app import App
from tests.apps.sample.app import app as sample

not_an_app = {"name": "dict"}
misnamed = App(name="elsewhere", description="declares a name its entry point does not carry")
web = App(name="web", description="named like the core settings section [web]")
worker = App(
    name="worker", description="named like the engine command", cli=lambda: click.Group("worker")
)
regrouped = App(
    name="regrouped", description="a group of another name", cli=lambda: click.Group("x")
)
# Declares one queue while its job kinds serve the sample app's.
mismatched = replace(
    sample, name="mismatched", settings=None, migrations=None, queues=("mismatched.q",)
)
