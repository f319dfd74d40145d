"""``--executor`` and ``--ray-address``: the per-case engine of a command, one helper for all.

Commands that do per-case work (``predict``, ``evaluate``, ``demo``, ``adapt``)
take the same two options, added by :func:`executor_options`, and turn them
into an engine with :func:`executor_spec` (checked before any work: an unknown
engine, an address without Ray, or Ray not installed are usage errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

EXECUTOR_HELP = (
    "Engine for per-case work: serial, process (a local process pool) or ray "
    "(Ray tasks: a local runtime, or the cluster of --ray-address)."
)
ADDRESS_HELP = (
    "With --executor ray: the Ray cluster to join (auto: the one this machine belongs to, "
    "HOST:PORT, or ray://HOST:10001); without it a local Ray runtime starts."
)


def executor_options(command: Callable) -> Callable:
    """Add ``--executor NAME`` and ``--ray-address ADDR`` to a click command."""
    address = click.option("--ray-address", default=None, metavar="ADDR", help=ADDRESS_HELP)
    name = click.option(
        "--executor", "executor_name", default=None, metavar="NAME", help=EXECUTOR_HELP
    )
    return name(address(command))


def executor_spec(name: str | None, address: str | None, base: Any = None, **options: Any):
    """The engine's :class:`~flare_uda.plugin.PluginSpec` from the command line.

    Parameters
    ----------
    name : str or None
        ``--executor`` (``None``: ``base``'s engine).
    address : str or None
        ``--ray-address`` (only with the ray engine).
    base : PluginSpec or None
        The engine otherwise used (a config's ``executor`` section; default serial).
        Its options are kept when ``name`` names the same engine.
    **options
        Further options for the engine, where it has them (e.g. ``workers``).

    Raises
    ------
    click.BadParameter
        An unknown engine (with the closest name), ``--ray-address`` without the
        ray engine, Ray not installed, or options the engine refuses.
    """
    from flare_uda.plugin import PluginSpec, spec
    from flare_uda.registry import UnknownNameError

    base = base if base is not None else spec("executor", "serial")
    name = name or base.name
    try:
        chosen = base if name == base.name else spec("executor", name)
    except UnknownNameError as err:
        raise click.BadParameter(str(err), param_hint="--executor") from None
    if address is not None and name != "ray":
        raise click.BadParameter(
            f"--ray-address needs --executor ray, got the {name!r} engine",
            param_hint="--ray-address",
        )
    if name == "ray":
        from flare_uda.ray_executor import require_ray

        try:
            require_ray()
        except ImportError as err:
            raise click.BadParameter(str(err), param_hint="--executor") from None
        if address is not None:
            options["address"] = address
    known = {k: v for k, v in options.items() if hasattr(chosen.options, k)}
    try:
        return PluginSpec("executor", name, replace(chosen.options, **known))
    except (TypeError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--executor") from None
