"""A second app declaring the sample app's queue, which discovery must refuse."""

from dataclasses import replace

from tests.apps.sample.app import app as sample

app = replace(sample, name="twin", settings=None)
