"""The data regions (jurisdictions) aigis knows, by the short name used in `dataRegions`.

A region is a legal jurisdiction, not a cloud region: `eu` covers `eu-west-1` and
`europe-west4` alike. The catalogue of provider endpoints and their regions builds on these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

DATA_REGIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "eu": "European Union and European Economic Area",
        "uk": "United Kingdom",
        "ch": "Switzerland",
        "us": "United States",
        "ca": "Canada",
        "br": "Brazil",
        "jp": "Japan",
        "kr": "South Korea",
        "cn": "China",
        "in": "India",
        "sg": "Singapore",
        "au": "Australia",
        "ae": "United Arab Emirates",
        "sa": "Saudi Arabia",
        "za": "South Africa",
        "global": "no fixed jurisdiction: the provider may process data anywhere",
    }
)
"""Known region names and what each covers."""
