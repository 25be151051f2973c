"""The admission decision engine: pure functions deciding whether a workload may be admitted.

Each module decides one thing about a pod template (Pod Security Standards, images, secrets,
declared egress) and returns structured `Reason`s with the field path and the fix; the rules
themselves are a library in `rules/`, one module per family behind one registry. The webhook
process (`aigis.webhook`) and `aigis scan` (`aigis.scan`) are thin shells that read objects and
call these functions, so a manifest that passes in CI passes in the cluster.

Pure: no I/O, no clock, no environment. Must not import the webhook server, kopf handlers or the
Kubernetes client.
"""
