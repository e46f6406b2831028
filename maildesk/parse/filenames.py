"""Attachment names made safe to show and to store: no path, no control characters, no device names."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]+')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
MAX_NAME = 180


def sanitize_filename(name: str | None, content_type: str = "application/octet-stream") -> str:
    """A display name that cannot name a folder, a device or another file.

    Attachments are stored under their sha256, never under this name, so the name
    only has to be harmless where it is shown or offered for download.
    """
    name = unicodedata.normalize("NFC", name or "")
    # keep the last path component of either separator: "../../etc/passwd" -> "passwd"
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".").strip()
    if _RESERVED.match(name):
        name = "_" + name
    if not name:
        extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
        name = "attachment" + extension
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: MAX_NAME - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_NAME]
    return name
