"""Triggers of the OpenRouter provider."""
