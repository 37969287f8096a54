"""Argument checking shared by every `vidcost` command and the `analysis/` scripts.

One mechanism, so that every value is checked before any expensive work and every mistake reads the same:

* `ArgumentParser` — argparse with a one-line error that ends in "see --help" (argparse's own prints the
  whole usage block first); subcommand parsers inherit it.
* type converters (`finite_float`, `positive_float`, `whole_number`, `budget`, `budget_list`,
  `method_name`, `method_list`) — NaN, infinity, a budget outside (0, 1] or an unknown method is an
  argument error naming the option, raised while the command line is parsed.
* `run_command` — a `VidcostError` from the work becomes one line on stderr and exit code 2, warnings
  become `prog: warning: …` lines; the CLI and the scripts both call it.

Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from typing import Any, Callable, NoReturn

from vidcost.errors import VidcostError

USAGE_ERROR = 2  # argparse's and the CLI's exit code for bad input


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with errors on one line: `prog: error: MESSAGE; see prog --help`."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _argument_error(converter: Callable[[str], Any]) -> Callable[[str], Any]:
    """A converter whose VidcostError (e.g. from the method registry) reads as an argument error."""

    def convert(text: str) -> Any:
        try:
            return converter(text)
        except VidcostError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    convert.__name__ = converter.__name__  # argparse names the converter in "invalid X value" messages
    return convert


def finite_float(text: str) -> float:
    """A real number; NaN and infinity are refused (a target of `nan` would pass every comparison)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be above 0")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number of 0 or more."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be 0 or more")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    """A converter for an integer of at least `minimum` (a count of frames, repeats, threads …)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    convert.__name__ = "whole number"
    return convert


@_argument_error
def budget(text: str) -> float:
    """A kept fraction of visual tokens in (0, 1] (`vidcost.methods.check_budget`)."""
    from vidcost.methods import check_budget

    return check_budget(finite_float(text))


def budget_list(text: str) -> list[float]:
    """Comma-separated budgets, e.g. `0.1,0.25,0.5`; each in (0, 1]."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"'{text}' has an empty entry; write budgets like 0.1,0.25")
    return [budget(part) for part in parts]


@_argument_error
def method_name(text: str) -> str:
    """A pruning method the registry resolves (`vidcost.methods.get_method`); unknown names list the valid."""
    from vidcost.methods import get_method

    get_method(text)
    return text


def method_list(text: str) -> list[str]:
    """Comma-separated pruning methods, each one the registry resolves."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"'{text}' has an empty entry; write methods like fastv,mmgvid")
    return [method_name(part) for part in parts]


def run_command(prog: str, work: Callable[[], int | None]) -> int:
    """Run `work()` as a command: its exit code, a VidcostError as one line and exit code 2.

    Warnings raised during the work are printed after it as `prog: warning: …` (one line each), so a
    suspect-but-usable input (a budget given to vanilla) is said, not hidden in Python's warning format.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = int(work() or 0)
        except VidcostError as err:
            code = _fail(prog, str(err))
        except BrokenPipeError:
            # `vidcost flops | head` closed our stdout: not an error of ours; silence the flush at exit too.
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
    ours = [w for w in caught if _from_vidcost(w)]
    for text in dict.fromkeys(" ".join(str(w.message).split()) for w in ours):
        print(f"{prog}: warning: {text}", file=sys.stderr)
    for other in (w for w in caught if not _from_vidcost(w)):  # a library's: its own filters decide
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    return code


def _fail(prog: str, message: str) -> int:
    # One line, whatever the message holds: a caller's exception text may carry newlines.
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    return USAGE_ERROR


def _from_vidcost(warning: warnings.WarningMessage) -> bool:
    """Raised by vidcost's own code (or an `analysis/` script beside it), not by a library it calls."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1]
    where = Path(warning.filename).resolve()
    return any(where.is_relative_to(root) for root in (package, package.parent / "analysis"))


def run_script(main: Callable[[], int | None]) -> NoReturn:
    """The entry point of an `analysis/` script: `main()` under the CLI's error handling, then exit.

    `if __name__ == "__main__": run_script(main)` — a bad argument or a `VidcostError` is one line and exit
    code 2, never a traceback.
    """
    from pathlib import Path

    sys.exit(run_command(Path(sys.argv[0]).name, main))
