"""The ``flare-uda`` command line: one subcommand per stage.

Subcommands are loaded lazily (``--help`` stays fast and does not import
torch). A stage adds its command by naming it in :data:`COMMANDS`. Every
error reaches the user as one line with exit code 1 (runtime) or 2 (usage),
never as a traceback (:mod:`flare_uda.cli._errors`).
"""

from __future__ import annotations

import importlib

import click

from flare_uda.cli._errors import close_progress_bars, debugging, one_line_error

# name -> "module:attribute" of a click.Command; each stage owns its module.
COMMANDS: dict[str, tuple[str, str]] = {
    "phantom": ("flare_uda.cli.phantom", "Generate the synthetic abdominal phantom cohort."),
    "demo": ("flare_uda.cli.demo", "Run the whole method on the phantom cohort."),
    "adapt": ("flare_uda.cli.adapt", "Run the whole method on your own CT and MRI folders."),
    "translate": ("flare_uda.cli.translate", "Train or apply a CT <-> MR translator."),
    "evaluate": ("flare_uda.cli.evaluate", "FLARE DSC and NSD of predictions against references."),
    "efficiency": ("flare_uda.cli.efficiency", "Time and memory of a command (FLARE style)."),
    "train": ("flare_uda.cli.train", "Train a segmentation U-Net on labelled volumes."),
    "predict": ("flare_uda.cli.predict", "Label volumes with a trained model (windows or ROI)."),
    "plugins": ("flare_uda.cli.plugins", "List the registered plug-ins of every kind."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        return module.command

    def invoke(self, ctx: click.Context):
        """Run the subcommand; an exception becomes one ``Error:`` line and exit code 1."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as err:
            close_progress_bars()
            if debugging():
                raise
            raise one_line_error(err) from err

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flare-uda")
def main() -> None:
    """flare_uda: CT -> MRI domain adaptation for abdominal organ segmentation."""


__all__ = ["main", "COMMANDS"]
