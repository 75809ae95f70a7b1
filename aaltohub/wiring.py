"""The services `aaltohub up` runs: API, ingest (demo or Telegram workers) and projectors."""

from __future__ import annotations

from aaltohub.service_api import SERVICE as API_SERVICE
from aaltohub.service_ingest import INGEST_SERVICE
from aaltohub.service_projector import SERVICE as PROJECTOR_SERVICE
from aaltohub.services import ServiceSpec

SERVICES: tuple[ServiceSpec, ...] = (API_SERVICE, INGEST_SERVICE, PROJECTOR_SERVICE)
