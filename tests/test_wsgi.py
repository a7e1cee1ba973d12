"""PEP 3333 as an application sees it: the environ, wsgi.input, write(), start_response with
exc_info, close(), errors, header validation, wsgi.file_wrapper and wsgiref's validator."""

import hashlib
import os
import re
import time
import uuid

import pytest
import requests
from support import assert_serves, chunked, exchange, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("wsgiapp:application")


def new_key():
    return uuid.uuid4().hex


def environ_for(server, raw):
    resp = exchange(server, raw)
    assert resp.status == 200, resp
    return resp.json()


# --- the environ -------------------------------------------------------------------------------


def test_environ_has_every_required_key(server):
    env = requests.get(server.url("/environ"), timeout=10).json()
    required = {
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
        "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "wsgi.version",
        "wsgi.url_scheme", "wsgi.input", "wsgi.errors", "wsgi.multithread",
        "wsgi.multiprocess", "wsgi.run_once", "wsgi.file_wrapper",
        "x-wsgiorg.fdevent.readable", "x-wsgiorg.fdevent.writable", "x-wsgiorg.fdevent.timeout",
    }  # fmt: skip
    assert required <= set(env["keys"]), required - set(env["keys"])
    assert env["input_methods"] == ["read", "readline", "readlines", "__iter__"]
    assert env["errors_methods"] == ["write", "writelines", "flush"]
    assert env["fdevent_callable"] == [True, True]
    assert env["timeout_flag"] is False, "the timeout flag is false before any wait"


def test_environ_wsgi_values(server, app_mode):
    values = requests.get(server.url("/environ"), timeout=10).json()["values"]
    assert values["wsgi.version"] == [1, 0]
    assert values["wsgi.url_scheme"] == "http"
    assert values["wsgi.multithread"] is (app_mode == "threads")
    assert isinstance(values["wsgi.multiprocess"], bool)
    assert values["wsgi.run_once"] is False


def test_environ_keys_and_cgi_values_are_native_strings(server):
    env = requests.get(server.url("/environ?x=1"), headers={"X-Custom": "v"}, timeout=10).json()
    for key, kinds in env["types"].items():
        key_type, value_type = kinds.split(":")
        assert key_type == "str", key
        if key.isupper():  # CGI variables and HTTP_* headers
            assert value_type == "str", f"{key} is a {value_type}"


