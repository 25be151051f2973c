"""A local Kubernetes control plane for development and integration tests (development only).

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (which simulates a node and
the lifecycle of its pods) run as plain processes bound to 127.0.0.1, with no container runtime.
The real controller manager means garbage collection, Deployments, Jobs and ServiceAccount tokens
behave as in a real cluster, which is what the operator's integration tests need.

Production code never imports this package: it exists for ``python -m aigis.devcluster`` and the
pytest fixtures in ``tests/integration``.
"""
