"""``[endpoints.NAME]`` in opstui.toml: what to poll, how often, and how to read it.

Secrets never live in the file: ``secret_headers`` names environment
variables, read at poll time, never stored, shown or logged. A URL holding
credentials (``https://user:password@host``) is refused for that reason: the
URL is stored and shown with every poll.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opstui.config.schema import Spec
from opstui.errors import ConfigError

KINDS = ("health", "prometheus", "prometheus_api", "json", "mlflow", "airflow", "prefect")
#: Orchestrators: their runs become runs of the store, their tasks stages.
#: Airflow needs a user (its API has no anonymous access); a Prefect server
#: has no auth unless ``PREFECT_SERVER_API_AUTH_STRING`` is set, so its
#: ``username_env`` and ``password_env`` are optional (both or neither).
ORCHESTRATORS = ("airflow", "prefect")


def _regex(value: Any) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"a regular expression ({exc})"
    return None


_URL_WORDS = "an http:// or https:// URL with a host, e.g. https://api.internal/healthz"


def _url(value: Any) -> str | None:
    """Why ``value`` is no URL to poll. Credentials are left to ``parse_endpoints``,
    whose error leaves the value out (this one would print the password)."""
    if _has_userinfo(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # a bracketed host that is no IPv6 address
        return f"a URL with a valid host ({exc})"
    if parts.scheme not in ("http", "https") or not value.lower().startswith(f"{parts.scheme}://"):
        return _URL_WORDS
    if any(c.isspace() or not c.isprintable() for c in value):
        return "a URL without spaces or control characters (percent-encode them)"
    if not parts.hostname:
        return _URL_WORDS
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "a URL whose port, if given, is a number from 1 to 65535"
    return None


#: ``scheme://user:password@``: an "@" before the path, query or fragment.
_USERINFO = re.compile(r"[A-Za-z][\w+.-]*://[^/?#]*@")


def _has_userinfo(url: str) -> bool:
    return _USERINFO.match(url) is not None


def _credentials(name: str, url: str, where: str) -> ConfigError | None:
    """The refusal of a URL with a user or password in it, naming neither."""
    if not _has_userinfo(url):
        return None
    return ConfigError(
        f'{where}: "endpoints.{name}.url" holds credentials (user:password@), which would be '
        "stored and shown with the URL",
        hint='remove them and use secret_headers = { Authorization = "VAR" }, with $VAR set to '
        '"Basic <base64 of user:password>" or "Bearer <token>"',
    )


def _env_name(value: Any) -> str | None:
    bad = [v for v in value.values() if not isinstance(v, str) or not re.fullmatch(r"\w+", v)]
    return 'a table of environment variable names (Header = "VAR")' if bad else None


def _strings(value: Any) -> str | None:
    ok = all(isinstance(v, str) for v in (value.values() if isinstance(value, dict) else value))
    return None if ok else "strings only"


# RFC 9110 field names are tokens; a value holds no CR, LF or other control
# (a CR LF in a value would end the header and start another on the wire).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _header_table(value: Any) -> str | None:
    if not all(isinstance(v, str) for v in value.values()):
        return "strings only"
    bad_names = [k for k in value if not _TOKEN.fullmatch(k)]
    if bad_names:
        return f"header names without spaces or separators (not {bad_names[0]!r})"
    if any(_BAD_VALUE.search(v) for v in value.values()):
        return "header values without line breaks or control characters"
    return None


def _secret_header_table(value: Any) -> str | None:
    bad_names = [k for k in value if not _TOKEN.fullmatch(k)]
    if bad_names:
        return f"header names without spaces or separators (not {bad_names[0]!r})"
    return _env_name(value)


def endpoint_schema() -> dict[str, Spec]:
    """The keys of an endpoint table."""
    number = (int, float)
    return {
        "kind": Spec(
            (str,),
            " or ".join(f'"{k}"' for k in KINDS),
            required=True,
            check=lambda v: None if v in KINDS else " or ".join(f'"{k}"' for k in KINDS),
        ),
        "url": Spec((str,), _URL_WORDS, required=True, check=_url),
        "description": Spec((str,), "text"),
        "interval": Spec(number, "a number of seconds", minimum=0.05),
        "timeout": Spec(number, "a number of seconds", minimum=0.05),
        "verify_tls": Spec((bool,), "true or false"),
        "headers": Spec((dict,), "a table of strings", check=_header_table),
        "secret_headers": Spec(
            (dict,), "a table of environment variable names", check=_secret_header_table
        ),
        "max_body": Spec((int,), "a number of bytes", minimum=1024),
        "slo": Spec(number, "a fraction below 1, e.g. 0.999", check=_slo),
        "slow_ms": Spec(number, "milliseconds", minimum=1),
        "requests": Spec(
            (str,),
            "a counter name, e.g. http_requests_total (prometheus_api: the name of a query)",
        ),
        "errors": Spec((str,), "the name of one of the endpoint's queries"),
        "error_ratio": Spec((str,), "the name of one of the endpoint's queries"),
        "error_label": Spec((str,), "a label name, e.g. code"),
        "error_match": Spec((str,), "a regular expression", check=_regex),
        "latency": Spec((str,), "a histogram name"),
        "queries": Spec((dict,), "a table of PromQL queries", check=_strings),
        "range_queries": Spec((dict,), "a table of PromQL queries", check=_strings),
        "fields": Spec((dict,), "a table of JSON paths (a.b.0.c)", check=_strings),
        "experiments": Spec((list,), "a list of experiment names", check=_strings),
        "models": Spec((list,), "a list of registered model names", check=_strings),
        "aliases": Spec((dict,), "a table alias = environment", check=_strings),
        "username_env": Spec((str,), "an environment variable name", check=_var_name),
        "password_env": Spec((str,), "an environment variable name", check=_var_name),
        "dags": Spec((list,), "a list of DAG ids", check=_strings),
        "deployments": Spec(
            (list,), 'a list of deployment names ("flow/deployment")', check=_deployments
        ),
        "pipeline_kind": Spec(
            (str,),
            '"mlops" or "devops"',
            check=lambda v: None if v in ("mlops", "devops") else '"mlops" or "devops"',
        ),
        "service": Spec((str,), "the pipeline that deploys what it serves, e.g. web-api"),
        "model": Spec((str,), "the model it serves, a [models] entry"),
        "environment": Spec((str,), "the environment it serves, e.g. production"),
        "backfill": Spec(number, "a number of seconds of history to read first", minimum=0),
        "page_size": Spec((int,), "a number of rows per request, 1 to 1000", minimum=1),
        "rate_limit": Spec(number, "requests per second", minimum=0.1),
    }


def _deployments(value: Any) -> str | None:
    ok = all(isinstance(v, str) and len(v.split("/")) == 2 and all(v.split("/")) for v in value)
    return None if ok else 'deployment names as "flow/deployment", e.g. "etl/nightly"'


def _var_name(value: Any) -> str | None:
    return None if re.fullmatch(r"[A-Za-z_]\w*", value) else "an environment variable name"


def _slo(value: Any) -> str | None:
    return None if 0 < value < 1 else "a fraction between 0 and 1, e.g. 0.999"


#: Keys each kind needs, and the keys that only make sense for one kind.
_REQUIRED = {
    "prometheus": ("requests",),
    "json": ("fields",),
    "airflow": ("username_env", "password_env"),
}
_ONLY: dict[str, tuple[str, ...]] = {
    "requests": ("prometheus", "prometheus_api"),
    "errors": ("prometheus_api",),
    "error_ratio": ("prometheus_api",),
    "error_label": ("prometheus",),
    "error_match": ("prometheus",),
    "latency": ("prometheus",),
    "queries": ("prometheus_api",),
    "range_queries": ("prometheus_api",),
    "fields": ("json",),
    "experiments": ("mlflow",),
    "models": ("mlflow",),
    "aliases": ("mlflow",),
    "username_env": ORCHESTRATORS,
    "password_env": ORCHESTRATORS,
    "dags": ("airflow",),
    "deployments": ("prefect",),
    "pipeline_kind": ORCHESTRATORS,
    "backfill": ORCHESTRATORS,
    "page_size": ORCHESTRATORS,
    "rate_limit": ORCHESTRATORS,
}


@dataclass(frozen=True)
class EndpointDef:
    name: str
    kind: str
    url: str
    interval: float = 15.0
    timeout: float = 5.0
    verify_tls: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    #: Header name -> environment variable holding its value.
    secret_headers: dict[str, str] = field(default_factory=dict)
    max_body: int = 10_000_000
    slo: float | None = None
    slow_ms: float | None = None
    requests: str | None = None
    error_label: str = "code"
    error_match: str = "5.."
    latency: str | None = None
    #: prometheus_api as an SLO source: the name of the query whose values
    #: are the error ratio (a gauge from 0 to 1) ...
    error_ratio: str | None = None
    #: ... or of the query counting failed requests, next to ``requests``
    #: counting all of them (cumulative counters, as ``sum(x_total)``).
    errors: str | None = None
    queries: dict[str, str] = field(default_factory=dict)
    #: Fetched with /api/v1/query_range since the last poll (the first poll
    #: backfills an hour), so history exists from the first minute.
    range_queries: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    experiments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    #: What it serves: the service (a pipeline that deploys it) or the model,
    #: in which environment (else the pipeline's, else production): what
    #: ``b`` on its row rolls back, and whose deployments its screen shows.
    service: str | None = None
    model: str | None = None
    environment: str | None = None
    #: An orchestrator's credentials: the names of the variables holding them.
    username_env: str | None = None
    password_env: str | None = None
    #: Airflow: the DAGs to read (all of them when empty).
    dags: tuple[str, ...] = ()
    #: Prefect: the deployments to read, as "flow/deployment" (all runs when empty).
    deployments: tuple[str, ...] = ()
    #: The kind of its pipelines when a DAG's tags do not say (mlops, devops).
    pipeline_kind: str | None = None
    #: How far back the first sync reads, in seconds (a week).
    backfill: float = 7 * 86400.0
    #: Rows asked for per request, and requests per second at most.
    page_size: int = 100
    rate_limit: float = 20.0

    @property
    def slo_source(self) -> str | None:
        """How this endpoint's error ratio is known: "counters" (requests and
        errors counted), "ratio" (a prometheus_api query that is the ratio),
        or None (it has none: no burn, no alerts)."""
        if self.kind == "prometheus" or (self.requests and self.errors):
            return "counters"
        if self.error_ratio:
            return "ratio"
        return None

    @property
    def source(self) -> str:
        """The ``series.source`` of this endpoint's samples."""
        return f"endpoint/{self.name}"


