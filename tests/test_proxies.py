"""Behind a proxy: X-Forwarded-* from trusted peers (--forwarded-allow-ips) and the PROXY
protocol (--proxy-protocol, versions 1 and 2), on both backends, inline and in thread mode."""

import ipaddress
import json
import struct
import time

import pytest
from support import request, run_evserver

BOTH_MODES = True


def environ_of(server, headers=(), raw_prefix=b"", conn=None):
    """The environ keys deployapp reports for one request (over ``conn`` if given)."""
    data = raw_prefix + request("GET", "/", headers=list(headers), host="app.test")
    own = conn is None
    conn = conn or server.connect()
    try:
        conn.send(data)
        response = conn.response()
    finally:
        if own:
            conn.close()
    assert response.status == 200, response
    return json.loads(response.body)["environ"]


# --- X-Forwarded-* ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_server(module_serve):
    return module_serve("deployapp")


def test_a_trusted_proxy_sets_scheme_and_client(default_server):
    seen = environ_of(
        default_server,
        [
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Host", "example.com"),
            ("X-Forwarded-Port", "443"),
        ],
    )
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["HTTPS"] == "on"
    assert seen["REMOTE_ADDR"] == "203.0.113.7"
    # Passed through for the application (Django's USE_X_FORWARDED_HOST, ...).
    assert seen["HTTP_X_FORWARDED_HOST"] == "example.com"
    assert seen["HTTP_X_FORWARDED_PORT"] == "443"


@pytest.mark.parametrize("field", [("X-Forwarded-Ssl", "on"), ("X-Forwarded-Protocol", "ssl")])
def test_the_other_scheme_fields(default_server, field):
    assert environ_of(default_server, [field])["wsgi.url_scheme"] == "https"


def test_without_forwarded_fields_nothing_changes(default_server):
    seen = environ_of(default_server)
    assert seen["wsgi.url_scheme"] == "http"
    assert "HTTPS" not in seen or seen["HTTPS"] is None
    assert seen["REMOTE_ADDR"] == "127.0.0.1"


def test_garbage_in_x_forwarded_for_is_not_believed(default_server):
    seen = environ_of(default_server, [("X-Forwarded-For", "1.2.3.4, not-an-address")])
    assert seen["REMOTE_ADDR"] == "127.0.0.1"


