"""The ``lwd`` command line: ``lwd <command> [--preset NAME] [--field value ...]``.

Each command takes one typed frozen config (parsed by tyro); ``--preset`` picks the defaults
(``quickstart``, ``debug``, ``benchmark``) that the other flags then override. Every option is
validated (:func:`check_options`) before the command does any work. User errors
(:class:`~lwd.utils.errors.LwdError`) print one line ``error: ...`` and exit 2.
"""

from __future__ import annotations

import contextlib
import io
import sys

import tyro

from lwd.cli.commands import COMMANDS, Command
from lwd.utils.errors import LwdError
from lwd.utils.logs import configure_logging


def _overview() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        "usage: lwd <command> [--preset NAME] [options]",
        "",
        "lwd: Learning While Deploying (DIVL + QAM offline-to-online RL for a robot fleet)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {cmd.help}" for name, cmd in COMMANDS.items()]
    lines += ["", "Run `lwd <command> --help` for the options of a command, `lwd --version` for the version."]
    return "\n".join(lines)


def _split_preset(args: list[str], cmd: Command) -> tuple[str, list[str]]:
    preset = cmd.default_preset
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--preset":
            if i + 1 >= len(args):
                raise LwdError("--preset needs a value; choose from " + ", ".join(cmd.presets))
            preset = args[i + 1]
            i += 2
            continue
        if a.startswith("--preset="):
            preset = a.split("=", 1)[1]
            i += 1
            continue
        rest.append(a)
        i += 1
    if preset not in cmd.presets:
        raise LwdError(
            f"unknown preset {preset!r} for `lwd {cmd.name}`; choose from {', '.join(cmd.presets)}"
        )
    return preset, rest


def check_options(cfg, default) -> None:
    """Validate every option before the command does any work: ``cfg.validate()`` (ranges, names,
    cross-field rules), ``cfg.check_out()`` (the output directory) and, for ``lwd run``, that no
    option the run sets itself was given (``check_not_set_by_run`` against the preset)."""
    for hook in ("validate", "check_out"):
        fn = getattr(cfg, hook, None)
        if fn is not None:
            fn()
    fixed = getattr(cfg, "check_not_set_by_run", None)
    if fixed is not None:
        fixed(default)


def _parse(cmd, preset: str, rest: list[str], prog: str, description: str):
    """``tyro.cli`` with its parse errors (a boxed, multi-line message) turned into one ``LwdError``
    line; ``--help`` output passes through untouched."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            return tyro.cli(cmd.config_type, default=cmd.presets[preset], args=rest, prog=prog,
                            description=description)  # fmt: skip
    except SystemExit as e:
        if e.code in (0, None):
            sys.stderr.write(buf.getvalue())
            raise
        raise LwdError(_one_line(buf.getvalue()) or f"invalid arguments for {prog}") from None


def _one_line(boxed: str) -> str:
    """``Title: message`` from tyro's error box (the text above its first separator line)."""
    title, body = "", []
    for line in boxed.splitlines():
        text = line.strip().strip("│╭╮╰╯").strip()
        if line.strip().startswith("╭"):
            title = text.strip("─ ").strip()
        elif set(text) <= set("─ ") and body:
            break
        elif text:
            body.append(text)
    msg = " ".join(body)
    if title and msg and not msg.lower().startswith(title.lower()):
        return f"{title}: {msg}"
    return msg or title


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    configure_logging()  # our INFO lines; third-party libraries only from WARNING up
    if not args or args[0] in ("-h", "--help"):
        print(_overview())
        return 0
    if args[0] in ("-V", "--version"):
        from lwd import __version__

        print(f"lwd {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_overview()}", file=sys.stderr)
        return 2
    cmd = COMMANDS[name]
    try:
        preset, rest = _split_preset(rest, cmd)
        description = (
            f"{cmd.help}\n\nPresets (--preset NAME, default {cmd.default_preset}): {', '.join(cmd.presets)}; "
            "any option below overrides the preset."
        )
        cfg = _parse(cmd, preset, rest, f"lwd {name}", description)
        check_options(cfg, cmd.presets[preset])
        cmd.fn(cfg)
    except LwdError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; progress so far is saved, run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
