"""placeholder: filled in by the Gluon work."""