def test_an_untrusted_peer_changes_nothing(serve):
    server = serve("deployapp", "--forwarded-allow-ips", "10.0.0.1,192.168.0.0/16")
    seen = environ_of(server, [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7")])
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    # The fields themselves still reach the application, as sent.
    assert seen["HTTP_X_FORWARDED_PROTO"] == "https"


def test_a_chain_of_trusted_proxies_is_walked_to_the_client(serve):
    server = serve("deployapp", "--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8")
    hops = "198.51.100.9, 203.0.113.7, 10.1.2.3"
    assert environ_of(server, [("X-Forwarded-For", hops)])["REMOTE_ADDR"] == "203.0.113.7"
    everyone = serve("deployapp", "--forwarded-allow-ips", "*")
    assert environ_of(everyone, [("X-Forwarded-For", hops)])["REMOTE_ADDR"] == "198.51.100.9"


def test_a_unix_socket_peer_is_trusted(serve, tmp_path):
    server = serve(
        "deployapp", "-l", f"unix:{tmp_path / 's.sock'}", "--forwarded-allow-ips", "10.0.0.1"
    )
    seen = environ_of(server, [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"]) == ("203.0.113.7", "https")


def test_a_bad_allow_list_is_one_line():
    result = run_evserver(["hello", "--forwarded-allow-ips", "127.0.0.1,localhost"])
    assert result.returncode == 2
    errors = [x for x in result.stderr.splitlines() if x.startswith("evserver: error:")]
    assert len(errors) == 1 and "'localhost' is not an address" in errors[0], result.stderr


# --- the PROXY protocol ---------------------------------------------------------------------


V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(source: str, port: int, command: int = 1) -> bytes:
    ip = ipaddress.ip_address(source)
    family = 0x11 if ip.version == 4 else 0x21
    destination = ipaddress.ip_address("192.0.2.99" if ip.version == 4 else "2001:db8::99")
    addresses = ip.packed + destination.packed + struct.pack("!HH", port, 443)
    return (
        V2_SIGNATURE
        + bytes([0x20 | command, family])
        + struct.pack("!H", len(addresses))
        + addresses
    )


@pytest.fixture(scope="module")
def proxied(module_serve):
    return module_serve("deployapp", "--proxy-protocol")


def test_proxy_v1_sets_the_client(proxied):
    seen = environ_of(proxied, raw_prefix=b"PROXY TCP4 203.0.113.7 192.0.2.99 56324 443\r\n")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("203.0.113.7", "56324")


def test_proxy_v2_sets_the_client_for_every_request_of_the_connection(proxied):
    with proxied.connect() as conn:
        conn.send(proxy_v2("2001:db8::7", 8443))
        time.sleep(0.05)  # the header alone first, the request in a later packet
        seen = environ_of(proxied, conn=conn)
        assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("2001:db8::7", "8443")
        again = environ_of(proxied, conn=conn)
        assert again["REMOTE_ADDR"] == "2001:db8::7"


def test_proxy_v2_local_and_v1_unknown_keep_the_peer(proxied):
    local = environ_of(proxied, raw_prefix=proxy_v2("192.0.2.1", 1, command=0))
    assert local["REMOTE_ADDR"] == "127.0.0.1"
    unknown = environ_of(proxied, raw_prefix=b"PROXY UNKNOWN\r\n")
    assert unknown["REMOTE_ADDR"] == "127.0.0.1"


def test_a_header_byte_by_byte(proxied):
    with proxied.connect() as conn:
        for byte in b"PROXY TCP4 203.0.113.8 192.0.2.99 1000 443\r\n":
            conn.send(bytes([byte]))
        assert environ_of(proxied, conn=conn)["REMOTE_ADDR"] == "203.0.113.8"


def test_plain_http_from_an_allowed_peer_still_works(proxied):
    assert environ_of(proxied)["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize(
    "garbage",
    [
        b"PROXY TCP4 203.0.113.7 192.0.2.99 99999 443\r\nGET / HTTP/1.1\r\n\r\n",
        b"PROXY SOMETHING\r\n",
        V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),
        b"PROXY " + b"x" * 200,
    ],
)
def test_a_malformed_header_closes_the_connection_and_the_worker_lives(proxied, garbage):
    with proxied.connect() as conn:
        conn.send(garbage)
        assert conn.read_to_eof() == b""
    assert environ_of(proxied)["REMOTE_ADDR"] == "127.0.0.1"


def test_a_proxy_header_from_a_peer_not_allowed_is_a_bad_request(serve):
    server = serve("deployapp", "--proxy-protocol", "--proxy-allow-from", "10.0.0.1")
    with server.connect() as conn:
        conn.send(b"PROXY TCP4 203.0.113.7 192.0.2.99 1 2\r\n" + request("GET", "/"))
        assert conn.response().status == 400


def test_the_proxy_header_from_the_real_peer_feeds_x_forwarded_trust(serve):
    # The PROXY client (not on the allow list) is the peer: its X-Forwarded-For is ignored.
    server = serve("deployapp", "--proxy-protocol")
    seen = environ_of(
        server,
        [("X-Forwarded-For", "198.51.100.1")],
        raw_prefix=b"PROXY TCP4 203.0.113.7 192.0.2.99 1 2\r\n",
    )
    assert seen["REMOTE_ADDR"] == "203.0.113.7"


def test_the_access_log_shows_the_client_the_proxy_names(serve):
    server = serve("deployapp", "--access-log", "-", "--proxy-protocol")
    environ_of(server, [("X-Forwarded-For", "203.0.113.7")])
    server.wait_for_output(r'^203\.0\.113\.7 - - \[.*\] "GET / HTTP/1.1" 200', stream="stdout")
    environ_of(server, raw_prefix=b"PROXY TCP4 198.51.100.4 192.0.2.99 1 2\r\n")
    server.wait_for_output(r"^198\.51\.100\.4 - - \[", stream="stdout")
