"""Shared plumbing of the vla_stack nodes.

Parameter tables, the node entry-point wrapper, QoS profiles and start-up errors.
"""
