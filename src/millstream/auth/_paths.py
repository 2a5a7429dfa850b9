"""Canonical paths: the one form a scope prefix is compared with.

A scope covers the paths that start with its prefix. That is only safe if the string compared
is the string the store uses, and if no other component (a proxy, a client library, a human
reading a log) could take the same request for a different path. So the doors decode a path
once (percent-encoding), and a path that is not canonical is refused rather than "fixed":

- no ``.`` or ``..`` segment (``a/../b`` is refused, not resolved to ``b``);
- Unicode must be NFKC-normal: ``ａ/x`` (fullwidth) or ``ﬁle`` (a ligature) would look like
  ``a/x`` and ``file`` to a human and to NFKC-folding software, but are other byte strings;
- no invisible format characters (Unicode category Cf: zero-width joiners, bidi overrides),
  which make two different paths print alike.

Look-alikes from different scripts (Cyrillic ``а`` for Latin ``a``) are NFKC-normal and are
simply other paths: a scope ``read:a/`` does not cover ``а/`` and the store keeps them apart.
ASCII paths (every Kafka topic) only pay for the dot-segment check.
"""

from __future__ import annotations

import unicodedata

from ._errors import BadPath

__all__ = ["canonical_path"]


def canonical_path(path: str) -> str:
    """``path`` itself if it is canonical (see the module docstring), else ``BadPath``."""
    if "." in path:
        for segment in path.split("/"):
            if segment in (".", ".."):
                raise BadPath(f"path {path!r} has a {segment!r} segment")
    if not path.isascii():
        if unicodedata.normalize("NFKC", path) != path:
            raise BadPath(f"path {path!r} is not in Unicode normal form NFKC")
        for char in path:
            if unicodedata.category(char) in ("Cf", "Cc", "Cs", "Co", "Cn"):
                raise BadPath(
                    f"path {path!r} contains the invisible or unassigned character "
                    f"U+{ord(char):04X}"
                )
    elif not path.isprintable():
        raise BadPath(f"path {path!r} contains control characters")
    return path
