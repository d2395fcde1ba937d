"""``opstui.toml``: loading (``load``), strict validation (``validate``), the
shapes of its keys (``schema``), and its tables with rules of their own:
``pipelines``, ``endpoints``, ``drift``, ``keys``. Stdlib-only; imports
nothing from opstui above ``errors`` and ``timeutil``.

What the rest of opstui imports from ``opstui.config`` lives in ``load``
and ``pipelines`` and is re-exported here.
"""

from opstui.config.load import (
    CONFIG_NAME,
    DEFAULT_ENVIRONMENT,
    DEFAULT_STORE,
    ENV_CONFIG,
    ENV_STORE,
    Config,
    EnvironmentDef,
    ModelDef,
    TuiDef,
    example_config,
    load_config,
    parse_config,
    resolve_store_path,
)
from opstui.config.pipelines import (
    PLACEHOLDER,
    PLACEHOLDERS,
    CommandDef,
    PipelineDef,
    StageDef,
)

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_ENVIRONMENT",
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
