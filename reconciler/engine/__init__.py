"""The engine: field policies, diff, plan, apply and drift."""
