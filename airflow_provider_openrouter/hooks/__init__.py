"""Hooks of the OpenRouter provider."""
