"""File names the tool derives from names the user wrote (a split list's image names)."""

from __future__ import annotations


def file_stem(name: str) -> str:
    """A sample's name as one file name in a flat folder (saved probabilities, the CRF cache).

    A split list may name `city/0001` (images in subfolders): `/`, `\\` and `%` are
    percent-encoded, so that no name reaches into a subfolder (or out of the folder) and two
    names never share a file. Names without these characters are unchanged.
    """
    return name.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
