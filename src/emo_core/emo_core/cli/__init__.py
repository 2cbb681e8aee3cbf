"""The ``emo`` command line.

Every module in this package that defines ``register(registry)`` contributes commands, so each
stage owns its own CLI file. Commands may be nested by name (``"train inverse"``). User errors
(:class:`~emo_core.errors.EmoError`) end as one line on stderr with exit code 2, never a traceback.
Ctrl-C, SIGTERM and SIGHUP stop any command the same safe way (``finally`` blocks run: servos ease
home and release torque, temp files go) and exit with 128 + the signal (:mod:`emo_core.signals`).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence

from ..errors import EmoError
from ..signals import exit_status, stop_on_signals
from ._args import state_bounds

LOG = logging.getLogger("emo_core.cli")
EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line like any other user error: one line, exit 2
    (``emo: error: train predictor: argument --epochs: 0 is outside [1, 10000]``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix("emo").strip()
        print(f"emo: error: {where + ': ' if where else ''}{' '.join(message.split())}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


class Registry:
    """Builds the nested argparse tree from ``command("group sub", ...)`` calls."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._root = parser.add_subparsers(dest="command", metavar="COMMAND")
        self._groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): self._root}
        self._group_parsers: dict[tuple[str, ...], argparse.ArgumentParser] = {}
        self._commands: list[argparse.ArgumentParser] = []

    def _group(self, path: tuple[str, ...], help_text: str | None) -> argparse._SubParsersAction:
        if path not in self._groups:
            parent = self._group(path[:-1], None)
            group_parser = parent.add_parser(path[-1], help=help_text or f"{path[-1]} commands")
            group_parser.set_defaults(func=_usage_of(group_parser))
            self._group_parsers[path] = group_parser
            self._groups[path] = group_parser.add_subparsers(metavar="SUBCOMMAND")
        return self._groups[path]

    def group(self, name: str, help_text: str) -> None:
        """Declare a command group (e.g. ``train``) with its help text; optional."""
        self._group(tuple(name.split()), help_text)

    def command(self, name: str, help_text: str, func: Callable[[argparse.Namespace], int | None],
                description: str | None = None) -> argparse.ArgumentParser:
        """Add a command; ``func(args)`` runs it and returns an exit code (None means 0)."""
        path = tuple(name.split())
        parser = self._group(path[:-1], None).add_parser(
            path[-1], help=help_text, description=description or help_text)
        parser.set_defaults(func=func)
        self._commands.append(parser)
        return parser


def _usage_of(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    return show


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emo", description="Emo human-robot facial coexpression")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    registry = Registry(parser)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # __main__ and private helpers are not command modules
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(registry)
    for command in registry._commands:
        state_bounds(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # a refused command line (one line printed) or --help
        return int(exc.code or 0)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    try:
        with stop_on_signals():
            code = args.func(args)
    except EmoError as exc:
        print(f"emo: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        print(f"emo: {str(exc) or 'interrupted'}", file=sys.stderr)
        return exit_status(exc)
    except BrokenPipeError:
        # The reader went away (e.g. `emo ... | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # The machine refused a path we were given (read-only, /proc, under a file, a full disk):
        # the user's environment, not a bug -- one line naming the path.
        print(f"emo: error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return int(code or 0)


def _os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


if __name__ == "__main__":
    sys.exit(main())
