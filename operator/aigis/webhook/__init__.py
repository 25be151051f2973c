"""The admission webhook process: the shell around the pure decisions in `aigis.admission`.

It holds the HTTPS server the API server calls (`server`), its certificates and their rotation
(`certificates`), the Validating- and MutatingWebhookConfigurations it keeps (`webhooks`), the
watch caches it decides from (`cache`), Events and metrics, its settings, and the process's
start (`run`, `cli`). Every decision comes from `aigis.admission` (`review_object`,
`render_pod_patch`); nothing here decides policy.
"""
