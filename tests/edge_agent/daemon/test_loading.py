"""What the daemon reads before it starts and on SIGHUP: a reload the running daemon cannot
take (a changed identity or storage) is refused, naming what changed."""

from __future__ import annotations

import pytest

from edge_agent.daemon.loading import check_reloadable
from edge_agent.errors import UsageError


class Cfg:
    def __init__(self, gateway, storage, source_path="gw.yaml"):
        self.gateway, self.storage, self.source_path = gateway, storage, source_path


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        (Cfg("g1", "s1"), Cfg("g1", "s1"), None),
        (Cfg("g1", "s1"), Cfg("g2", "s1"), "gateway"),
        (Cfg("g1", "s1"), Cfg("g1", "s2"), "storage"),
        (None, Cfg("g1", "s1"), None),
    ],
)
def test_reload_refuses_identity_and_storage_changes(old, new, refused):
    if refused is None:
        check_reloadable(old, new)
        return
    with pytest.raises(UsageError, match=f"{refused} changed: needs a restart"):
        check_reloadable(old, new)
