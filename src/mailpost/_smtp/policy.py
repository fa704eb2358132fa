"""When a batch may reconnect after losing its SMTP session.

A lost session (dropped socket, timeout, 421) gets one reconnect. Another is allowed
only after the new session delivered something, so a server that takes a few messages
per session (421 after N) still gets the whole batch, while a server that drops every
attempt is not hammered: the batch stops and reports the rest as unattempted.
"""

from __future__ import annotations

__all__ = ["ReconnectPolicy"]


class ReconnectPolicy:
    """Tracks reconnects and deliveries within one ``send_messages`` batch."""

    def __init__(self) -> None:
        self.reconnects = 0
        self.delivered_since_reconnect = 0

    def may_reconnect(self) -> bool:
        """First loss: yes. Later losses: only if the last reconnect led to a delivery."""
        return self.reconnects == 0 or self.delivered_since_reconnect > 0

    def reconnected(self) -> None:
        """A new session replaced the lost one."""
        self.reconnects += 1
        self.delivered_since_reconnect = 0

    def delivered(self) -> None:
        """The current session delivered a message."""
        self.delivered_since_reconnect += 1