def parse_endpoints(data: dict[str, Any], where: str) -> dict[str, EndpointDef]:
    out = {}
    for name, raw in data.items():
        refused = _credentials(name, raw["url"], where)
        if refused is not None:
            raise refused
        kind = raw["kind"]
        for key in _REQUIRED.get(kind, ()):
            if key not in raw:
                raise ConfigError(f'{where}: "endpoints.{name}.{key}" is required for kind {kind}')
        for key, only in _ONLY.items():
            if key in raw and kind not in only:
                kinds = " or ".join(only)
                raise ConfigError(
                    f'{where}: "endpoints.{name}.{key}" only applies to kind {kinds}, not {kind}'
                )
        if kind == "prometheus_api" and not (raw.get("queries") or raw.get("range_queries")):
            raise ConfigError(
                f'{where}: endpoint "{name}" of kind prometheus_api needs "queries" '
                'or "range_queries"'
            )
        if kind == "prometheus_api":
            # One name is one stored series: an instant reading (our clock) and
            # range points (Prometheus' clock and grid) would interleave in it.
            both = sorted(set(raw.get("queries", {})) & set(raw.get("range_queries", {})))
            if both:
                raise ConfigError(
                    f'{where}: "endpoints.{name}" names {both[0]!r} in both queries and '
                    "range_queries",
                    hint="give the range query another name",
                )
            _check_slo_source(name, raw, where)
        if kind == "prefect" and ("username_env" in raw) != ("password_env" in raw):
            missing = "password_env" if "username_env" in raw else "username_env"
            raise ConfigError(
                f'{where}: "endpoints.{name}" has only one of "username_env" and '
                '"password_env"; Basic auth needs both',
                hint=f"add {missing}, or remove both for a server without auth",
            )
        if kind == "mlflow" and not (raw.get("experiments") or raw.get("models")):
            raise ConfigError(
                f'{where}: endpoint "{name}" of kind mlflow needs "experiments" or "models"'
            )
        values = {k: v for k, v in raw.items() if k != "kind"}
        for key in ("experiments", "models", "dags", "deployments"):
            if key in values:
                values[key] = tuple(values[key])
        out[name] = EndpointDef(name=name, kind=kind, **values)
    return out


