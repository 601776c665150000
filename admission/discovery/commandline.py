"""What a container runs: its command and args as the process sees them, read through the
wrappers that only start another program (``sh -c``, ``bash -lc``, ``env VAR=… cmd``,
``exec``, ``nohup``, ``timeout``, inline ``VAR=… cmd``).

A shell line is read when it is a list of simple commands (``;``, ``&&``, new lines) whose
words are plain, quoted or ``$VAR`` expansions, with output redirections at most. Anything
else a shell can do (pipes, background jobs, ``$(…)``, backticks, ``eval``, ``source``,
control flow, a script file) means mlbom cannot tell what runs: the line is refused with
the text that stopped the reading, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from admission.discovery.environment import UNKNOWN, Env, is_unknown
from admission.discovery.untrusted import MAX_ITEMS, MAX_TEXT, Scan, as_word

SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"})
MAX_DEPTH = 4  # wrappers inside wrappers
# Commands that run nothing else and write no file contents: a script may use them around
# its server. (cp, ln, rm, cat … are not among them: they can put other bytes under a name.)
_HARMLESS = frozenset(
    {"echo", "printf", "mkdir", "ls", "sleep", "true", "false", ":", "nvidia-smi", "date",
     "chmod", "chown", "whoami", "id", "hostname", "pwd", "ulimit", "cd", "umask", "test",
     "[", "df", "du", "free", "uname", "nproc", "printenv"}
)  # fmt: skip
# Scripts that KServe writes itself (pkg/utils, ConfigureModelcarToContainer): they only check.
_KNOWN_SCRIPTS = (
    re.compile(
        r"^echo 'Pre-fetching modelcar [^'\n]*: ' && \[ -d /models \] && \[ \"\$\(ls -A /models\)\" \] "
        r"&& echo 'OK \.\.\. Prefetched and valid \(/models exists\)' \|\| \(echo 'NOK \.\.\. "
        r"Prefetched but modelcar is invalid \(/models does not exist or is empty\)' && exit 1\)$"
    ),
)
_STREAMS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/proc/1/fd/1", "/proc/1/fd/2"})
_REFUSED = frozenset(
    {"eval", "source", ".", "trap", "if", "then", "else", "elif", "fi", "for", "while",
     "until", "do", "done", "case", "esac", "function", "select", "{", "}", "!", "coproc",
     "xargs", "find", "parallel", "su", "sudo", "runuser", "watch", "alias"}
)  # fmt: skip
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
# Tools that run a command in an environment: `TOOL run [options] COMMAND …`, and the options
# of theirs that take a value.
_RUNNERS = {
    "uv": {
        "--with",
        "--python",
        "-p",
        "--project",
        "--directory",
        "--env-file",
        "--group",
        "--extra",
        "--package",
    },
    "poetry": {"-C", "--directory", "-P", "--project"},
    "pipenv": set(),
    "pdm": {"-p", "--project"},
    "hatch": {"-e", "--env"},
    "pixi": {"-e", "--environment", "--manifest-path"},
    "conda": {"-n", "--name", "-p", "--prefix", "--cwd"},
    "mamba": {"-n", "--name", "-p", "--prefix", "--cwd"},
    "micromamba": {"-n", "--name", "-p", "--prefix", "--cwd"},
}
# Programs that only start another: their options that take a value, and how many words they
# take before the command (taskset's CPU list, chrt's priority, timeout's duration).
_WRAPPERS: dict[str, tuple[set[str], int]] = {
    "nohup": (set(), 0), "tini": (set(), 0), "dumb-init": (set(), 0), "--": (set(), 0),
    "setsid": (set(), 0), "command": (set(), 0), "time": (set(), 0),
    "nice": ({"-n"}, 0), "stdbuf": ({"-i", "-o", "-e"}, 0),
    "ionice": ({"-c", "-n", "-p", "--class", "--classdata"}, 0),
    "numactl": ({"-N", "-m", "-C", "-i", "-p", "--cpunodebind", "--membind", "--physcpubind", "--interleave", "--preferred"}, 0),
    "uvx": ({"--from", "--with", "-p", "--python"}, 0),
    "taskset": (set(), 1), "chrt": (set(), 1),
    "timeout": ({"-s", "--signal", "-k", "--kill-after"}, 1),
}  # fmt: skip
_REFUSED_WRAPPERS = frozenset({"builtin", "setpriv", "unshare", "chroot", "nsenter", "prlimit", "capsh"})  # fmt: skip
_REDIRECT = re.compile(r"(?:\d*>>?|&>>?)(&(?:\d+|-))?")


@dataclass
class Invocation:
    """One program a container starts: its argv and environment, and how it was reached."""

    argv: list[str]
    env: Env
    how: str  # "command", "args (the image's entrypoint)", "sh -c"
    harmless: bool = False  # a shell builtin or a command that loads nothing
    cwd: str | None = None  # where a shell line's `cd` went; None: the container's own


@dataclass
class CommandLine:
    """What a container runs, or why mlbom cannot tell."""

    invocations: list[Invocation] = field(default_factory=list)
    refusal: str | None = None  # the shell text that stopped the reading
    script: str | None = None  # the text of a refused line, to look for servers in
    cwd: str | None = None  # the directory a shell line changed to


def read(
    container: dict[str, Any],
    env: Env,
    scan: Scan,
    name: str | None,
    entrypoint: list[str] | None = None,
) -> CommandLine:
    """The programs `container` starts, in order. Without a command the image's
    `entrypoint` runs the args; an image mlbom does not know is taken to run its args (as
    an image without ENTRYPOINT, or with one that execs its arguments, does)."""
    command = [env.expand(as_word(w)) for w in scan.items(container.get("command"), f"container {name}: command", name)]  # fmt: skip
    args = [env.expand(as_word(w)) for w in scan.items(container.get("args"), f"container {name}: args", name)]  # fmt: skip
    for word in (*command, *args):
        scan.text(word, f"container {name}: an argument", name)
    result = CommandLine()
    result.script = " ".join([*command, *args])[:MAX_TEXT]
    if command:
        _unwrap([*command, *args], env, "command", result, 0)
    elif args or entrypoint:
        how = "args (the image's entrypoint)" if entrypoint else "args"
        _unwrap([*(entrypoint or []), *args], env, how, result, 0)
    return result


def _unwrap(argv: list[str], env: Env, how: str, out: CommandLine, depth: int) -> None:
    """Strip the wrappers in front of a program; shell lines are read command by command."""
    if depth > MAX_DEPTH:
        out.refusal = f"more than {MAX_DEPTH} wrappers inside each other"
        return
    env = env.copy()
    while argv:
        base = argv[0].rsplit("/", 1)[-1]
        if base == "exec":  # exec [-cl] [-a NAME] COMMAND: NAME is only argv[0]'s text
            rest = argv[1:]
            while rest and rest[0].startswith("-") and rest[0] != "--":
                option, rest = rest[0], rest[1:]
                if "a" in option[1:]:
                    rest = rest[1:]
            argv = rest[1:] if rest[:1] == ["--"] else rest
        elif base in _REFUSED_WRAPPERS:
            out.refusal = f"{base} (it changes what runs or where, which mlbom does not read)"
            return
        elif base in _WRAPPERS and not _only_prints(argv):
            with_value, before = _WRAPPERS[base]
            argv = _drop_options(argv[1:], with_value)[before:]
        elif base in _RUNNERS and argv[1:2] == ["run"]:
            argv = _drop_options(argv[2:], _RUNNERS[base])  # uv run, conda run -n ENV, …
        elif base == "env":
            command = _env_command(argv[1:], env, out)
            if command is None:
                return
            argv = command
        elif (m := _ASSIGNMENT.match(argv[0])) and depth > 0:
            env.set(m[1], m[2])  # inline VAR=value before a command (in a shell line)
            argv = argv[1:]
        elif base in SHELLS:
            _shell(argv, env, out, depth)
            return
        else:
            break
    if argv:
        harmless = argv[0].rsplit("/", 1)[-1] in _HARMLESS or _only_prints(argv)
        out.invocations.append(Invocation(argv, env, how, harmless=harmless, cwd=out.cwd))


def _only_prints(argv: list[str]) -> bool:
    """``command -v NAME`` says where NAME is; it runs nothing."""
    return argv[0].rsplit("/", 1)[-1] == "command" and argv[1:2] in (["-v"], ["-V"])


def _drop_options(argv: list[str], with_value: set[str]) -> list[str]:
    while argv and argv[0].startswith("-") and argv[0] != "-":
        if argv[0] == "--":
            return argv[1:]
        argv = argv[2:] if argv[0] in with_value else argv[1:]
    return argv


def _env_command(argv: list[str], env: Env, out: CommandLine) -> list[str] | None:
    """``env [-i] [-u NAME] [NAME=VALUE …] COMMAND …``."""
    while argv:
        word = argv[0]
        if word in ("-i", "--ignore-environment", "-"):
            env.values.clear()
            env.origins.clear()
            env.open.clear()
        elif word in ("-u", "--unset") and len(argv) > 1:
            env.values.pop(argv[1], None)
            argv = argv[1:]
        elif word.startswith("-") and word != "--":
            out.refusal = f"env {word} (mlbom does not read env's own options beyond -i and -u)"
            return None
        elif m := _ASSIGNMENT.match(word):
            env.set(m[1], m[2])
        else:
            return argv[1:] if word == "--" else argv
        argv = argv[1:]
    return argv


def _shell(argv: list[str], env: Env, out: CommandLine, depth: int) -> None:
    """``sh [-options] -c SCRIPT [NAME [ARG …]]``; a shell that reads a file or its input
    runs what mlbom cannot see."""
    rest = argv[1:]
    if argv[0].rsplit("/", 1)[-1] == "busybox":
        if not rest or rest[0] not in ("sh", "ash"):
            out.invocations.append(Invocation(argv, env, "busybox"))
            return
        rest = rest[1:]
    reads_c = False
    while rest and rest[0].startswith(("-", "+")) and rest[0] not in ("-", "--"):
        option = rest.pop(0)
        if option in ("-o", "+o") and rest:
            rest.pop(0)
        elif not option.startswith("--") and "c" in option[1:]:
            reads_c = True
        elif option.startswith("--") and option not in ("--login", "--noprofile", "--norc", "--posix"):  # fmt: skip
            out.refusal = f"{argv[0]} {option}"
            return
    if rest and rest[0] == "--":
        rest.pop(0)
    if not reads_c:
        what = f"the script {rest[0]}" if rest else "commands from its input"
        out.refusal = f"{argv[0]} runs {what}, which mlbom cannot see"
        return
    if not rest:
        out.refusal = f"{argv[0]} -c without a command"
        return
    script, params = rest[0], rest[1:]
    if any(known.match(script) for known in _KNOWN_SCRIPTS):
        return
    if argv[0].rsplit("/", 1)[-1] == "bash" and env.get("BASH_ENV") is not None:
        out.refusal = "BASH_ENV makes bash run a file mlbom cannot see before the line"
        return
    if env.open or any(k.startswith("BASH_FUNC_") or k == "IFS" for k in env.values):
        # functions exported through the environment replace commands; IFS splits words
        out.refusal = "the shell's environment may define functions or IFS (envFrom, BASH_FUNC_*, IFS), which mlbom does not read"  # fmt: skip
        return
    try:
        commands = _parse_script(script, env, params)
    except _Unreadable as e:
        out.refusal = str(e)
        out.script = script
        return
    shell_env = env.copy()
    for words in commands:
        assignments = []
        while words and (m := _ASSIGNMENT.match(words[0])):
            assignments.append((m[1], m[2]))
            words = words[1:]
        if not words:  # NAME=value alone: a shell variable, exported when already in env
            for key, value in assignments:
                shell_env.set(key, value)
            continue
        base = words[0].rsplit("/", 1)[-1]
        if base == "export":
            for word in words[1:]:
                if m := _ASSIGNMENT.match(word):
                    shell_env.set(m[1], m[2])
                elif not _NAME.match(word):
                    out.refusal = f"export {word}"
                    return
            continue
        if base == "cd":
            if len(words) != 2 or words[1] == "-" or is_unknown(words[1]):
                out.refusal = " ".join(words)[:200]
                return
            target = words[1]
            out.cwd = target if target.startswith("/") or not out.cwd else f"{out.cwd}/{target}"
            continue
        if base == "unset":
            for word in words[1:]:
                shell_env.values.pop(word, None)
            continue
        if base == "set":
            if any(not w.startswith(("-", "+")) or w == "--" for w in words[1:]):
                out.refusal = " ".join(words)[:200]
                return
            continue
        if base in _REFUSED:
            out.refusal = f"{base} (mlbom does not read shell control flow)"
            out.script = script
            return
        command_env = shell_env.copy()
        for key, value in assignments:
            command_env.set(key, value)
        _unwrap(words, command_env, f"{argv[0]} -c", out, depth + 1)
        if out.refusal:
            return


class _Unreadable(Exception):
    """A shell line mlbom does not read: the message names what stopped it."""


def _parse_script(script: str, env: Env, params: list[str]) -> list[list[str]]:
    """The simple commands of a shell line, their words expanded as the shell would."""
    reader = _ShellReader(script, env, params)
    return reader.commands()


class _ShellReader:
    """A POSIX shell tokenizer for the subset mlbom reads; anything else raises."""

    def __init__(self, text: str, env: Env, params: list[str]) -> None:
        self.text, self.env, self.params = text, env, params
        self.i = 0
        self.vars: dict[str, str] = {}

    def commands(self) -> list[list[str]]:
        commands: list[list[str]] = []
        words: list[str] = []
        while True:
            self._blanks()
            if self.i >= len(self.text):
                break
            c = self.text[self.i]
            if c in ";\n" or self.text.startswith("&&", self.i):
                if c == "&" and not words:
                    raise _Unreadable("&& without a command before it")
                self.i += 2 if c == "&" else 1
                if words:
                    commands.append(words)
                    self._assignments(words)
                words = []
            elif self._redirection():
                continue
            elif c in "|&()<`":
                raise _Unreadable(f"{self._near()} (pipes, background jobs, subshells, input redirection and command substitution are not read)")  # fmt: skip
            elif c == "#":  # a comment starts at a word
                while self.i < len(self.text) and self.text[self.i] != "\n":
                    self.i += 1
            else:
                words += self._word()
                if len(words) > MAX_ITEMS:
                    raise _Unreadable(f"a command of more than {MAX_ITEMS} words")
        if words:
            commands.append(words)
        if len(commands) > MAX_ITEMS:
            raise _Unreadable(f"more than {MAX_ITEMS} commands")
        return commands

    def _assignments(self, words: list[str]) -> None:
        # a command of assignments only (or an export) sets variables for the commands after it
        if words and words[0] == "export":
            words = [w for w in words[1:] if _ASSIGNMENT.match(w)]
        if any(w.startswith("IFS=") for w in words):
            raise _Unreadable("IFS= (mlbom splits words on blanks only)")
        if words and all(_ASSIGNMENT.match(w) for w in words):
            for word in words:
                name, _, value = word.partition("=")
                self.vars[name] = value

    def _near(self) -> str:
        start = max(0, self.i - 20)
        return f"cannot read the shell line near {self.text[start : self.i + 20]!r}"

    def _blanks(self) -> None:
        while self.i < len(self.text):
            if self.text[self.i] in " \t":
                self.i += 1
            elif self.text.startswith("\\\n", self.i):
                self.i += 2
            else:
                break

    def _redirection(self) -> bool:
        """Output redirections to the container's streams (``> /dev/null``, ``2>&1``):
        dropped. Writing into a file could put other bytes under a model's name."""
        m = _REDIRECT.match(self.text, self.i)
        if not m:
            return False
        self.i = m.end()
        if not m.group(1):
            self._blanks()
            target = self._word()
            if target != [t for t in target if t in _STREAMS] or not target:
                raise _Unreadable(f"{self._near()} (output written into a file)")
        return True

    def _word(self) -> list[str]:
        """One word, or several when an unquoted expansion splits into fields."""
        fields: list[str] = []
        current: list[str] = []
        quoted = False
        while self.i < len(self.text):
            c = self.text[self.i]
            if c in " \t\n;&|()<>`":
                if c == ">" or c == "<":
                    break
                if c in "`":
                    raise _Unreadable(f"{self._near()} (command substitution is not read)")
                break
            if (
                c in "*?"
                or (c == "[" and not (not current and self._whole_word("[")))
                or (c == "{" and re.match(r"\{[^}\s]*(,|\.\.)[^}\s]*\}", self.text[self.i :]))
            ):
                raise _Unreadable(f"{self._near()} (pathname and brace expansion are not read)")
            if c == "$" and self.text[self.i + 1 : self.i + 2] in ("'", '"'):
                raise _Unreadable(f"{self._near()} ($'…' and $\"…\" quoting are not read)")
            if c == "\\":
                if self.i + 1 < len(self.text) and self.text[self.i + 1] == "\n":
                    self.i += 2
                    continue
                current.append(self.text[self.i + 1 : self.i + 2])
                self.i += 2
                quoted = True
            elif c == "'":
                end = self.text.find("'", self.i + 1)
                if end < 0:
                    raise _Unreadable(f"{self._near()} (an unclosed quote)")
                current.append(self.text[self.i + 1 : end])
                self.i = end + 1
                quoted = True
            elif self.text.startswith('"$@"', self.i):
                self.i += 4
                if self.params[1:]:
                    current.append(self.params[1])
                    for param in self.params[2:]:
                        fields.append("".join(current))
                        current = [param]
            elif c == '"':
                current.append(self._double_quoted())
                quoted = True
            elif c == "$":
                value = self._expansion()
                if value is None:
                    current.append("$")
                    continue
                parts = [value] if UNKNOWN in value else value.split()
                if not parts:
                    continue
                current.append(parts[0])
                for part in parts[1:]:
                    fields.append("".join(current))
                    current = [part]
            else:
                current.append(c)
                self.i += 1
        if current or quoted:
            fields.append("".join(current))
        return fields

    def _whole_word(self, word: str) -> bool:
        end = self.i + len(word)
        return self.text.startswith(word, self.i) and (
            end == len(self.text) or self.text[end] in " \t\n;"
        )

    def _double_quoted(self) -> str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\\" and self.i + 1 < len(self.text) and self.text[self.i + 1] in '$`"\\\n':
                out.append("" if self.text[self.i + 1] == "\n" else self.text[self.i + 1])
                self.i += 2
            elif c == "`":
                raise _Unreadable(f"{self._near()} (command substitution is not read)")
            elif c == "$":
                value = self._expansion(quoted=True)
                out.append("$" if value is None else value)
            else:
                out.append(c)
                self.i += 1
        raise _Unreadable(f"{self._near()} (an unclosed quote)")

    def _expansion(self, quoted: bool = False) -> str | None:
        """``$NAME``, ``${NAME}``, ``$1``…, ``"$@"``; None for a lone ``$``."""
        text, i = self.text, self.i + 1
        if i < len(text) and text[i] == "(":
            raise _Unreadable(f"{self._near()} (command substitution is not read)")
        if i < len(text) and text[i] == "{":
            end = text.find("}", i)
            name = text[i + 1 : end] if end > 0 else ""
            if not _NAME.match(name) and not name.isdigit():
                raise _Unreadable(f"{self._near()} (only ${{NAME}} is read, not its operators)")
            self.i = end + 1
            return self._lookup(name)
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*$]").match(text, i)
        if not m:
            if i < len(text) and text[i] in "?!#-":
                raise _Unreadable(f"{self._near()} (special parameters are not read)")
            self.i = i
            return None
        self.i = m.end()
        if m[0] == "$":
            return "1"  # the shell's process id: a number, whatever it is
        if m[0] in "@*":
            if quoted and m[0] == "@" and len(self.params) > 2:
                raise _Unreadable(f'{self._near()} ("$@" inside a word is not read)')
            return " ".join(self.params[1:])
        return self._lookup(m[0])

    def _lookup(self, name: str) -> str:
        if name.isdigit():
            index = int(name)
            return self.params[index] if index < len(self.params) else ""
        if name in self.vars:
            return self.vars[name]
        return self.env.get(name) or ""
