"""``opstui.toml``: loading and validation (``load``), the shapes of its keys
(``schema``), and its tables with rules of their own: ``endpoints``,
``drift``, ``keys``. Stdlib-only; imports nothing from opstui above
``errors`` and ``timeutil``.

What the rest of opstui imports from ``opstui.config`` lives in ``load``
and is re-exported here.
"""

from opstui.config.load import (
    CONFIG_NAME,
    DEFAULT_STORE,
    ENV_CONFIG,
    ENV_STORE,
    PLACEHOLDER,
    PLACEHOLDERS,
    CommandDef,
    Config,
    EnvironmentDef,
    ModelDef,
    PipelineDef,
    StageDef,
    TuiDef,
    example_config,
    load_config,
    parse_config,
    resolve_store_path,
)

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_STORE",
    "ENV_CONFIG",
    "ENV_STORE",
    "PLACEHOLDER",
    "PLACEHOLDERS",
    "CommandDef",
    "Config",
    "EnvironmentDef",
    "ModelDef",
    "PipelineDef",
    "StageDef",
    "TuiDef",
    "example_config",
    "load_config",
    "parse_config",
    "resolve_store_path",
]
