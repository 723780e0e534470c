"""JSON shapes the widget's SDK (chat 4.14.1) and our server read.

The shapes are those widget 1.7.10 accepts. They are shared by the REST routes and the
WebSocket so that a message looks the same whether it arrives as a push or in a list.
"""

from __future__ import annotations

from typing import Any

PING_INTERVAL_SECONDS = 15
PONG_TIMEOUT_SECONDS = 5
RECONNECT = {"interval": 3, "max_interval": 60, "mul": 2, "retry_cnt": 5}


def user_resource(row: dict[str, Any], *, online: bool) -> dict[str, Any]:
    """Platform API user resource (``GET /v3/users/{id}``), timestamps as Sendbird sends them."""
    return {
        "user_id": row["user_id"],
        "nickname": row["nickname"],
        "profile_url": row["profile_url"],
        "require_auth_for_profile_image": False,
        "metadata": row.get("metadata") or {},
        "access_token": "",
        "session_tokens": [],
        "is_online": online,
        "is_active": bool(row["is_active"]),
        "is_created": True,
        "has_ever_logged_in": bool(row["has_ever_logged_in"]),
        "last_seen_at": 0 if online else int(row["last_seen_at"]),
        "discovery_keys": [],
        "preferred_languages": [],
        "phone_number": "",
        "role": "",
        "created_at": int(row["created_at"]) // 1000,
    }


def member_user(row: dict[str, Any], *, online: bool) -> dict[str, Any]:
    """Compact user object used in READ acks, typing events and message senders."""
    return {
        "user_id": row["user_id"],
        "nickname": row.get("nickname") or "",
        "profile_url": row.get("profile_url") or "",
        "role": "",
        "metadata": row.get("metadata") or {},
        "is_active": True,
        "is_online": online,
        "last_seen_at": 0,
        "require_auth_for_profile_image": False,
    }


def message_json(row: dict[str, Any], *, req_id: str | None = None) -> dict[str, Any]:
    """A user message as sent over the socket and in message lists.

    Args:
        row: A message row from :class:`~sample_app.sandbox.store.Store`.
        req_id: Set only on the ack to the sender; pushes carry none.
    """
    msg_id = int(row["msg_id"])
    payload: dict[str, Any] = {
        "type": "MESG",
        "msg_id": msg_id,
        "message_id": msg_id,
        "message": row["message"],
        "channel_url": row["channel_url"],
        "channel_type": "group",
        "custom_type": row["custom_type"],
        "data": row["data"],
        "mention_type": row["mention_type"],
        "mentioned_users": [],
        "is_op_msg": False,
        "silent": False,
        "is_removed": False,
        "message_survival_seconds": -1,
        "created_at": int(row["created_at"]),
        "updated_at": 0,
        "user": {
            "user_id": row["user_id"],
            "nickname": row["nickname"],
            "profile_url": row["profile_url"],
            "role": "",
            "metadata": row.get("metadata") or {},
            "is_active": True,
            "require_auth_for_profile_image": False,
        },
        "reactions": [],
        "sorted_metaarray": [],
        "parent_message_id": 0,
    }
    if row.get("extended_payload"):
        payload["extended_message_payload"] = row["extended_payload"]
    if req_id is not None:
        payload["req_id"] = req_id
    return payload


def channel_json(
    channel: dict[str, Any],
    members: list[dict[str, Any]],
    *,
    viewer_id: str | None,
    online_ids: set[str],
    last_message: dict[str, Any] | None,
) -> dict[str, Any]:
    """Group channel resource. The widget looks the bot up in ``members``, so list them all."""
    member_objs = []
    for member in members:
        obj = member_user(member, online=member["user_id"] in online_ids)
        obj.update({"state": "joined", "is_muted": False})
        member_objs.append(obj)
    member_ids = [m["user_id"] for m in members]
    receipts = {m["user_id"]: int(m["last_read_at"]) for m in members}
    is_member = viewer_id is not None and viewer_id in member_ids
    return {
        "channel_url": channel["channel_url"],
        "channel_type": "group",
        "name": channel["name"],
        "cover_url": channel["cover_url"],
        "custom_type": channel["custom_type"],
        "data": channel["data"],
        "is_distinct": bool(channel["is_distinct"]),
        "is_public": False,
        "is_super": False,
        "is_ephemeral": False,
        "is_broadcast": False,
        "is_access_code_required": False,
        "is_exclusive": False,
        "is_discoverable": False,
        "freeze": False,
        "created_at": int(channel["created_at"]) // 1000,
        "created_by": {"user_id": channel["created_by"]} if channel["created_by"] else None,
        "member_count": len(members),
        "joined_member_count": len(members),
        "max_length_message": 5000,
        "members": member_objs,
        "member_state": "joined" if is_member or viewer_id is None else "none",
        "my_role": "",
        "is_muted": False,
        "is_hidden": False,
        "hidden_state": "unhidden",
        "count_preference": "all",
        "push_trigger_option": "default",
        "unread_message_count": 0,
        "unread_mention_count": 0,
        "read_receipt": receipts,
        "delivery_receipt": dict(receipts),
        "last_message": message_json(last_message) if last_message else None,
        "message_survival_seconds": -1,
        "metadata": {},
        "ts": int(channel["created_at"]),
    }


def logi_payload(user: dict[str, Any], *, key: str, ekey: str, login_ts: int) -> dict[str, Any]:
    """Successful LOGI body.

    ``ping_interval``, ``pong_timeout`` and ``reconnect.*`` are in SECONDS: the SDK multiplies
    them by 1000 and its fallbacks are broken. There is deliberately no ``services`` key; with
    ``"services":["chat"]`` the SDK stops re-sending REST calls parked on a 400309.
    """
    return {
        "user_id": user["user_id"],
        "nickname": user["nickname"],
        "profile_url": user["profile_url"],
        "metadata": user.get("metadata") or {},
        "is_active": bool(user["is_active"]),
        "key": key,
        "ekey": ekey,
        "login_ts": login_ts,
        "ping_interval": PING_INTERVAL_SECONDS,
        "pong_timeout": PONG_TIMEOUT_SECONDS,
        "reconnect": dict(RECONNECT),
        "max_unread_cnt_on_super_group": 100,
        "emoji_hash": "",
        "file_upload_size_limit": 25,
        "use_reaction": True,
        "application_attributes": [],
        "premium_feature_list": [],
        "uikit_config": {"last_updated_at": 0},
        "message_template": {"template_list_token": ""},
    }
