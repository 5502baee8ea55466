"""Stage configs: nested dataclasses loaded from TOML, overridden from the command line
(`--set section.key=value`), and written back beside every run as resolved TOML."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from ml.errors import MLError

T = TypeVar("T")


class ConfigError(MLError, ValueError):
    """A config file or override is wrong; the message names the key."""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {}
    for k, v in data.items():
        t = hints[k]
        if dataclasses.is_dataclass(t):
            if not isinstance(v, dict):
                raise ConfigError(f"{where}.{k} must be a table")
            kwargs[k] = _build(t, v, f"{where}.{k}")  # type: ignore[arg-type]
        else:
            kwargs[k] = _coerce(v, t, f"{where}.{k}")
    return cls(**kwargs)


def _coerce(value: Any, t: Any, key: str) -> Any:
    origin = typing.get_origin(t)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table")
        return dict(value)
    if origin in (list, tuple):
        return type(value)(value) if isinstance(value, list | tuple) else value
    base = next((a for a in typing.get_args(t) if a is not type(None)), t) if origin else t
    if value is None or base is Any:
        return value
    try:
        if base is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        return base(value)
    except (TypeError, ValueError):
        name = getattr(base, "__name__", base)
        raise ConfigError(f"{key}: cannot read {value!r} as {name}") from None


def _set(data: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    try:
        node[keys[-1]] = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        node[keys[-1]] = raw  # bare strings: --set data.pairs=data/pairs


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Defaults <- TOML file <- `key.sub=value` overrides; unknown keys are errors."""
    data: dict[str, Any] = dataclasses.asdict(cls())  # type: ignore[call-overload]
    if path is not None:
        try:
            _merge(data, tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        k, v = item.split("=", 1)
        _set(data, k.strip(), v.strip())
    return _build(cls, data, cls.__name__)


def _merge(base: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def _toml_key(k: str) -> str:
    """A bare key where TOML allows one, else quoted ("optim.steps" is one key, not two)."""
    return k if k and all(c.isascii() and (c.isalnum() or c in "_-") for c in k) else _toml_value(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        raise ConfigError("None cannot be written to TOML; give the key a value")
    return repr(v)


def dump_toml(cfg: Any) -> str:
    """Resolved config as TOML (one table per nested dataclass)."""
    data = dataclasses.asdict(cfg)
    top = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [
        f"\n[{k}]\n" + "\n".join(f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items())
        for k, v in data.items()
        if isinstance(v, dict)
    ]
    return "\n".join(top) + "".join(tables) + "\n"
