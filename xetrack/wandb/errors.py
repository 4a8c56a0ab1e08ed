"""The errors of ``xetrack.wandb``, and the W&B calls it does not offer.

A W&B call that xetrack cannot honour is still there by name, so that a script fails on
that line with a message naming it, never later and never silently:
:func:`unsupported_function` makes a function that raises :class:`Unsupported` when
called, :func:`unsupported_class` a class that raises when made (``isinstance`` checks
against it keep working and are simply False).
"""

from __future__ import annotations

from typing import Any, NoReturn

GUIDE = "see docs/integrations.md"


class Error(Exception):
    """A W&B call used the wrong way (W&B's ``wandb.Error``): no run, a finished run..."""


class ConfigError(Error, ValueError):
    """A config key changed without ``allow_val_change=True``, as W&B refuses it."""


class Unsupported(Error, NotImplementedError):
    """A W&B feature that ``xetrack.wandb`` does not offer."""


def refuse(call: str, why: str = "") -> NoReturn:
    """Raise :class:`Unsupported` for ``call`` (e.g. ``'wandb.Image'``)."""
    reason = f": {why}" if why else ""
    raise Unsupported(f"{call} is not offered by xetrack.wandb{reason} ({GUIDE})")


#: What W&B offers and xetrack.wandb does not, with why (shown in the error).
MEDIA = "xetrack stores numbers, text and files: log the values, or keep the file with wandb.save(path)"
ARTIFACTS = (
    "W&B Artifacts (versions, aliases, lineage) have no xetrack equivalent: wandb.log_artifact(path) keeps a local file"
)
CLASSES = {
    "Image": MEDIA,
    "Table": MEDIA,
    "Histogram": MEDIA,
    "Video": MEDIA,
    "Audio": MEDIA,
    "Html": MEDIA,
    "Object3D": MEDIA,
    "Molecule": MEDIA,
    "Plotly": MEDIA,
    "Graph": MEDIA,
    "Artifact": ARTIFACTS,
    "Api": "the W&B public API reads W&B's servers: read xetrack runs with xetrack.Reader",
}
FUNCTIONS = {
    "use_artifact": ARTIFACTS,
    "link_artifact": ARTIFACTS,
    "log_model": ARTIFACTS,
    "use_model": ARTIFACTS,
    "link_model": ARTIFACTS,
    "watch": "gradient and parameter histograms are media: log the numbers you want with wandb.log",
    "unwatch": "wandb.watch is not offered either",
    "alert": "there is no server to send alerts",
    "log_code": "keep a file with wandb.save(path), or pass save_code=True to wandb.init",
    "restore": "it downloads files from W&B's servers",
    "sweep": "use Optuna (xetrack.integrations.optuna) for searches",
    "agent": "use Optuna (xetrack.integrations.optuna) for searches",
    "controller": "use Optuna (xetrack.integrations.optuna) for searches",
    "mark_preempting": "a run left running by a dead process shows as 'dead' in Reader.runs()",
    "plot_table": MEDIA,
}


def unsupported_function(name: str, why: str, owner: str = "wandb") -> Any:
    """A function ``owner.name`` that raises :class:`Unsupported` when called."""

    def call(*args: Any, **kwargs: Any) -> NoReturn:
        refuse(f"{owner}.{name}()", why)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Not offered by xetrack.wandb: {why}."
    return call


def unsupported_class(name: str, why: str) -> type:
    """A class ``wandb.name`` that raises :class:`Unsupported` when made."""

    def make(cls: type, *args: Any, **kwargs: Any) -> NoReturn:
        refuse(f"wandb.{name}", why)

    return type(name, (), {"__new__": make, "__doc__": f"Not offered by xetrack.wandb: {why}."})


class PreInit:
    """``wandb.config`` or ``wandb.summary`` before ``wandb.init()``: any use says so."""

    def __init__(self, what: str) -> None:
        object.__setattr__(self, "_what", what)

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise Error(f"Call wandb.init() before using {object.__getattribute__(self, '_what')}")

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    __setattr__ = __getitem__ = __setitem__ = __iter__ = __len__ = __contains__ = _refuse

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_what')} before wandb.init()>"


__all__ = ["Error", "ConfigError", "Unsupported", "PreInit", "refuse", "unsupported_function", "unsupported_class"]
