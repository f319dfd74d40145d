"""``flare-uda efficiency -- CMD ...``: time and memory of a command, FLARE style."""

from __future__ import annotations

import sys

import click


@click.command(
    "efficiency",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--json", "json_out", type=click.Path(), default=None, help="Write the report here.")
@click.option("--interval", default=0.1, show_default=True, type=float, help="Sampling period (s).")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(json_out: str | None, interval: float, cmd: tuple[str, ...]) -> None:
    """Run CMD, print wall time, peak RSS, memory-time areas; exit with CMD's status."""
    from flare_uda._atomic import write_json
    from flare_uda.cli import _checks
    from flare_uda.metrics.efficiency import format_report, measure

    if json_out:
        _checks.output_file(json_out, "--json")
    try:
        report = measure(list(cmd), interval=interval)
    except (ValueError, FileNotFoundError, TypeError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(format_report(report))
    if json_out:
        write_json(json_out, {"command": list(cmd), **report.as_dict()})
    code = report.exit_code or 0
    sys.exit(128 - code if code < 0 else code)  # killed by signal N -> 128 + N, as a shell
