"""Test helpers shared across test folders (local servers, fixtures)."""
