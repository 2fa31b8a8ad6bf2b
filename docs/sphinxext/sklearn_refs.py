"""Point the cross-references of inherited scikit-learn docstrings at scikit-learn.

The estimators' pages list the methods they inherit from scikit-learn
(``get_params``, ``set_fit_request``, ...). Those docstrings use scikit-learn's
own labels and glossary (``:ref:`User Guide <metadata_routing>```,
``:term:`meta-estimator```), which this site does not define, and
intersphinx would need the network at build time. This extension rewrites
them, in docstrings that come from scikit-learn only, into links to
scikit-learn's pages.
"""

import re

SKLEARN = "https://scikit-learn.org/stable/"
# Labels used by the docstrings of inherited methods, and their pages.
LABELS = {"metadata_routing": "metadata_routing.html"}

_REF = re.compile(r":ref:`([^`<]*?)\s*<([^`>]+)>`|:ref:`([^`<]+)`")
_TERM = re.compile(r":term:`([^`<]*?)\s*<([^`>]+)>`|:term:`([^`<]+)`")


def _ref(match):
    text, label = match.group(1), match.group(2)
    if label is None:
        text = label = match.group(3)
    page = LABELS.get(label)
    return f"`{text} <{SKLEARN}{page}>`__" if page else f"*{text}*"


def _term(match):
    text, term = match.group(1), match.group(2)
    if term is None:
        text = term = match.group(3)
    anchor = "term-" + re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")
    return f"`{text} <{SKLEARN}glossary.html#{anchor}>`__"


def rewrite(app, what, name, obj, options, lines):
    """``autodoc-process-docstring`` handler: rewrite scikit-learn's roles."""
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn."):
        return
    for i, line in enumerate(lines):
        lines[i] = _TERM.sub(_term, _REF.sub(_ref, line))


def setup(app):
    app.connect("autodoc-process-docstring", rewrite)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
