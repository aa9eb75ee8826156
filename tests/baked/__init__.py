"""Test modules the template suite copies into a fresh bake to run there (they need extras)."""
