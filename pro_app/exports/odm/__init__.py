"""CDISC ODM 1.3.2: the study's metadata and its clinical data in one snapshot file."""

from .clinical import write_odm
from .metadata import format_value, item_oid, metadata_oid

__all__ = ["format_value", "item_oid", "metadata_oid", "write_odm"]