def _check_slo_source(name: str, raw: dict[str, Any], where: str) -> None:
    """A prometheus_api endpoint's ``error_ratio``, or ``requests`` and ``errors``,
    each naming one of its queries; ``slo`` needs one of the two."""
    key = f'{where}: "endpoints.{name}'
    named = [*raw.get("queries", {}), *raw.get("range_queries", {})]
    for field_name in ("error_ratio", "requests", "errors"):
        value = raw.get(field_name)
        if value is not None and value not in named:
            choices = ", ".join(f'"{q}"' for q in named)
            raise ConfigError(
                f'{key}.{field_name}" is "{value}", which is none of its queries',
                hint=f"name one of the keys of queries or range_queries: {choices}",
            )
    has_counters = "requests" in raw or "errors" in raw
    if has_counters and not ("requests" in raw and "errors" in raw):
        missing = "errors" if "requests" in raw else "requests"
        raise ConfigError(
            f'{key}" has only one of "requests" and "errors"; an error ratio needs both',
            hint=f'add {missing} = "QUERY" (or use error_ratio = "QUERY" for a query '
            "that is the ratio itself)",
        )
    if has_counters and "error_ratio" in raw:
        raise ConfigError(
            f'{key}" has both "error_ratio" and "requests"/"errors": which is the error ratio?',
            hint="keep one: error_ratio for a query that is the ratio, or requests and errors "
            "for queries that count requests",
        )
    if "slo" in raw and not has_counters and "error_ratio" not in raw:
        raise ConfigError(
            f'{key}.slo" needs to know which query is the error ratio',
            hint='add error_ratio = "QUERY" (a query that is the ratio, 0 to 1), or '
            'requests = "QUERY" and errors = "QUERY" (queries that are counters)',
        )
