"""Typed dataclass configs from YAML, with ``--set section.field=value`` overrides.

Precedence, as in RecBole: command line > file > dataclass defaults. Unknown keys and values of
the wrong type are refused with a :class:`~kgrec.errors.ConfigError` naming the key (an unknown
one with the closest field); :func:`locate` adds where a file writes it (``file:line:column``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kgrec.errors import ConfigError
from kgrec.utils.names import closest

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict; missing fields keep their defaults (all of
    them for ``None``, a section left empty; ``false``, ``0`` or ``[]`` are refused)."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, found {type(data).__name__}", key=where or None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(map(str, set(data) - set(fields)))  # str: a YAML key may be read as true, null, 3
    if unknown:
        key = _join(where, unknown[0])
        hint = _in_a_section(unknown[0], hints, where) or closest(unknown[0], fields)
        raise ConfigError(f"unknown key '{key}'{hint}; expected one of: {', '.join(sorted(fields))}", key=key)
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    return cls(**kwargs)


def given_keys(cls: type, data: dict[str, Any] | None, where: str = "") -> frozenset[str]:
    """The dotted names of the fields of dataclass ``cls`` that ``data`` (as :func:`from_dict`
    reads it: a YAML file's mapping with :func:`apply_overrides`' values) gives a value, whatever
    the value: ``model.dim``, ``model.loss_weights`` (a mapping-valued field is one value). A
    section (a dataclass field) given as a mapping gives the fields inside it (``model: {dim: 8}``
    and ``--set "model={dim: 8}"`` give ``model.dim``); one left empty or null gives none. Keys
    that are no field are left out (:func:`from_dict` refuses them)."""
    if not isinstance(data, dict):
        return frozenset()
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    given: set[str] = set()
    for name, value in data.items():
        if name not in fields:
            continue
        if dataclasses.is_dataclass(hints[name]):
            if isinstance(value, CommandLineValue):
                value = value.parsed
            given |= given_keys(hints[name], value, _join(where, name))
        else:
            given.add(_join(where, name))
    return frozenset(given)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (tuples as lists) that :func:`from_dict` turns back into ``config``."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(config)


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that writes the same key twice (``problem_mark``: the second time)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice in one mapping is refused rather
    than the second silently replacing the first (keys brought in by a ``<<`` merge may still be
    overridden)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the safe loader's own error says so
                    break
                if first is not None:
                    raise _DuplicateKeyError(
                        None, None,
                        f"key {key!r} appears again (first at line {first.line + 1}, column {first.column + 1}); merge the two",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's, except that a scalar written as one of YAML's types without being one
        (``2024-02-30``, ``0x_``) is refused at its place rather than with a ``ValueError``."""
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as error:
            kind = node.tag.rpartition(":")[2]
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is no valid {kind} ({error}); quote it for text", node.start_mark
            ) from None


