"""Argument policies for the exec tool when no sandbox confines it (the guard mode).

Without bubblewrap the only thing between a model and the machine is what the allowed
programs are told to do, so every program gets an explicit policy: the options it may be
given (and whether each takes a value, and of what kind), and what its operands are.
Anything not in the policy is refused, with the reason. The classes of escape this closes:

- options that make a program run another program (``sort --compress-program=sh``) or
  open files named inside a file (``--files0-from``), write files (``sort -o``), or
  follow links (``ls -L``, ``grep -R``): none of them is in any policy;
- values glued to options (``-o/tmp/x``, ``-f/etc/passwd``, ``--file=/etc/passwd``) and
  clusters of short options (``-rnf/etc/passwd``) are parsed as GNU getopt parses them,
  options after operands included (GNU permutes them), up to ``--``;
- abbreviated long options (GNU accepts ``--compress`` for ``--compress-program``): a long
  option must be spelled out exactly as the policy names it;
- every path (an operand, or the value of an option that names a file) is checked with the
  workspace's no-link walk: inside the workspace, no ``..``, no symbolic link on the way or
  at the end, and only a regular file or a folder (no devices, fifos or sockets). An
  absolute path inside the workspace is passed on relative to it, since the program runs
  in the workspace as an unprivileged user who may not be able to walk its parents.

A program with no policy runs only under bubblewrap.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Literal

from services.tools.workspace import PathNotFound, PathRefused, ToolFailure, Workspace

Kind = Literal["path", "text", "number"]
NUMBER = re.compile(r"^[+-]?\d{1,18}[A-Za-z]{0,3}$")  # 10, -5, +3, 4K, 1MiB


class ArgumentRefused(ToolFailure):
    status, code = 400, "argument_refused"


@dataclass(frozen=True)
class ArgPolicy:
    """What one program may be given: flags, options with values, and its operands."""

    flags: frozenset[str]
    valued: dict[str, Kind] = field(default_factory=dict)
    operands: Kind = "path"
    # grep: the first operand is the pattern unless one of these options gave it
    pattern_first_unless: frozenset[str] = frozenset()
    numeric_short: bool = False  # head -5 means head -n 5
    parse_options: bool = True  # echo treats nothing as an option it would act on

    def allowed(self) -> str:
        return ", ".join(sorted({*self.flags, *self.valued}))


def _set(*names: str) -> frozenset[str]:
    return frozenset(names)


_COMMON = _set("--help", "--version")
_HEAD_TAIL = ArgPolicy(
    flags=_COMMON | _set("-q", "-v", "-z", "--quiet", "--silent", "--verbose", "--zero-terminated"),
    valued={"-n": "number", "-c": "number", "--lines": "number", "--bytes": "number"},
    numeric_short=True,
)

POLICIES: dict[str, ArgPolicy] = {
    "echo": ArgPolicy(flags=frozenset(), operands="text", parse_options=False),
    "cat": ArgPolicy(
        flags=_COMMON
        | _set("-A", "-b", "-e", "-E", "-n", "-s", "-t", "-T", "-u", "-v")
        | _set("--show-all", "--number-nonblank", "--show-ends", "--number")
        | _set("--squeeze-blank", "--show-tabs", "--show-nonprinting"),
    ),
    "wc": ArgPolicy(
        flags=_COMMON
        | _set("-c", "-m", "-l", "-L", "-w")
        | _set("--bytes", "--chars", "--lines", "--max-line-length", "--words"),
    ),
    "head": _HEAD_TAIL,
    "tail": _HEAD_TAIL,  # no -f/-F/--follow/--pid/--retry: a follow would only time out
    "sort": ArgPolicy(
        flags=_COMMON
        | _set("-b", "-d", "-f", "-g", "-i", "-M", "-h", "-n", "-r", "-V", "-c", "-C")
        | _set("-m", "-s", "-u", "-z", "--ignore-leading-blanks", "--dictionary-order")
        | _set("--ignore-case", "--general-numeric-sort", "--ignore-nonprinting")
        | _set("--month-sort", "--human-numeric-sort", "--numeric-sort", "--reverse")
        | _set("--version-sort", "--check", "--merge", "--stable", "--unique")
        | _set("--zero-terminated"),
        valued={"-k": "text", "--key": "text", "-t": "text", "--field-separator": "text"},
    ),
    "grep": ArgPolicy(
        flags=_COMMON
        | _set("-i", "-v", "-w", "-x", "-c", "-l", "-L", "-n", "-h", "-H", "-o", "-q")
        | _set("-s", "-r", "-E", "-F", "-G", "-P", "-a", "-I", "-z", "-Z", "-b", "-y")
        | _set("--ignore-case", "--no-ignore-case", "--invert-match", "--word-regexp")
        | _set("--line-regexp", "--count", "--files-with-matches", "--files-without-match")
        | _set("--line-number", "--no-filename", "--with-filename", "--only-matching")
        | _set("--quiet", "--silent", "--no-messages", "--recursive", "--extended-regexp")
        | _set("--fixed-strings", "--basic-regexp", "--perl-regexp", "--text", "--null-data")
        | _set("--null", "--byte-offset"),
        valued={
            "-e": "text",
            "--regexp": "text",
            "-f": "path",
            "--file": "path",
            "-m": "number",
            "--max-count": "number",
            "-A": "number",
            "-B": "number",
            "-C": "number",
            "--after-context": "number",
            "--before-context": "number",
            "--context": "number",
            "--include": "text",
            "--exclude": "text",
            "--exclude-dir": "text",
        },
        pattern_first_unless=_set("-e", "--regexp", "-f", "--file"),
    ),
    "ls": ArgPolicy(
        flags=_COMMON
        | _set("-a", "-A", "-l", "-h", "-R", "-1", "-t", "-S", "-r", "-d", "-F", "-p")
        | _set("-i", "-s", "-n", "-g", "-o", "-G", "-U", "-X", "-v", "-c", "-u", "-Q")
        | _set("-N", "-b", "-q", "-m", "-x", "-C", "--all", "--almost-all")
        | _set("--human-readable", "--recursive", "--reverse", "--directory", "--classify")
        | _set("--inode", "--size", "--numeric-uid-gid", "--literal", "--escape")
        | _set("--quote-name", "--full-time", "--group-directories-first", "--no-group"),
        valued={"-I": "text", "--ignore": "text", "--hide": "text", "-w": "number"},
    ),
}
# Not here on purpose: -L/--dereference/-H (ls), -R/--dereference-recursive, -d/-D (grep),
# -o/--output, -T/--temporary-directory, --compress-program, --random-source (sort),
# --files0-from (wc, sort), -f/-F/--follow (tail), --color (an optional value).


def check_arguments(
    program: str, args: list[str], policy: ArgPolicy, workspace: Workspace
) -> list[str]:
    """The arguments to run ``program`` with, each path checked (and made relative), or
    ArgumentRefused/PathRefused naming the argument and the rule it broke."""
    if not policy.parse_options:
        return _checked_operands(program, args, policy.operands, workspace)
    out = list(args)
    operands: list[int] = []  # positions of operands in args
    seen: set[str] = set()
    i, end_of_options = 0, False
    while i < len(args):
        arg = args[i]
        if end_of_options or arg == "-" or not arg.startswith("-"):
            operands.append(i)
        elif arg == "--":
            end_of_options = True
        elif arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in policy.flags:
                if eq:
                    raise ArgumentRefused(f"{program}: option {name} takes no value")
            elif name in policy.valued:
                if not eq:
                    i = _need_value(program, name, args, i)
                    out[i] = _checked_value(program, name, args[i], policy.valued[name], workspace)
                else:
                    kind = policy.valued[name]
                    out[i] = f"{name}={_checked_value(program, name, value, kind, workspace)}"
            else:
                raise _not_allowed(program, name, policy)
            seen.add(name)
        else:
            i = _short_cluster(program, args, out, i, policy, workspace, seen)
        i += 1
    pattern_given = bool(seen & policy.pattern_first_unless)
    for n, pos in enumerate(operands):
        if policy.pattern_first_unless and n == 0 and not pattern_given:
            continue  # grep's pattern: text
        out[pos] = _checked(program, args[pos], policy.operands, workspace, what="operand")
    return out


def _short_cluster(
    program: str,
    args: list[str],
    out: list[str],
    i: int,
    policy: ArgPolicy,
    workspace: Workspace,
    seen: set[str],
) -> int:
    """Parse ``-abc``/``-ovalue``/``-o value`` at ``args[i]``; return the last index used."""
    arg = args[i]
    if policy.numeric_short and arg[1:].isdigit() and len(arg) <= 19:
        return i
    j = 1
    while j < len(arg):
        opt = "-" + arg[j]
        if opt in policy.flags:
            seen.add(opt)
            j += 1
            continue
        if opt not in policy.valued:
            raise _not_allowed(program, opt, policy, within=arg)
        seen.add(opt)
        kind = policy.valued[opt]
        glued = arg[j + 1 :]
        if glued:
            out[i] = arg[: j + 1] + _checked_value(program, opt, glued, kind, workspace)
            return i
        i = _need_value(program, opt, args, i)
        out[i] = _checked_value(program, opt, args[i], kind, workspace)
        return i
    return i


def _need_value(program: str, option: str, args: list[str], i: int) -> int:
    if i + 1 >= len(args):
        raise ArgumentRefused(f"{program}: option {option} needs a value")
    return i + 1


def _not_allowed(program: str, option: str, policy: ArgPolicy, within: str = "") -> Exception:
    shown = f"option {option}" + (f" (in {within!r})" if within and within != option else "")
    return ArgumentRefused(
        f"{program}: {shown} is not allowed without a sandbox (allowed: {policy.allowed()})"
    )


def _checked_value(program: str, option: str, value: str, kind: Kind, ws: Workspace) -> str:
    return _checked(program, value, kind, ws, what=f"the value of {option}")


def _checked_operands(program: str, args: list[str], kind: Kind, ws: Workspace) -> list[str]:
    return [_checked(program, a, kind, ws, what="operand") for a in args]


def _checked(program: str, value: str, kind: Kind, ws: Workspace, *, what: str) -> str:
    if kind == "text":
        return value
    if kind == "number":
        if not NUMBER.match(value):
            raise ArgumentRefused(f"{program}: {what} must be a number, not {value!r}")
        return value
    if value == "-":
        return value  # standard input, which is empty
    try:
        return checked_path(value, ws)
    except ToolFailure as exc:
        raise type(exc)(f"{program}: {what} {value!r}: {exc.message}") from None


def checked_path(raw: str, ws: Workspace) -> str:
    """``raw`` relative to the workspace after the no-link walk, or PathRefused. A name
    that does not exist (yet) is allowed: the program reports it."""
    loc = ws.locate(raw)
    if loc.name is None:
        return "."
    try:
        with ws.directory(loc.parents) as fd:
            st = os.stat(loc.name, dir_fd=fd, follow_symlinks=False)
    except PathNotFound:
        return loc.display
    except FileNotFoundError:
        return loc.display
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise PathRefused("the name is too long") from None
        raise
    if stat.S_ISLNK(st.st_mode):
        raise PathRefused("a symbolic link; links are not followed")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise PathRefused("not a regular file or folder (devices, fifos, sockets are refused)")
    rel = loc.display
    # a name the program would read as an option is passed as ./name
    return f"./{rel}" if rel.startswith("-") else rel
