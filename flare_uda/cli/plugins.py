"""``flare-uda plugins``: every registered plug-in of every kind, installed packages' included."""

from __future__ import annotations

import json

import click


@click.command(name="plugins")
@click.argument("kind", required=False)
@click.option("--options", "show_options", is_flag=True, help="Also list each option's default.")
def command(kind: str | None, show_options: bool) -> None:
    """List plug-ins by kind (translator, segmenter, inferer, matcher, registrar, filter,
    ensembler, executor), with the module that registered each. In a YAML config a plug-in
    is written {name: NAME, options: {...}}."""
    from flare_uda.options import to_plain
    from flare_uda.plugin import KINDS, option_defaults, registry
    from flare_uda.registry import PluginLoadError, UnknownNameError

    try:
        kinds = [kind] if kind else list(KINDS)
        for k in kinds:
            reg = registry(k)
            click.echo(f"{k}:")
            for name in reg.names():
                cls = reg.get(name)
                click.echo(f"  {name:16s} {cls.__module__}.{cls.__qualname__}")
                if show_options:
                    for option, default in option_defaults(cls.config_class).items():
                        click.echo(f"      {option}: {json.dumps(to_plain(default), default=str)}")
    except UnknownNameError as err:
        raise click.BadParameter(str(err), param_hint="KIND") from None
    except PluginLoadError as err:
        raise click.ClickException(str(err)) from None
