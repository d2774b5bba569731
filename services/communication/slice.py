"""The communication slice: standard endpoints only, no domain routes yet.

A later issue builds it."""

from __future__ import annotations

from services.kit.slice_base import AtomicSlice


class CommunicationSlice(AtomicSlice):
    name = "communication"


def create_slice() -> CommunicationSlice:
    return CommunicationSlice()
