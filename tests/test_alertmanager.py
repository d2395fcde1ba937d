"""The alert sender (``sources/alertmanager.py``) against a real Alertmanager
(``tests/alertmanager_server.py``), and against small hostile servers
(``tests/hostile_http.py``) for what a real one never does: a 400 with
escapes in its words, a redirect elsewhere, no answer at all."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from opstui.sources.alertmanager import (
    MAX_LABEL_VALUE,
    AlertmanagerError,
    AmAlert,
    firing_alerts,
    post_alerts,
)
from opstui.timeutil import parse_time

from .alertmanager_server import unique
from .hostile_http import Request, site


def alert(
    name: str,
    *,
    ends_at: float | None = None,
    starts_at: float | None = None,
    **labels: str,
) -> AmAlert:
    return AmAlert(
        labels={
            "alertname": name,
            "service": "churn-api",
            "environment": "prod",
            "severity": "page",
            **labels,
        },
        annotations={"summary": f"{name} is burning", "description": "error ratio 12%"},
        starts_at=time.time() - 60 if starts_at is None else starts_at,
        ends_at=ends_at,
        generator_url="http://opstui.example/endpoints/churn-api",
    )


def named(url: str, name: str) -> list[dict[str, Any]]:
    return [a for a in firing_alerts(url) if a["labels"].get("alertname") == name]


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``check()`` is true (polled every 20 ms); fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not true after {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - start


def one_line(err: AlertmanagerError) -> str:
    text = str(err)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text, text
    # No traceback behind it: the cause is not chained.
    assert err.__cause__ is None, repr(err.__cause__)
    assert err.__context__ is None or err.__suppress_context__, repr(err.__context__)
    return text


# -- against the real Alertmanager ------------------------------------------


def test_a_firing_alert_is_listed_with_its_labels_and_annotations(alertmanager: str) -> None:
    name = unique()
    sent = alert(name)
    post_alerts(alertmanager, [sent])
    [got] = named(alertmanager, name)
    assert got["labels"] == dict(sent.labels)
    assert got["annotations"] == dict(sent.annotations)
    assert got["generatorURL"] == sent.generator_url
    assert got["status"]["state"] == "active"
    assert abs(parse_time(got["startsAt"]) - sent.starts_at) < 0.002
    # Without endsAt, Alertmanager ends it itself after resolve_timeout (5 min):
    # a sender re-sends what still fires.
    assert 250 < parse_time(got["endsAt"]) - time.time() <= 300


def test_resolving_takes_the_alert_off_the_list_at_once(alertmanager: str) -> None:
    name = unique()
    firing = alert(name)
    post_alerts(alertmanager, [firing])
    assert len(named(alertmanager, name)) == 1
    post_alerts(alertmanager, [firing._replace(ends_at=time.time())])
    wait_until(lambda: not named(alertmanager, name), timeout=5)


def test_two_alerts_in_one_post(alertmanager: str) -> None:
    name = unique()
    post_alerts(alertmanager, [alert(name, subject="a"), alert(name, subject="b")])
    got = named(alertmanager, name)
    assert sorted(a["labels"]["subject"] for a in got) == ["a", "b"]


def test_the_same_firing_alert_twice_is_one_alert(alertmanager: str) -> None:
    name = unique()
    sent = alert(name)
    post_alerts(alertmanager, [sent])
    post_alerts(alertmanager, [sent._replace(annotations={"summary": "still burning"})])
    [got] = named(alertmanager, name)
    # Labels are the identity; the latest annotations win.
    assert got["annotations"] == {"summary": "still burning"}


def test_an_end_in_the_past_for_an_unknown_alert_is_accepted_and_never_listed(
    alertmanager: str,
) -> None:
    name = unique()
    post_alerts(alertmanager, [alert(name, starts_at=1_600_000_000.0, ends_at=1_600_000_060.0)])
    assert named(alertmanager, name) == []


def test_values_with_line_breaks_and_escapes_are_cleaned(alertmanager: str) -> None:
    name = unique()
    sent = AmAlert(
        labels={
            "alertname": name,
            "subject": "churn\nINJECTED=1\x1b[2J\x07\u202e",
            "empty": "",
            "long": "x" * 5000,
        },
        annotations={"description": "line one\nline two\x1b]52;c;AAAA\x07\ud800"},
        starts_at=time.time(),
    )
    post_alerts(alertmanager, [sent])
    [got] = named(alertmanager, name)
    assert got["labels"] == {
        "alertname": name,
        "subject": "churn INJECTED=1[2J",
        "long": "x" * MAX_LABEL_VALUE,
    }  # the empty label is no label, as in Prometheus
    assert got["annotations"] == {"description": "line one\nline two]52;c;AAAA"}


def test_an_empty_list_sends_nothing() -> None:
    with site() as s:
        post_alerts(s.url, [])
    assert s.seen == []


def test_what_is_sent() -> None:
    """The body as Alertmanager reads it: RFC 3339 UTC times with a Z, the
    path under a prefix, a trailing slash dropped."""

    def ok(req: Request) -> None:
        req.reply(200)

    with site({"/am/api/v2/alerts": ok}) as s:
        post_alerts(
            s.url + "/am/",
            [alert("A", starts_at=1_796_452_200.123, ends_at=1_796_452_260.0)],
        )
    [seen] = s.seen
    assert (seen.method, seen.headers["content-type"]) == ("POST", "application/json")
    [doc] = json.loads(seen.body)
    assert doc["startsAt"] == "2026-12-05T06:30:00.123Z"
    assert doc["endsAt"] == "2026-12-05T06:31:00.000Z"
    assert doc["generatorURL"] == "http://opstui.example/endpoints/churn-api"
    assert set(doc) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


# -- refused before sending ---------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "said"),
    [
        ({"alertname": "A", "bad-name": "x"}, "label name 'bad-name'"),
        ({"alertname": "A", "1st": "x"}, "label name '1st'"),
        ({"alertname": "A", "x\n\x1b[31m": "x"}, "label name 'x\\x0a\\x1b[31m'"),
        ({"alertname": "", "service": ""}, "no label with a value"),
    ],
)
def test_a_bad_alert_is_refused_before_any_request(labels: dict[str, str], said: str) -> None:
    with site() as s, pytest.raises(AlertmanagerError) as caught:
        post_alerts(s.url, [alert("ok"), AmAlert(labels, {}, time.time())])
    assert s.seen == []
    text = one_line(caught.value)
    assert said in text and text.startswith(f"Alertmanager {s.url}: ")


def test_a_bad_annotation_name_and_an_end_before_the_start_are_refused() -> None:
    with site() as s:
        with pytest.raises(AlertmanagerError, match="annotation name 'a b'"):
            post_alerts(s.url, [AmAlert({"alertname": "A"}, {"a b": "x"}, time.time())])
        with pytest.raises(AlertmanagerError, match=r"ends .* before it starts"):
            post_alerts(s.url, [alert("A", starts_at=2_000.0, ends_at=1_000.0)])
    assert s.seen == []


@pytest.mark.parametrize(
    "url", ["", "127.0.0.1:9093", "ftp://127.0.0.1:9093", "file:///etc/passwd", "http://"]
)
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(AlertmanagerError, match="is not an http\\(s\\) URL") as caught:
        post_alerts(url, [alert("A")])
    one_line(caught.value)


# -- failures, each one line ---------------------------------------------------


def test_a_closed_port_is_one_line() -> None:
    with socket.socket() as sock:  # a port bound and not listening: refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(AlertmanagerError) as caught:
            post_alerts(url, [alert("A")])
        with pytest.raises(AlertmanagerError):
            firing_alerts(url)
    assert one_line(caught.value) == (
        f"Alertmanager {url}: connection refused; "
        "is it running? ([notify] alertmanager in opstui.toml)"
    )
    assert caught.value.status is None


def test_an_unknown_host_is_one_line() -> None:
    with pytest.raises(AlertmanagerError, match="cannot resolve the host") as caught:
        post_alerts("http://alertmanager.invalid:9093", [alert("A")])
    one_line(caught.value)


def test_no_answer_in_time_is_one_line() -> None:
    def slow(req: Request) -> None:
        time.sleep(1.0)
        with contextlib.suppress(OSError):  # the client is gone by now
            req.reply(200)

    with site({"/api/v2/alerts": slow}) as s:
        start = time.monotonic()
        with pytest.raises(AlertmanagerError, match=r"no answer within 0\.2s") as caught:
            post_alerts(s.url, [alert("A")], timeout=0.2)
        assert time.monotonic() - start < 0.9
    one_line(caught.value)


def test_a_400_names_the_status_and_alertmanagers_words() -> None:
    def refuse(req: Request) -> None:
        words = 'invalid label set: invalid name "x"\n\x1b]0;pwned\x07' + "y" * 500
        req.reply(400, json.dumps(words).encode(), kind="application/json")

    with site({"/api/v2/alerts": refuse}) as s, pytest.raises(AlertmanagerError) as caught:
        post_alerts(s.url, [alert("A")])
    text = one_line(caught.value)
    assert caught.value.status == 400
    assert text.startswith(
        f"Alertmanager {s.url}: sending alerts: HTTP 400 Bad Request: "
        'invalid label set: invalid name "x" \\x1b]0;pwned\\x07yyy'
    )
    assert len(text) < 400


def test_the_real_alertmanagers_400_reads_as_one_line(alertmanager: str) -> None:
    # What it says to a body it cannot parse (sent by hand: the client never sends one).
    response = httpx.post(f"{alertmanager}/api/v2/alerts", json={"not": "a list"})
    assert response.status_code == 400

    def relay(req: Request) -> None:
        req.reply(400, response.content, kind="application/json")

    with site({"/api/v2/alerts": relay}) as s, pytest.raises(AlertmanagerError) as caught:
        post_alerts(s.url, [alert("A")])
    assert "HTTP 400 Bad Request: parsing alerts body" in one_line(caught.value)


@pytest.mark.parametrize("code", [302, 307, 308])
def test_a_redirect_elsewhere_is_not_followed(code: int) -> None:
    name = unique()
    with site() as elsewhere:

        def away(req: Request) -> None:
            req.redirect(f"http://user:pw@{elsewhere.url.removeprefix('http://')}/x", code)

        with site({"/api/v2/alerts": away}) as s, pytest.raises(AlertmanagerError) as caught:
            post_alerts(s.url, [alert(name)])
    assert elsewhere.seen == []
    text = one_line(caught.value)
    assert f"HTTP {code} redirects to {elsewhere.url}/x; not followed" in text
    assert "pw" not in text
    assert caught.value.status == code


def test_an_answer_that_is_not_alertmanagers_is_one_line() -> None:
    def html(req: Request) -> None:
        req.reply(200, b"<html>login</html>", kind="text/html")

    with site({"/api/v2/alerts": html}) as s, pytest.raises(AlertmanagerError) as caught:
        firing_alerts(s.url)
    assert "not a list of alerts" in one_line(caught.value)


def test_a_404_says_to_check_the_path() -> None:
    with site() as s, pytest.raises(AlertmanagerError) as caught:
        post_alerts(s.url + "/wrong", [alert("A")])
    assert "HTTP 404 Not Found: not found; is the URL an Alertmanager's" in one_line(caught.value)


def test_a_given_client_is_used_and_left_open(alertmanager: str) -> None:
    name = unique()
    with httpx.Client() as client:
        post_alerts(alertmanager, [alert(name)], client=client)
        assert len(named(alertmanager, name)) == 1
        assert [
            a
            for a in firing_alerts(alertmanager, client=client)
            if a["labels"]["alertname"] == name
        ]
        assert not client.is_closed
