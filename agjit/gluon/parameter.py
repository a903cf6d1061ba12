"""placeholder: filled in by the Gluon work."""
__all__ = []
