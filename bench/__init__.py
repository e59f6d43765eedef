"""Benchmark harness: plan and apply over thousands of assets against a real emulator process."""
