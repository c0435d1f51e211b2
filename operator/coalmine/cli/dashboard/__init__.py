"""``kubectl coalmine dashboard``: a local, read-only web page of every rollout, live.

``view`` builds the JSON the page shows (pure); ``memory`` keeps what the dashboard saw of
each ModelDeployment over time (weight, the operator's measured checks); ``series`` measures
the checks over time from Prometheus range queries, through the operator's own measuring
code; ``prometheus`` is the range-query client; ``app`` is the Starlette app; ``command``
the click command. The page (``static/``) builds its DOM with ``textContent`` only, so what
comes from the cluster is always text, and the server sends a strict Content-Security-Policy.
"""
