"""The aigis gateway: the sidecar HTTP proxy between an AI app and its LLM providers.

The app in the pod talks to the gateway on 127.0.0.1 instead of its provider. The gateway holds
the provider keys, enforces the workload's host, model and region allowlists, runs the
guardrails on prompts and answers (streaming and tool calls included), rate-limits, writes a
hash-chained audit log on stdout and exports Prometheus metrics on a port of its own.

Layout: pure decisions over plain data (`config`, `providers`, `policy`, `sse`, `streaming`,
`audit`, `limits`) and a thin aiohttp shell (`server`, `forward_proxy`, `resolver`, `metrics`,
`cli`). This package must not touch the operator, the webhook or the Kubernetes API: the operator
renders its `GatewayConfig` into a ConfigMap and the gateway only reads the mounted file.
"""
