"""HTTP: the ASGI app, its routes, the raw-ASGI inference fast path and the wire codec.

Only this package knows HTTP; it calls :mod:`coalmine_serving.service` for everything else.
"""
