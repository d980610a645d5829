"""The object every command receives: settings now, services opened on first use."""

from __future__ import annotations

from functools import cached_property

import click

from sleuth.config import Settings
from sleuth.services import Services


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def services(self) -> Services:
        return Services(self.settings)

    def close(self) -> None:
        if "services" in self.__dict__:
            self.services.close()


pass_context = click.make_pass_decorator(Context)
