"""interact package."""
