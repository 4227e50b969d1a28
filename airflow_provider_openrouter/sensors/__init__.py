"""Sensors of the OpenRouter provider."""
