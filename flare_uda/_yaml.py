"""Reading YAML config files strictly: duplicate keys, empty files and syntax errors are errors.

PyYAML keeps the last of two equal keys silently and reads an empty file as
``None``; a config file that says ``iterations`` twice, or nothing at all, is
more likely a mistake than an intent, so both are refused with the file's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with a repeated key."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1}); "
                "each key may appear once",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml_mapping(path: str | os.PathLike, what: str = "config") -> dict:
    """The mapping a YAML file holds.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        For invalid YAML, a repeated key, or an empty file (all naming ``path``).
    TypeError
        If the file holds something other than a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"expected a YAML {what} file, got {p} (no such file)")
    try:
        data = yaml.load(p.read_text(), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ValueError(f"{p} is not valid YAML: {err}") from None
    if data is None:
        raise ValueError(f"{p} is empty: expected a {what} mapping (sections and their options)")
    if not isinstance(data, dict):
        raise TypeError(f"{p} must hold a mapping of {what} sections, got {type(data).__name__}")
    return data
