"""The downscaler operator: scale idle Deployments to zero from Prometheus signals and
bring them back, without ever losing an original replica count.

Pure logic: ``policy`` (the spec), ``readings`` (answers -> verdicts), ``decide`` (one
target), ``ledger`` (the original-count rules), ``status`` (the policy status),
``ratelimit``. I/O: ``prometheus`` (queries), ``kube_api`` (the operator's requests),
``actuator`` (one conditional write per action, Events), ``leader`` (the Lease).
Wiring: ``cycle`` (one policy's evaluation), ``handlers`` (kopf), ``main``.
"""
