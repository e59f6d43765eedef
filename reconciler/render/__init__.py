"""Renderers: each a view of the same Plan (text, markdown, json)."""
