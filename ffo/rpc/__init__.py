"""RPC: the node's authenticated links to its peers (CurveZMQ), event-log resync and the cluster view.

Only VRRP decides mastership; RPC carries status and history between nodes and never changes a role.
"""
