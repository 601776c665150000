"""A server's command line read as its own parser reads it (argparse, clap, llama.cpp's).

The reader knows, per runtime, which options name what is loaded (`Options.models`), which
take one value, which take none and which take several. Where the runtime could read a word
otherwise than mlbom does, the reading is refused (`Parsed.ambiguities`), never guessed:
an abbreviation of a model-bearing option (argparse accepts unique prefixes), a
model-bearing option given twice with different values, a positional model beside the
option form, a word after an option mlbom does not know that could be the positional model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from admission.discovery.environment import is_unknown


@dataclass(frozen=True)
class Options:
    """How one runtime's parser reads its options."""

    models: Mapping[str, str]  # spelling -> what it names ("model", "revision", "tokenizer", …)
    values: frozenset[str] = frozenset()  # other options that take one value
    flags: frozenset[str] = frozenset()  # options that take none
    multi: frozenset[str] = frozenset()  # options loading every word up to the next option
    optional: frozenset[str] = frozenset()  # options whose value may be left out (nargs='?')
    positional: str | None = None  # what a positional argument names, if the runtime takes one
    underscores: bool = False  # --max_model_len is --max-model-len
    prefixes: bool = False  # argparse's unique-prefix abbreviations
    equals: bool = True  # --opt=value

    def spelling(self, word: str) -> str:
        name = word.split("=", 1)[0] if self.equals else word
        if self.underscores and name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        return name


@dataclass
class Parsed:
    """What a command line names: per key, every (option, value) in order; the positionals;
    and every reading mlbom refuses."""

    named: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)
    ambiguities: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # words whose value the webhook cannot see

    def value(self, key: str) -> tuple[str, str] | None:
        """The (option, value) the runtime uses for `key`: the last one; a second value
        that differs is an ambiguity already recorded."""
        found = self.named.get(key)
        return found[-1] if found else None

    def all(self, key: str) -> list[tuple[str, str]]:
        return self.named.get(key, [])


def parse(words: list[str], options: Options) -> Parsed:
    """Read `words` (the arguments after the program and its subcommand)."""
    out = Parsed()
    known = {*options.models, *options.values, *options.flags, *options.multi, *options.optional}
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            out.positionals += words[i + 1 :]
            break
        if is_unknown(word):
            out.unknown.append(word)
            i += 1
            continue
        if not word.startswith("-") or word == "-" or _number(word):
            out.positionals.append(word)
            i += 1
            continue
        name = options.spelling(word)
        inline = word.partition("=")[2] if options.equals and "=" in word else None
        root = name.split(".", 1)[0]  # --speculative-config.model: a key of a JSON option
        if name not in known and "." in name and root not in options.models and options.prefixes:
            # vLLM folds --opt.key into --opt {json}, which argparse may then expand
            bearing = sorted(o for o in options.models if o.startswith(root) and o != root)
            if bearing:
                out.ambiguities.append(f"{word} abbreviates {' or '.join(bearing)}: write the option in full")  # fmt: skip
                i += 1 if inline is not None else 2
                continue
        if name not in known and root in options.models:
            key = f"{options.models[root]}.{name.split('.', 1)[1]}"
            value, i = _value(words, i, inline)
            _record(out, key, name, value)
            continue
        if name not in known and options.prefixes and name.startswith("--"):
            matches = sorted(o for o in known if o.startswith(name) and o.startswith("--"))
            bearing = [o for o in matches if o in options.models or o in options.multi]
            if bearing:
                out.ambiguities.append(
                    f"{word} abbreviates {' or '.join(bearing)}, which the runtime's parser "
                    f"accepts: write the option in full"
                )
                i += 1 if inline is not None else 2
                continue
            if len(matches) == 1:
                name = matches[0]
        if name in options.models:
            value, i = _value(words, i, inline)
            _record(out, options.models[name], name, value)
        elif name in options.multi:
            i += 1
            if inline is not None:  # --opt=value: one value
                _record(out, name, name, inline)
                continue
            while i < len(words) and not words[i].startswith("-"):
                _record(out, name, name, words[i])
                i += 1
        elif name in options.flags:
            i += 1
        elif name in options.optional:  # a value only when the next word is not an option
            after = words[i + 1] if i + 1 < len(words) else "-"
            i += 1 if inline is not None or after.startswith("-") else 2
        elif name in options.values or inline is not None:
            i += 1 if inline is not None else 2
        else:
            following = words[i + 1] if i + 1 < len(words) else None
            if (
                options.positional
                and not out.positionals
                and following is not None
                and not following.startswith("-")
            ):
                out.ambiguities.append(
                    f"{word} is an option mlbom does not know: if it takes no value, "
                    f"{following!r} is the {options.positional}; put the {options.positional} "
                    f"first or use the option's --name=value form"
                )
            i += 2 if following is not None and not following.startswith("-") else 1
    _check(out, options)
    return out


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _value(words: list[str], i: int, inline: str | None) -> tuple[str, int]:
    if inline is not None:
        return inline, i + 1
    if i + 1 < len(words):
        return words[i + 1], i + 2
    return "", i + 1


def _record(out: Parsed, key: str, option: str, value: str) -> None:
    if is_unknown(value):
        out.unknown.append(option)
    out.named.setdefault(key, []).append((option, value))


def _check(out: Parsed, options: Options) -> None:
    """A model-bearing key given twice with different values, or a positional beside the
    option naming the same thing, is read two ways."""
    for key, found in out.named.items():
        if key not in set(options.models.values()) and "." not in key:
            continue
        values = dict.fromkeys(v for _, v in found)
        if len(values) > 1:
            spelled = ", ".join(f"{o} {v}" for o, v in found)
            out.ambiguities.append(
                f"{key} is given {len(found)} times with different values ({spelled}): name it once"
            )
    if options.positional:
        if len(out.positionals) > 1:
            out.ambiguities.append(
                f"more than one positional argument ({', '.join(out.positionals[:3])}): "
                f"the runtime takes one {options.positional}"
            )
        given = out.named.get(options.positional, [])
        if out.positionals and any(v != out.positionals[0] for _, v in given):
            out.ambiguities.append(
                f"the {options.positional} is named both as the positional "
                f"{out.positionals[0]!r} and by {given[-1][0]} {given[-1][1]!r}: name it once"
            )
