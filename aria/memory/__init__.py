"""ARIA's memory: working, episodic, semantic, procedural and prospective, on this machine.

Each user's memories live in one private SQLite file under ``ARIA_HOME/memory`` (FTS5 for
keywords, vectors from the local embedding model searched in RAM), and never leave the
device: a request served by a peer or split over peers gets none (docs/memory.md).
"""

from aria.memory.bridge import NodeEmbedder, NodeModels, embedder_for
from aria.memory.conversation import TurnMemory, begin_turn, end_turn, preparer
from aria.memory.exchange import export_document, import_document
from aria.memory.extract import can_extract, learn_from_answer
from aria.memory.hub import MemoryHub, watch_reminders
from aria.memory.records import Hit, Memory, MemoryKind, Reminder, ReminderStatus, TriggerKind
from aria.memory.search import Mode
from aria.memory.service import Embedder, Learned, MemoryService, ModelWatch
from aria.memory.store import MemoryStore
from aria.memory.users import LOCAL_USER, known_users, store_file, user_for_key

__all__ = [
    "LOCAL_USER",
    "Embedder",
    "Hit",
    "Learned",
    "Memory",
    "MemoryHub",
    "MemoryKind",
    "MemoryService",
    "MemoryStore",
    "Mode",
    "ModelWatch",
    "NodeEmbedder",
    "NodeModels",
    "Reminder",
    "ReminderStatus",
    "TriggerKind",
    "TurnMemory",
    "begin_turn",
    "can_extract",
    "embedder_for",
    "end_turn",
    "export_document",
    "import_document",
    "known_users",
    "learn_from_answer",
    "preparer",
    "store_file",
    "user_for_key",
    "watch_reminders",
]
