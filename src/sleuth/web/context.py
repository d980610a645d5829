"""Where a request finds the `Services` of the app serving it."""

from __future__ import annotations

from flask import current_app

from sleuth.services import Services

SERVICES_KEY = "sleuth.services"


def current_services() -> Services:
    """The `Services` that `create_app` was given, for the app handling this request."""
    services: Services = current_app.extensions[SERVICES_KEY]
    return services
