"""The operator: reconciles AIWorkloads and AIClusterPolicies into status, egress policies,
gateway configuration and audit keys, releases pods held by the forensics finalizer, and audits
every running workload in the background (`audit`: PolicyReports, status.audit, Events).

`status` holds the pure decisions (what the status of a resource should be); `handlers` is the
kopf shell that reads objects from the API server, calls the core and writes the result back:
status through kopf, everything else through `aigis.kube.KubeClient` (the one Kubernetes client
besides kopf's). Nothing here decides policy inside a handler.
"""
