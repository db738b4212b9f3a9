"""The downscaler operator: scale idle Deployments to zero from Prometheus signals and
bring them back, without ever losing an original replica count.

Pure decision logic (``policy``, ``readings``, ``decide``, ``ledger``) is kept apart from
I/O (``prometheus``, ``kubeio``, ``cycle``, ``handlers``).
"""
