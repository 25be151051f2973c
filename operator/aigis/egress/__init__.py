"""Egress control: what a workload may reach and where that data goes.

The pure compilation lives here (matching declared hosts, the catalogue of AI provider endpoints
and their data regions, whether a workload's egress keeps to its data regions, the network
policies that allow that egress and nothing else) as functions of plain data. The reconcile shell
that looks names up and applies policies to the cluster lives elsewhere and calls in.
"""
