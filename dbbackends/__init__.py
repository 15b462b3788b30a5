"""Database backend tweaks."""
