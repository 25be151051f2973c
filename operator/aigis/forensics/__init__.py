"""Forensic capture: a terminating (or running) AI pod's state, kept as signed evidence.

Owns what goes into an evidence bundle and how it is checked (`bundle`, `evidence`: pure),
the signing key (`signing`), collecting a pod's evidence from the API server (`capture`) and
where the bundle's bytes are kept (`storage`). It must not touch the admission webhook, the
gateway or the egress enforcer; the operator's handlers (`aigis.controller.forensics`) decide
when to capture and this package does the capturing.
"""
