"""The AttributeError for a name a namespace does not have: worded with the MXNet namespace
the user typed (``mx.sym``, ``mx.nd``), never agjit's internal package names, and with the
closest names that do exist."""
import difflib

def missing(namespace, name, candidates):
    """An AttributeError for ``namespace.name`` suggesting close ``candidates``."""
    msg = "%s has no attribute %r" % (namespace, name)
    close = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.75)
    if close:
        msg += "; did you mean %s?" % ", ".join("%s.%s" % (namespace, c) for c in close)
    return AttributeError(msg)
