"""The operator: reconciles aigis resources into status (and, in later stages, NetworkPolicies,
gateway configuration and forensic snapshots).

`status` holds the pure decisions (what the status of a resource should be); `handlers` is the
kopf shell that reads objects from the API server, calls the core and writes the result back.
Nothing here decides policy inside a handler.
"""
