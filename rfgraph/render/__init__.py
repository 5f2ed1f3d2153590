"""Renderers: pure functions from an analysis to text (one module per format)."""