def test_environ_describes_the_request_and_both_ends(server):
    with server.connect() as conn:
        local_port = conn.sock.getsockname()[1]
        conn.send(
            request(
                "GET",
                "/environ?a=1&b=%20x&c=%2F",
                host=f"127.0.0.1:{server.port}",
                headers=[("User-Agent", "evserver-tests")],
            )
        )
        values = conn.response().json()["values"]
    assert values["REQUEST_METHOD"] == "GET"
    assert values["SCRIPT_NAME"] == ""
    assert values["PATH_INFO"] == "/environ"
    assert values["QUERY_STRING"] == "a=1&b=%20x&c=%2F", "the query string is not decoded"
    assert values["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert values["SERVER_NAME"] == "127.0.0.1"
    assert values["SERVER_PORT"] == str(server.port)
    assert values["REMOTE_ADDR"] == "127.0.0.1"
    assert values["REMOTE_PORT"] == str(local_port)
    assert values["HTTP_HOST"] == f"127.0.0.1:{server.port}"
    assert values["HTTP_USER_AGENT"] == "evserver-tests"


def test_environ_for_http10(server):
    values = environ_for(server, request("GET", "/environ", version="HTTP/1.0", host=None))
    assert values["values"]["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert "HTTP_HOST" not in values["values"]


def test_empty_query_string_is_present(server):
    values = environ_for(server, request("GET", "/environ"))["values"]
    assert values["QUERY_STRING"] == ""


@pytest.mark.parametrize(
    ("suffix", "decoded"),
    [
        ("/caf%C3%A9", "/caf\xc3\xa9"),  # UTF-8 bytes, each carried as one latin-1 character
        ("/caf%e9", "/caf\xe9"),
        ("/a%20b", "/a b"),
        ("/a%2Fb", "/a/b"),
        ("/%7Euser/x%3Fy", "/~user/x?y"),
    ],
)
def test_path_info_is_percent_decoded_as_latin1(server, suffix, decoded):
    values = environ_for(server, request("GET", "/environ" + suffix + "?q=%41"))["values"]
    assert values["PATH_INFO"] == "/environ" + decoded
    assert values["QUERY_STRING"] == "q=%41"


def test_content_type_and_length_are_cgi_variables(server):
    raw = request("POST", "/environ", headers=[("Content-Type", "text/x-test")], body=b"12345")
    values = environ_for(server, raw)["values"]
    assert values["CONTENT_TYPE"] == "text/x-test"
    assert values["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in values
    assert "HTTP_CONTENT_LENGTH" not in values


@pytest.mark.parametrize(
    "fields",
    [[("Content-Length", "5, 5")], [("Content-Length", "5"), ("Content-Length", "5")]],
    ids=["one-field-listing-it-twice", "two-identical-fields"],
)
def test_a_repeated_identical_content_length_reaches_the_app_as_one_number(server, fields):
    raw = (
        b"POST /environ HTTP/1.1\r\nHost: t\r\n"
        + b"".join(f"{name}: {value}\r\n".encode() for name, value in fields)
        + b"\r\n12345"
    )
    values = environ_for(server, raw)["values"]
    assert values["CONTENT_LENGTH"] == "5"


def test_an_explicit_zero_content_length_is_passed_on(server):
    raw = request("POST", "/environ", headers=[("Content-Length", "0")])
    assert environ_for(server, raw)["values"]["CONTENT_LENGTH"] == "0"


def test_content_type_and_length_absent_without_a_body(server):
    values = environ_for(server, request("GET", "/environ"))["values"]
    assert values.get("CONTENT_TYPE", "") == ""
    assert values.get("CONTENT_LENGTH", "") in ("", "0")


def test_repeated_headers_are_joined_with_commas(server):
    raw = request("GET", "/environ", headers=[("X-Multi", "a"), ("X-Multi", "b"), ("x-multi", "c")])
    value = environ_for(server, raw)["values"]["HTTP_X_MULTI"]
    assert [part.strip() for part in value.split(",")] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("Accept", "ab"), ("X-Multi", "a"), ("X-Multi", "ab")],
    ids=["repeating-value", "one-character", "other"],
)
def test_a_field_sent_twice_with_one_value_is_joined(server, field, value):
    # Both values must reach the app even when they are one shared string object: Accept's
    # value while it repeats between requests, any one-character value always.
    for _ in range(2):
        raw = request("GET", "/environ", headers=[(field, value), (field, value)])
        key = "HTTP_" + field.upper().replace("-", "_")
        assert environ_for(server, raw)["values"][key] == f"{value}, {value}"


def test_repeating_values_follow_each_request(server):
    # The path and Host change from one request to the next; each environ has its own.
    for path, host in [("/environ/a", "one"), ("/environ/a", "two"), ("/environ/b", "two")]:
        raw = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        values = environ_for(server, raw)["values"]
        assert (values["PATH_INFO"], values["RAW_URI"], values["HTTP_HOST"]) == (path, path, host)


@pytest.mark.parametrize("order", ["dash-first", "underscore-first"])
def test_underscore_header_does_not_overwrite_dash_header(server, order):
    headers = [("X-Foo", "dash"), ("X_Foo", "underscore")]
    if order == "underscore-first":
        headers.reverse()
    values = environ_for(server, request("GET", "/environ", headers=headers))["values"]
    assert values["HTTP_X_FOO"] == "dash"


def test_header_values_are_latin1_strings(server):
    raw = request("GET", "/environ", headers=[("X-Latin", "caf\xe9 \xff")])
    assert environ_for(server, raw)["values"]["HTTP_X_LATIN"] == "caf\xe9 \xff"


# --- wsgi.input --------------------------------------------------------------------------------

BODY = b"first line\nsecond line\n\nfourth\nno newline at the end"


def input_result(server, mode, body=BODY, chunked_body=False):
    if chunked_body:
        raw = request(
            "POST", f"/input?mode={mode}", headers=[("Transfer-Encoding", "chunked")],
            body=chunked(body[:7], body[7:]),
        )  # fmt: skip
    else:
        raw = request("POST", f"/input?mode={mode}", body=body)
    resp = exchange(server, raw)
    assert resp.status == 200, resp.body
    return [s.encode("latin-1") for s in resp.json()]


@pytest.mark.parametrize("chunked_body", [False, True], ids=["content-length", "chunked"])
def test_input_read_returns_the_whole_body_then_nothing(server, chunked_body):
    assert input_result(server, "read", chunked_body=chunked_body) == [BODY, b""]


def test_input_read_with_sizes(server):
    assert input_result(server, "read-sizes") == [b"", b"f", b"irst ", BODY[6:], b""]


def test_input_read_none_reads_everything(server):
    assert input_result(server, "read-none") == [BODY, b""]


def test_input_readline(server):
    lines = input_result(server, "readline")
    assert lines[:5] == [b"first line\n", b"second line\n", b"\n", b"fou", b"rth\n"]
    assert lines[5] == b"no newline at the end"
    assert lines[6:] == [b""] * 9


@pytest.mark.parametrize("chunked_body", [False, True], ids=["content-length", "chunked"])
def test_input_readlines(server, chunked_body):
    assert input_result(server, "readlines", chunked_body=chunked_body) == BODY.splitlines(
        keepends=True
    )


def test_input_readlines_with_a_hint(server):
    # PEP 3333 lets the server ignore the hint; either way nothing is lost or repeated.
    first, rest = input_result(server, "readlines-hint")
    lines = first.split(b"|")
    assert lines[0] == b"first line\n"
    assert b"".join(lines) + rest == BODY


def test_input_iteration_yields_lines(server):
    assert input_result(server, "iterate") == BODY.splitlines(keepends=True)


def test_input_mixed_calls_share_one_position(server):
    got = input_result(server, "mixed")
    assert got[:4] == [b"fir", b"st line\n", b"second line\n", b"\nfou"]
    assert b"".join(got) == BODY


def test_input_of_an_empty_body(server):
    assert input_result(server, "read", body=b"") == [b"", b""]


@pytest.mark.parametrize("encoding", ["content-length", "chunked"])
def test_large_body_is_read_intact(server, encoding):
    body = os.urandom(5 * 1024 * 1024 + 3)
    if encoding == "chunked":
        pieces = (body[i : i + 300_000] for i in range(0, len(body), 300_000))
        resp = requests.post(server.url("/input-digest"), data=pieces, timeout=60)
    else:
        resp = requests.post(server.url("/input-digest"), data=body, timeout=60)
    result = resp.json()
    assert result["length"] == len(body)
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    if encoding == "content-length":
        assert result["content_length"] == str(len(body))


def test_body_arriving_in_pieces_after_the_head_then_a_pipelined_request(server):
    # The head alone, then the body in pieces (the last one with the next request behind it):
    # body bytes may go straight into the body buffer, the rest must stay for the next request.
    body = os.urandom(100_000)
    head = request("POST", "/input-digest", body=body)[: -len(body)]
    with server.connect() as conn:
        conn.send(head)
        time.sleep(0.05)
        for i in range(0, 90_000, 30_000):
            conn.send(body[i : i + 30_000])
            time.sleep(0.05)
        conn.send(body[90_000:] + request("GET", "/alive"))
        first = conn.response()
        assert first.status == 200
        assert first.json()["sha256"] == hashlib.sha256(body).hexdigest()
        second = conn.response()
        assert second.status == 200


# --- write() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["list", "stream"])
def test_write_output_comes_before_the_iterable(server, body):
    target = "/write" + ("?stream=1" if body == "stream" else "")
    resp = exchange(server, request("GET", target))
    assert resp.status == 200
    assert resp.body == b"one two three four"


# --- start_response with exc_info --------------------------------------------------------------


def test_exc_info_before_headers_replaces_them(server):
    resp = exchange(server, request("GET", "/exc-info-before-headers"))
    assert resp.status == 500
    assert resp.header("X-Second") == "1"
    assert resp.header("X-First") is None
    assert resp.body == b"replaced"


def test_exc_info_after_headers_re_raises(server):
    key = new_key()
    with server.connect() as conn:
        conn.send(request("GET", f"/exc-info-after-headers?key={key}"))
        resp = conn.response()
        assert resp.status == 200, "the headers already sent stay"
        assert resp.body == b"partial and the rest"  # the app caught the re-raised error
    assert server.wait_for_event(key, "re-raised KeyError 'late failure'") == [
        "re-raised KeyError 'late failure'"
    ]


# --- close() -----------------------------------------------------------------------------------


def test_close_is_called_once_after_success(server):
    key = new_key()
    resp = exchange(server, request("GET", f"/closing?key={key}&mode=ok"))
    assert resp.body == b"chunk1 chunk2 chunk3 "
    time.sleep(0.05)
    assert server.events(key) == ["close"]


@pytest.mark.parametrize("mode", ["error-first", "error-later"])
def test_close_is_called_once_after_an_error(server, mode):
    key = new_key()
    with server.connect() as conn:
        conn.send(request("GET", f"/closing?key={key}&mode={mode}"))
        conn.read_to_eof()
    server.wait_for_event(key, "close")
    time.sleep(0.05)
    assert server.events(key) == ["close"]
    assert_serves(server)


def test_close_is_called_once_when_the_client_goes_away_mid_stream(server):
    key = new_key()
    conn = server.connect()
    conn.send(request("GET", f"/closing?key={key}&mode=endless"))
    assert conn.head().status == 200
    conn.read_exact(100_000)
    conn.close()
    server.wait_for_event(key, "close")
    time.sleep(0.05)
    assert server.events(key) == ["close"]
    assert_serves(server)


def test_close_is_called_once_for_a_head_request(server):
    key = new_key()
    resp = exchange(server, request("HEAD", f"/closing?key={key}&mode=ok"), method="HEAD")
    assert resp.status == 200
    server.wait_for_event(key, "close")
    time.sleep(0.05)
    assert server.events(key) == ["close"]


# --- application errors ------------------------------------------------------------------------


def test_exception_in_the_app_gives_500_and_a_logged_traceback(server):
    marker = new_key()
    resp = exchange(server, request("GET", f"/fail-in-app?marker={marker}"))
    assert resp.status == 500
    assert b"Traceback" not in resp.body
    assert b"secret-detail" not in resp.body
    assert marker.encode() not in resp.body
    server.wait_for_output(f"RuntimeError: secret-detail-in-app {marker}")
    assert "Traceback (most recent call last)" in server.stderr
    assert_serves(server)


def test_exception_in_the_body_before_headers_gives_500(server):
    resp = exchange(server, request("GET", "/fail-in-body?when=first"))
    assert resp.status == 500
    assert b"secret-detail" not in resp.body
    server.wait_for_output("ZeroDivisionError: secret-detail-in-body")
    assert_serves(server)


def test_exception_after_headers_closes_the_connection(server):
    with server.connect() as conn:
        conn.send(request("GET", "/fail-in-body?when=later"))
        head = conn.head()
        assert head.status == 200
        rest = conn.read_to_eof()  # returns only when the server closes
        assert b"first chunk" in rest
        assert not rest.endswith(b"0\r\n\r\n"), "a failed stream must not look complete"
    server.wait_for_output("ZeroDivisionError: secret-detail-after-headers")
    assert_serves(server)


@pytest.mark.parametrize("kind", ["value-crlf", "value-lf", "name-crlf", "status-crlf"])
def test_cr_or_lf_in_a_response_header_gives_500(server, kind):
    with server.connect() as conn:
        conn.send(request("GET", f"/bad-header?kind={kind}"))
        resp = conn.response()
        assert resp.status == 500
        assert resp.header("Injected") is None
        assert resp.header("X-Bad") is None
        assert b"must not be sent" not in resp.body
    assert_serves(server)


def test_wsgi_errors_goes_to_the_servers_stderr(server):
    marker = new_key()
    resp = exchange(server, request("GET", f"/errors?marker={marker}"))
    assert resp.body == b"logged\n"
    server.wait_for_output(f"wsgi-errors-marker {marker}")
    server.wait_for_output("wsgi-errors-lines")


# --- wsgi.file_wrapper -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 8192, 1024 * 1024 + 7])
def test_file_wrapper_serves_the_file_byte_exact(server, tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    resp = exchange(server, request("GET", f"/file?path={path}"))
    assert resp.status == 200
    assert resp.body == data


def test_file_wrapper_with_apps_content_length(server, tmp_path):
    data = os.urandom(100_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with server.connect() as conn:
        conn.send(request("GET", f"/file?path={path}&length={len(data)}"))
        resp = conn.response()
        assert resp.framing == "length"
        assert resp.body == data
        conn.send(request("GET", "/alive"))
        assert conn.response().body == b"alive\n"


def test_file_wrapper_starts_at_the_files_position(server, tmp_path):
    data = os.urandom(50_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    resp = exchange(server, request("GET", f"/file?path={path}&offset=1234"))
    assert resp.body == data[1234:]


def test_file_wrapper_head_request_sends_no_body(server, tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 5000)
    with server.connect() as conn:
        conn.send(request("HEAD", f"/file?path={path}") + request("GET", "/alive"))
        assert conn.response("HEAD").status == 200
        assert conn.response().body == b"alive\n"


def test_file_wrapper_over_a_file_like_object_without_fileno(server):
    key = new_key()
    resp = exchange(server, request("GET", f"/file?source=bytesio&data=in-memory&key={key}"))
    assert resp.body == b"in-memory"
    server.wait_for_event(key, "file closed")


# --- wsgiref's validator -----------------------------------------------------------------------


def test_validated_app_runs_without_validation_errors(module_serve):
    server = module_serve("wsgiapp:validated")
    base = server.url("")
    s = requests.Session()
    assert s.get(base + "/", timeout=10).text == "valid\n"
    assert s.get(base + "/?q=1", timeout=10).text == "valid\n"
    assert s.head(base + "/", timeout=10).status_code == 200
    assert s.post(base + "/post", data=b"payload", timeout=10).text == "got payload"
    assert s.post(base + "/lines", data=b"a\nb\nc", timeout=10).json() == ["a\n", "b\n", "c"]
    assert s.get(base + "/stream", timeout=10).text == "tick 0\ntick 1\ntick 2\n"
    assert s.get(base + "/write", timeout=10).text == "written returned"
    assert s.get(base + "/no-content", timeout=10).status_code == 204
    with server.connect() as conn:
        conn.send(request("GET", "/", version="HTTP/1.0", host=None))
        assert conn.response().body == b"valid\n"
    time.sleep(0.2)
    problems = [
        line
        for line in server.stderr_lines
        if re.search(r"AssertionError|WSGIWarning|Traceback|garbage collected", line)
    ]
    assert problems == [], "\n".join(server.stderr_lines)
