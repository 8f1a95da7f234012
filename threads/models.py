"""Threads: persisted conversations in a room, shared live by the people and agents in it.

A message is a list of content parts (docs/threads.md): text, attachment references and tool-call
records that an agent updates as the call runs. Messages are numbered per thread (`seq`), so a
client that reconnects asks for what came after the last number it has.
"""

import secrets
from typing import Any

from django.db import models

from rooms.models import Room
from rooms.timestamps import iso_z


def new_thread_id() -> str:
    return "t_" + secrets.token_hex(8)


class ThreadQuerySet(models.QuerySet["Thread"]):
    def in_room(self, room_id: int) -> "ThreadQuerySet":
        return self.filter(room_id=room_id)


class Thread(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_thread_id)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="threads")
    title = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=200, help_text="Identity of the participant who created it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    last_seq = models.PositiveIntegerField(default=0)
    toolkits = models.JSONField(
        default=list,
        blank=True,
        help_text="Toolkit names or patterns this thread switches on for the agents that serve it "
        "(each agent offers only those its configuration lets a thread choose).",
    )

    objects = ThreadQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["room", "-updated_at", "-id"])]

    def __str__(self) -> str:
        return self.title or self.id

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created_by": self.created_by,
            "created_at": iso_z(self.created_at),
            "updated_at": iso_z(self.updated_at),
            "last_seq": self.last_seq,
            "toolkits": list(self.toolkits),
        }


class ThreadMessage(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    author_participant_id = models.CharField(max_length=24)
    author_identity = models.CharField(max_length=200)
    author_role = models.CharField(max_length=16)
    author_name = models.CharField(max_length=200, blank=True)
    parts = models.JSONField(default=list)
    # The message this one answers. `seq` is the order messages were posted in; an answer that took
    # a while comes after what was posted meanwhile, and `reply_to` keeps the conversation's shape.
    reply_to = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["thread", "seq"]
        constraints = [models.UniqueConstraint(fields=["thread", "seq"], name="unique_thread_seq")]

    def __str__(self) -> str:
        return f"{self.thread_id}#{self.seq}"

    def to_record(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "seq": self.seq,
            "author": {
                "participant_id": self.author_participant_id,
                "identity": self.author_identity,
                "role": self.author_role,
                "name": self.author_name,
            },
            "parts": self.parts,
            "reply_to": self.reply_to,
            "created_at": iso_z(self.created_at),
            "updated_at": iso_z(self.updated_at),
        }
