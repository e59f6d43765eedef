"""Reliability suite: faults, hostile input, secrets (marked ``reliability``)."""
