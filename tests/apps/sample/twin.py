"""Apps made from the sample's declaration for the discovery tests: one that declares the
sample app's queue, which discovery must refuse, and one whose name sorts before `images`."""

from dataclasses import replace

from tests.apps.sample.app import app as sample

app = replace(sample, name="twin", settings=None)
alpha = replace(
    sample,
    name="alpha",
    settings=None,
    migrations=None,
    queues=(),
    job_kinds=None,
    periodic=None,
    cli=None,
    blueprints=None,
    demo=None,
)