def load_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a YAML mapping; a clear error (``what`` names the file's role) for a missing file,
    bad syntax, or a key written twice in one mapping."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a YAML {what}")
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:  # a checkpoint or a binary file given by mistake
        line = raw[: error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError(f"{path}:{line}:{column}: byte {raw[error.start]:#04x} is not UTF-8; expected a YAML "
                          f"{what}, which is text") from None  # fmt: skip
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        if isinstance(exc, _DuplicateKeyError):
            raise ConfigError(f"{where}: {exc.problem}") from None
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def key_positions(path: str | Path) -> dict[str, tuple[int, int]]:
    """Where each key of a YAML file's mappings and each item of its lists is written: dotted
    key (``model.dim``, ``model.trunk_hidden[1]``, ``attributes[0].column``; list items counted
    from 0) -> 1-based ``(line, column)``; a key YAML reads as another type than text (``true``,
    ``null``, ``3``) is named as :func:`from_dict` names it (``True``, ``None``, ``3``). Empty
    for a file that does not parse (``load_yaml`` says why)."""
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8
        return {}
    positions: dict[str, tuple[int, int]] = {}

    def walk(node: yaml.Node | None, prefix: str, inside: frozenset[int]) -> None:
        if id(node) in inside:  # an alias of a node it is inside (`a: &x [*x]`): no end to it
            return
        inside = inside | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = _join(prefix, _key_name(key_node))
                positions[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                walk(value_node, key, inside)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = f"{prefix}[{i}]"
                positions[key] = (item.start_mark.line + 1, item.start_mark.column + 1)
                walk(item, key, inside)

    walk(root, "", frozenset())
    return positions


def locate(error: ConfigError, path: str | Path | None, overrides: list[str] | None = None) -> ConfigError:
    """``error`` prefixed with ``file:line:column`` of its key in the YAML file ``path`` (the
    key's nearest written parent for a key the file lacks); as it is when the
    key came from an override, has no place in the file, or there is no file. The key is
    ``error.key``, which every check of the config's dataclasses sets."""
    found = error.key
    if path is None or found is None:
        return error
    if _overridden(found, overrides or []):
        return error
    positions = key_positions(path)
    key = found
    while key and key not in positions:
        key = key.rpartition("[")[0] if key.endswith("]") else key.rpartition(".")[0]
    if not key:
        return error
    line, column = positions[key]
    return ConfigError(f"{path}:{line}:{column}: {error}", key=found)



class CommandLineValue:
    """The value of a ``section.field=value`` override: parsed as YAML (``[a, b]``, ``{rating:
    0.1}``, ``true``, ``1e-4``), except for a text field (``str`` or ``Path``), which takes it
    verbatim, so ``{movie_title}``, ``no``, ``2024``, ``#1 {title}`` and ``my #1 copy`` stay the
    text typed (``null`` / ``~`` / nothing give ``None``; one quoted string loses its quotes)."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        try:
            self.parsed = yaml.safe_load(raw)
        except (yaml.YAMLError, ValueError):  # ValueError: a date that is none, 2024-13-01
            self.parsed = raw

    def for_hint(self, hint: Any) -> Any:
        args = typing.get_args(hint)
        is_text = hint in (str, Path) or (
            typing.get_origin(hint) in (typing.Union, types.UnionType)
            and len(args) == 2 and type(None) in args and (str in args or Path in args)
        )
        if not is_text:
            return self.parsed
        text = self.raw.strip()
        if text in ("", "~", "null", "Null", "NULL"):
            return None
        quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in ("'", '"') and isinstance(self.parsed, str)
        return self.parsed if quoted else text

    def __repr__(self) -> str:
        return repr(self.raw)


def yaml_text(text: str) -> str:
    """``text`` as a double-quoted YAML string, so that a ``section.field=VALUE`` override reads it
    verbatim (a path given as an option: a folder named ``null`` had read as no path, so ml-100k
    was used instead; ``'x'`` and ``x `` read as ``x``)."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:  # YAML's escapes, so no character is refused as unprintable
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.field=value`` strings to a nested dict (values: :class:`CommandLineValue`,
    resolved against the field's type by :func:`from_dict`). A whole section given as a mapping
    (``model={dim: 8, trunk: ple}``) sets those fields, and the section's others keep their value,
    as ``model.dim=8 model.trunk=ple`` would (it had replaced the section, so every field the
    config file set went back to its default); a mapping-valued field (``model.loss_weights``)
    is one value and is replaced."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}': expected section.field=value")
        *parents, leaf = key.strip().split(".")
        if not parents:  # a section
            value, current = CommandLineValue(raw), data.get(leaf)
            if isinstance(current, CommandLineValue) and isinstance(current.parsed, dict):
                current = current.parsed
            if isinstance(value.parsed, dict) and (current is None or isinstance(current, dict)):
                data[leaf] = {**(current or {}), **value.parsed}
                continue
        node = data
        for part in parents:
            child = node.get(part)
            if isinstance(child, CommandLineValue) and (child.parsed is None or isinstance(child.parsed, dict)):
                child = child.parsed  # "a={x: 1}" (or "a=null") then "a.y=2"
            if child is None:  # absent, or left empty in the file (`model:` with its fields commented out)
                child = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node[part] = node = child
        node[leaf] = CommandLineValue(raw)
    return data


def _overridden(key: str, overrides: list[str]) -> bool:
    """Whether ``key`` (or a key above it) takes its value from one of ``overrides``: a section
    given as a mapping (``model={trunk: ple}``) gives the fields it names, and the section's
    others keep the file's (:func:`apply_overrides`)."""
    for item in overrides:
        name, _, raw = item.partition("=")
        name = name.strip()
        value = CommandLineValue(raw).parsed if "." not in name else None
        if isinstance(value, dict) and key != name:
            given = [_join(name, str(field)) for field in value]
        else:
            given = [name]
        if any(key == g or key.startswith((f"{g}.", f"{g}[")) for g in given):
            return True
    return False


def _key_name(node: yaml.Node) -> str:
    """A mapping key's name as the loaded dict holds it, in text: ``true`` -> ``True``."""
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:str":
        try:
            return str(yaml.SafeLoader("").construct_object(node))
        except (yaml.YAMLError, ValueError):
            pass
    return str(node.value)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _in_a_section(name: str, hints: dict[str, Any], where: str) -> str:
    """``" (did you mean 'model.trunk'?)"`` for a ``name`` that is no field here but is one of a
    section (a dataclass field) here: a key written without its section; ``""`` when none has it."""
    found = [
        _join(where, f"{section}.{name}")
        for section, hint in hints.items()
        if dataclasses.is_dataclass(hint) and name in {f.name for f in dataclasses.fields(hint) if f.init}
    ]
    return f" (did you mean {' or '.join(repr(key) for key in found)}?)" if found else ""


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if isinstance(value, CommandLineValue):
        value = value.for_hint(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        errors = []
        for arg in arms:
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(arms) > 1 and all(isinstance(a, type) for a in arms):  # bool | str: every type, not the first's error
            names = [a.__name__ for a in arms] + (["null"] if type(None) in args else [])
            raise ConfigError(f"{where}: expected {', '.join(names[:-1])} or {names[-1]}, found {value!r}", key=where)
        raise ConfigError(errors[0] if errors else f"{where}: unexpected value {value!r}", key=where)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}", key=where)
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, found {value!r}", key=where)
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, found {value!r}", key=where)
        key_hint, value_hint = args if len(args) == 2 else (Any, Any)
        return {
            _coerce(key_hint, k, where): _coerce(value_hint, v, _join(where, str(k))) for k, v in value.items()
        }
    if hint is Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int beyond 1.8e308
            digits = len(str(abs(value)))
            raise ConfigError(f"{where}: expected float, found an integer of {digits} digits, too large for a float",
                              key=where) from None  # fmt: skip
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-6" (no dot) as a string
        except ValueError:
            pass
    if hint is Path and isinstance(value, str):
        return Path(value)
    if isinstance(hint, type) and not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, found {value!r}", key=where)
    return value
