"""What the forum tests share."""

from __future__ import annotations


class Failing:
    """WSGI middleware answering 404 for one path while `on`: a crawl that dies partway."""

    def __init__(self, app, path: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.path, self.on = app, path, True

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        if self.on and environ["PATH_INFO"] == self.path:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"gone\n"]
        return self.app(environ, start_response)
