"""The portals' static files (stylesheet, vendored htmx), served at ``/static``.

A package only so the wheel carries the files beside the code that serves them.
"""
