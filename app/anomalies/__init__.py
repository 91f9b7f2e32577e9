"""The anomaly side: the rules run on the trace, their findings, and regulators' decisions."""
