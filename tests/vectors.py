"""The public test vectors of ../shared/instruments.md, as data (used by several tests)."""

from __future__ import annotations

from pytest import approx


def seq(prefix: str, values, start: int = 1) -> dict:
    """Return {prefix1: v1, prefix2: v2, ...}; None leaves an item unanswered."""
    return {f"{prefix}{n}": v for n, v in enumerate(values, start) if v is not None}


H2_VALUES = [2, 2, 1, 2, 3, 1, 2, 2, 1, 2] + [2, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 2, 3, 2]

VECTORS = {
    "O1": (
        {"odi": seq("odi", [2, 1, 3, 2, 1, 2, 1, 0, 2, 1])},
        {"odi": approx(30.0), "odi_band": "moderate"},
    ),
    "O2": (
        {"odi": seq("odi", [3, 2, 4, 3, 2, 3, 2, None, 3, 2])},
        {"odi": approx(24 / 45 * 100), "odi_band": "severe"},
    ),
    "N1": (
        {
            "nrs": {"nrs_current": 6, "nrs_worst": 8, "nrs_usual": 5},
            "odi": seq("odi", [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]),
        },
        {"lbp_mean": approx(19 / 3), "odi": approx(18.0), "eligible_pro": True},
    ),
    "H1": (
        {"hscl25": seq("hscl", [1] * 25)},
        {"hscl_anxiety": 1.0, "hscl_depression": 1.0, "hscl_total": 1.0, "hscl_case": False},
    ),
    "H2": (
        {"hscl25": seq("hscl", H2_VALUES)},
        {
            "hscl_anxiety": approx(1.8),
            "hscl_depression": approx(26 / 15),
            "hscl_total": approx(1.76),
            "hscl_case": True,
        },
    ),
    "F1": (
        {"fabq": seq("fabq", [3, 4, 5, 2, 3, 6, 5, 4, 3, 2, 1, 0, 5, 4, 3, 2])},
        {"fabq_pa": 14, "fabq_w": 20},
    ),
    "F2": ({"fabq": seq("fabq", [6] * 16)}, {"fabq_pa": 24, "fabq_w": 42}),
    "S2": (
        {"shc": seq("shc", [3] * 29)},
        {
            "shc_msk": 24,
            "shc_pn": 21,
            "shc_gi": 21,
            "shc_allergy": 15,
            "shc_flu": 6,
            "shc_total": 87,
            "shc_count": 29,
        },
    ),
    "S4": (
        {"shc": seq("shc", [1] * 29)},
        {
            "shc_msk": 8,
            "shc_pn": 7,
            "shc_gi": 7,
            "shc_allergy": 5,
            "shc_flu": 2,
            "shc_total": 29,
            "shc_count": 29,
        },
    ),
    "R1": (
        {"rmdq": seq("rmdq", [1 if n % 2 and n <= 19 else 0 for n in range(1, 25)])},
        {"rmdq": 10},
    ),
}
