"""aigis: secures AI workloads on Kubernetes.

One `AIWorkload` declaration per AI workload is compiled into network policy, a guarding gateway
sidecar, admission decisions and forensic capture. The pure decision functions live in subpackages
named for what they decide; the kopf handlers, HTTP servers and CLI are thin shells around them.
"""

__version__ = "0.1.0"
