"""Tests of adapters.translate."""
