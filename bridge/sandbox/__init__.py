"""A local Open311 GeoReport v2 CRM for development, demos and tests.

``SandboxStore`` keeps requests in SQLite, ``create_app`` serves them over HTTP,
``SandboxServer`` runs that app in the current event loop, and ``cli.app`` is
``kanal crm-sandbox``.
"""

from bridge.sandbox.app import create_app
from bridge.sandbox.catalog import CATEGORIES, PERSONAL_FIELDS, Category
from bridge.sandbox.models import (
    OFFICER_STATUSES,
    ExternalStatus,
    IdempotencyKeyReused,
    NewRequest,
    OpenStatus,
    StoredRequest,
    StoredUpdate,
    UnknownRequest,
)
from bridge.sandbox.server import AppServer, SandboxServer
from bridge.sandbox.store import FIRST_REQUEST_ID, SandboxStore

__all__ = [
    "CATEGORIES",
    "FIRST_REQUEST_ID",
    "OFFICER_STATUSES",
    "PERSONAL_FIELDS",
    "AppServer",
    "Category",
    "ExternalStatus",
    "IdempotencyKeyReused",
    "NewRequest",
    "OpenStatus",
    "SandboxServer",
    "SandboxStore",
    "StoredRequest",
    "StoredUpdate",
    "UnknownRequest",
    "create_app",
]
