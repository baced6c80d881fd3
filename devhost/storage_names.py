"""Azure Storage naming rules, in one place for the host and the tests.

Queues: 3-63 chars of lowercase letters, digits and single dashes, starting with a letter or digit.
Tables: 3-63 alphanumeric chars starting with a letter. A name that breaks them fails at the service
with an unhelpful 400, so names are built to be valid by construction.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

__all__ = ["UniqueName", "table_name"]


def table_name(*parts: str) -> str:
    """Join `parts` into a valid table name (non-alphanumerics dropped, 'T' prefixed if needed)."""
    name = re.sub(r"[^A-Za-z0-9]", "", "".join(parts))
    if not name or not name[0].isalpha():
        name = "T" + name
    return name[:63].ljust(3, "0")


@dataclass(frozen=True)
class UniqueName:
    """Names valid for Azure Storage and unique per instance (uuid4), for independent tests.

    `queue` / `table` for one of each; `queue_name("x")` / `table_name("X")` for more.
    """

    token: str = field(default_factory=lambda: uuid.uuid4().hex[:20])

    @property
    def queue(self) -> str:
        return self.queue_name()

    @property
    def table(self) -> str:
        return self.table_name()

    def queue_name(self, prefix: str = "q") -> str:
        prefix = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-") or "q"
        return f"{prefix}-{self.token}"[-63:]

    def table_name(self, prefix: str = "T") -> str:
        return table_name(prefix, self.token)

    def __str__(self) -> str:
        return self.token
