"""Room names: one per user (their own events), one per artwork (its watchers)."""

from __future__ import annotations

from domain.announcements import LiveEvent


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def artwork_room(artwork_id: int) -> str:
    return f"artwork:{artwork_id}"


def rooms_for(event: LiveEvent) -> list[str]:
    rooms = [user_room(user_id) for user_id in event.users]
    if event.to_watchers:
        rooms.append(artwork_room(event.artwork_id))
    return rooms
