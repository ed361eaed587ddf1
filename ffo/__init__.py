"""ffo — Fast FailOver: a VRRPv3 high-availability daemon with an explainable event log."""

__version__ = "0.1.0"
