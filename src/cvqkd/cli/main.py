"""Build the ``cvqkd`` application and run it with user-friendly error handling."""

from __future__ import annotations

import importlib
import sys

import typer

from cvqkd import __version__
from cvqkd.errors import CvqkdError

#: Sub-command modules, each with ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = (
    "plan",
    "kme",
    "budget",
    "codes",
    "simulate",
    "apps",
    "keyrate",
    "fer",
    "run",
)

app = typer.Typer(
    name="cvqkd",
    help="CV-QKD over fibre shared with classical WDM traffic: plan, make keys, deliver them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cvqkd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """CV-QKD over fibre shared with classical WDM traffic."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"cvqkd.cli.{_name}").register(app)


def run(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning a :class:`CvqkdError` into one line and an exit code."""
    try:
        app(args=argv, standalone_mode=True)
    except CvqkdError as exc:
        sys.stderr.write(f"cvqkd: error: {exc}\n")
        return exc.exit_code
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        sys.stderr.write("cvqkd: interrupted\n")
        return 130
    return 0


def main() -> None:  # pragma: no cover - thin wrapper for console_scripts
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
