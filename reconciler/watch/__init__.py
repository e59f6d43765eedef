"""``reconciler watch``: drift detection as a service (cycles, history, metrics, self-heal).

``service`` runs the cycles and owns the process's lifetime (signals, no overlap); ``metrics``
holds the Prometheus metrics; ``http`` serves ``/metrics`` and ``/healthz``; ``backoff`` spaces
out the heal attempts of an asset whose heal failed.  Each cycle's work goes through
:mod:`reconciler.run`, the same run layer as ``drift`` and ``apply``.
"""
