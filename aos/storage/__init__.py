"""Storage ports (small abstract classes) and their Azure adapters (Tables and Queues).

The HTTP and queue functions talk to ``AgentIndex`` and ``EventQueue``; the adapters translate
``azure.core`` exceptions into AOS errors at this edge, so nothing above it imports the SDKs.
"""

from aos.storage.index import AgentIndex, IndexEntry, IndexStatus, Page
from aos.storage.queues import EventQueue, QueueMessage

__all__ = ["AgentIndex", "EventQueue", "IndexEntry", "IndexStatus", "Page", "QueueMessage"]
