"""MR sequence names of the target cases: a ``case,sequence`` file, headers, or ``auto``.

:func:`read_sequence_map` reads the file (CSV with a ``case,sequence`` header,
or JSON ``{case: sequence}`` / ``[{"case": ..., "sequence": ...}]``) and checks
it against the target's case ids; :func:`check_sequences` makes sure MDM's
two sub-domains (``mdm.better``, ``mdm.worse``) exist among the cases before
any work. Sequence names found in DICOM headers or flare_uda manifests are
already on the cases (:func:`flare_uda.data.user_data.read_target`); a file
overrides them.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from flare_uda.registry import unknown_name_error
from flare_uda.volume import Case

AUTO = "auto"


class SequenceError(ValueError):
    """A ``--sequences`` problem: the file, its case ids or its sequence names."""


def _rows_json(text: str, path: Path) -> list[tuple[str, str]]:
    data = json.loads(text)
    if isinstance(data, dict):
        return [(str(k), v) for k, v in data.items()]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        try:
            return [(str(r["case"]), r["sequence"]) for r in data]
        except KeyError as err:
            raise SequenceError(
                f"{path}: expected entries {{'case': ..., 'sequence': ...}}, one lacks {err}"
            ) from None
    raise SequenceError(
        f"{path}: expected a JSON object {{case: sequence}} or a list of "
        f"{{'case': ..., 'sequence': ...}}, got {type(data).__name__}"
    )


def _rows_csv(text: str, path: Path) -> list[tuple[str, str]]:
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "case" not in fields or "sequence" not in fields:
        raise SequenceError(
            f"{path}: expected a CSV header with columns case and sequence, got {fields}"
        )
    reader.fieldnames = fields
    return [((r["case"] or "").strip(), (r["sequence"] or "").strip()) for r in reader]


def read_sequence_map(path: str | os.PathLike, case_ids: Sequence[str]) -> dict[str, str]:
    """Case id -> sequence name from a CSV or JSON file, checked against ``case_ids``.

    Raises
    ------
    SequenceError
        Unreadable or malformed file, or entries :func:`sequence_map` refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"expected a CSV or JSON file of case,sequence, got {path}")
    try:
        text = path.read_text(encoding="utf-8")
        rows = _rows_json(text, path) if text.lstrip()[:1] in "{[" else _rows_csv(text, path)
    except (json.JSONDecodeError, UnicodeDecodeError, IndexError) as err:
        raise SequenceError(f"{path}: expected CSV or JSON text, got {err}") from err
    return sequence_map(rows, case_ids, str(path))


def sequence_map(
    rows: Sequence[tuple[str, object]] | Mapping[str, object], case_ids: Sequence[str], where: str
) -> dict[str, str]:
    """``(case, sequence)`` rows (or a mapping) checked against the target's ``case_ids``.

    Raises
    ------
    SequenceError
        An empty name, a case listed twice, a case id that is not a target case
        (with the closest one), or a target case left out.
    """
    rows = list(rows.items()) if isinstance(rows, Mapping) else list(rows)
    out: dict[str, str] = {}
    for case_id, name in rows:
        if not isinstance(name, str) or not name.strip() or not case_id:
            raise SequenceError(
                f"{where}: expected a case id and a sequence name per entry, got "
                f"{case_id!r}: {name!r}"
            )
        if case_id in out:
            raise SequenceError(f"{where}: case {case_id!r} is listed twice")
        if case_id not in case_ids:
            err = unknown_name_error("target case", str(case_id), list(case_ids))
            raise SequenceError(f"{where}: {err}")
        out[str(case_id)] = name.strip()
    left = [c for c in case_ids if c not in out]
    if left:
        raise SequenceError(
            f"{where}: expected a sequence for every target case, {len(left)} have none: {left[:5]}"
        )
    return out


def with_sequences(cases: Sequence[Case], names: dict[str, str]) -> list[Case]:
    """The cases with ``names[case_id]`` as their sequence (cases not in ``names`` unchanged)."""
    return [replace(c, sequence=names.get(c.case_id, c.sequence)) for c in cases]


def check_sequences(cases: Sequence[Case], better: str, worse: str, source: str) -> None:
    """Raise :class:`SequenceError` unless every case has a sequence and both MDM domains exist.

    ``source`` says where the names came from (for the message).
    """
    unknown = [c.case_id for c in cases if not c.sequence]
    if unknown:
        raise SequenceError(
            f"{len(unknown)} of {len(cases)} target cases have no sequence name ({unknown[:5]}); "
            "MDM needs two sub-domains: expected --sequences FILE (case,sequence) or "
            "--sequences auto (names are also read from DICOM headers and flare_uda manifests)"
        )
    found = sorted({str(c.sequence) for c in cases})
    for role, name in (("better", better), ("worse", worse)):
        if name not in found:
            raise SequenceError(
                f"unknown sequence names: mdm.{role} is {name!r}, but the sequences {source} "
                f"are {found}; expected mdm.better and mdm.worse among them (set mdm: "
                "{better: ..., worse: ...} in --config, or use --sequences auto)"
            )
