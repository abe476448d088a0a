"""Znode path rules, as ZooKeeper's ``PathUtils.validatePath`` applies them.

A path is absolute, has no empty, ``.`` or ``..`` element, no trailing slash (except the
root) and none of the characters ZooKeeper rejects. Java strings are UTF-16, so a
character outside the Basic Multilingual Plane arrives there as a surrogate pair, which
the rules reject; we reject it too.
"""

from __future__ import annotations


def _bad_char(c: str) -> bool:
    o = ord(c)
    return (
        0 < o <= 0x1F
        or 0x7F <= o <= 0x9F
        or 0xD800 <= o <= 0xF8FF
        or o >= 0xFFF0  # includes everything past the BMP (surrogate pairs in Java)
    )


def path_error(path: str) -> str | None:
    """Why ``path`` is not a valid znode path, or None when it is."""
    if not path:
        return "Path length must be > 0"
    if path[0] != "/":
        return "Path must start with / character"
    if len(path) == 1:
        return None
    if path[-1] == "/":
        return "Path must not end with / character"
    # Fast path: printable ASCII with no empty or relative element.
    if path.isascii() and path.isprintable():
        if "//" in path:
            return "empty node name specified"
        if "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
            return "relative paths not allowed"
        return None
    return _slow_path_error(path)


def _slow_path_error(path: str) -> str | None:
    last = "/"
    for i in range(1, len(path)):
        c = path[i]
        if c == "\0":
            return f"null character not allowed @{i}"
        if c == "/" and last == "/":
            return f"empty node name specified @{i}"
        if c == "." and (last == "/" or (last == "." and path[i - 2] == "/")):
            if i + 1 == len(path) or path[i + 1] == "/":
                return f"relative paths not allowed @{i}"
        elif _bad_char(c):
            return f"invalid character @{i}"
        last = c
    return None


def parent_of(path: str) -> str:
    """The parent path ("/" for top-level nodes). The root has no parent: returns ""."""
    i = path.rfind("/")
    if i > 0:
        return path[:i]
    return "/" if len(path) > 1 else ""


def split(path: str) -> tuple[str, str]:
    """(parent, child name) of a non-root path."""
    i = path.rfind("/")
    return (path[:i] or "/"), path[i + 1 :]


def join(parent: str, name: str) -> str:
    return parent + name if parent == "/" else parent + "/" + name
