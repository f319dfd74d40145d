"""``flare-uda demo``: the whole method and the ablation on the phantom cohort."""

from __future__ import annotations

from pathlib import Path

import click

from flare_uda.cli._executor import executor_options
from flare_uda.cli._options import device_option, quiet_option, train_processes_option

RUN_FILES = ("config.yaml", "report.md", "ablation.csv", "ablation.png", "overlays.png")
"""What a demo run writes at the top of ``--out`` (stage outputs go to ``--out/stages``)."""


def _refuse_overwriting(config_path: Path, out: Path, config_text: str) -> None:
    """Refuse a ``--config`` file that the run would write over.

    ``--out D`` with ``--config D/config.yaml`` is allowed only while that file
    is exactly the config the run writes there (resuming a run from its own
    saved config), so the user's file is never replaced by different text.
    """
    config, run = config_path.resolve(), out.resolve()
    if not config.is_relative_to(run):
        return
    rel = config.relative_to(run)
    written = rel.parts[0] == "stages" or (len(rel.parts) == 1 and rel.name in RUN_FILES)
    same = rel == Path("config.yaml") and config.read_text(encoding="utf-8") == config_text
    if written and not same:
        raise click.BadParameter(
            f"the run writes {out / rel} itself, so it would overwrite the input config "
            f"{config_path}; expected a config file outside --out {out} (or under another name)",
            param_hint="--config",
        )


@click.command(name="demo")
@click.option(
    "--preset",
    default="quick",
    show_default=True,
    help="Pipeline preset: quick (CPU, ~15 min: six 2-minute trainings), cpu (CPU, "
    "~57 min: Table 7 and the CT-atlas chain, ten 5-minute trainings), tiny (seconds, "
    "CI), paper (GPU).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML config whose sections override --preset's, field by field; a plug-in entry "
    "({name, options}) is replaced whole. Checked before any work; see --print-config.",
)
@click.option(
    "--out",
    default="runs/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Run folder; rerunning resumes from its cached stages.",
)
@device_option
@click.option(
    "--print-config", is_flag=True, help="Print the resolved YAML config (every option) and exit."
)
@quiet_option
@train_processes_option
@executor_options
def command(
    preset: str,
    config_path: str | None,
    out: str,
    device: str,
    print_config: bool,
    quiet: bool,
    train_processes: int,
    executor_name: str | None,
    ray_address: str | None,
) -> None:
    """Run ASIT -> MDM -> PLF -> small net, and the paper's ablation, on the phantom."""
    from flare_uda.cli import _checks
    from flare_uda.pipeline.config import UDAConfig
    from flare_uda.pipeline.presets import get_preset
    from flare_uda.registry import PluginLoadError

    if config_path:
        _checks.yaml_syntax(config_path, "--config")
    try:
        config = get_preset(preset)
        if config_path:
            config = UDAConfig.from_yaml(config_path, base=config)
    except (KeyError, ValueError, TypeError) as err:
        raise click.UsageError(str(err.args[0] if err.args else err)) from err
    except PluginLoadError as err:  # an installed plug-in package that does not import
        raise click.ClickException(str(err)) from err
    if executor_name is not None or ray_address is not None:
        from dataclasses import replace

        from flare_uda.cli._executor import executor_spec

        engine = executor_spec(executor_name, ray_address, config.executor)
        config = replace(config, executor=engine)
    if print_config:
        click.echo(config.to_yaml(), nl=False)
        return
    from flare_uda._device import resolve_device
    from flare_uda.pipeline.demo import run_demo

    try:
        resolve_device(device)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--device") from err
    if config_path:
        _refuse_overwriting(Path(config_path), Path(out), config.to_yaml())
    _checks.output_dir(out, "--out")
    result, report = run_demo(
        config, Path(out), progress=not quiet, device=device, train_processes=train_processes
    )
    click.echo(f"report: {report}")
    for setting, rows in result.rows.items():
        dsc = [r.dsc for r in rows if r.dsc == r.dsc]
        click.echo(f"  {setting:14s} mean DSC {100 * sum(dsc) / max(len(dsc), 1):5.1f}")
    for setting, why in result.notes.get("skipped", {}).items():
        click.echo(f"  {setting:14s} not run: {why}")
