"""TLS (``--certfile``, rustls) with real clients: Python's ssl and requests, curl, the
websockets library over wss. Certificates come from a test CA made per module (trustme).
Both backends, inline and thread mode."""

from __future__ import annotations

import hashlib
import http.client
import json
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
import trustme
from support import Server, run_evserver
from websockets.sync.client import connect as ws_connect

BOTH_MODES = True


class Pki:
    """A test CA, the server's certificate for localhost and 127.0.0.1, and a client's."""

    def __init__(self, where: Path) -> None:
        self.ca = trustme.CA()
        self.dir = where
        self.ca_pem = where / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))
        self.server_pem = self.issue("server.pem")
        self.client = self.ca.issue_cert("client@example.test")

    def issue(self, name: str) -> Path:
        path = self.dir / name
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
        return path

    def context(self, client_cert: bool = False, **versions) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        for name, value in versions.items():
            setattr(ctx, name, value)
        if client_cert:
            self.client.configure_cert(ctx)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_socket(server: Server, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((server.host, server.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def tls_connection(server: Server, ctx: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(server.host, server.port, context=ctx, timeout=10)


def test_https_sets_the_scheme_and_keeps_connections_alive(serve, pki):
    server = serve("tlsapp", "--certfile", str(pki.server_pem))
    assert server.url("/").startswith("https://")
    answer = requests.get(server.url("/"), verify=str(pki.ca_pem), timeout=10)
    assert answer.json() == {"wsgi.url_scheme": "https", "HTTPS": "on"}
    conn = tls_connection(server, pki.context())
    for _ in range(3):  # one connection, three requests
        conn.request("GET", "/big?n=1000")
        assert conn.getresponse().read() == bytes(i % 251 for i in range(1000))
    assert conn.sock.version() == "TLSv1.3"
    assert conn.sock.selected_alpn_protocol() is None  # http.client offers none
    conn.close()


def test_large_streamed_uploaded_and_file_bodies_arrive_whole(serve, pki, tmp_path):
    blob = tmp_path / "file.bin"
    blob.write_bytes(bytes(range(256)) * 12_289)  # about 3 MB, not a multiple of a step
    server = serve("tlsapp", "--certfile", str(pki.server_pem), env={"TLSAPP_FILE": str(blob)})
    conn = tls_connection(server, pki.context())
    conn.request("GET", "/big?n=5000000")
    assert (
        hashlib.sha256(conn.getresponse().read()).digest()
        == hashlib.sha256(bytes(i % 251 for i in range(5_000_000))).digest()
    )
    conn.request("GET", "/stream")
    assert conn.getresponse().read() == b"".join(bytes([i]) * 10_000 for i in range(50))
    upload = bytes(range(256)) * 4096
    conn.request("POST", "/echo", body=upload)
    assert conn.getresponse().read() == upload
    conn.request("GET", "/file")
    assert conn.getresponse().read() == blob.read_bytes()
    conn.close()


def test_tls_1_2_and_alpn_http_1_1(serve, pki):
    server = serve("tlsapp", "--certfile", str(pki.server_pem))
    ctx = pki.context(maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with tls_socket(server, ctx) as tls:
        assert tls.version() == "TLSv1.2"
        assert tls.selected_alpn_protocol() == "http/1.1"
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["wsgi.url_scheme"] == "https"


@pytest.mark.parametrize(
    "junk", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b"\x00" * 64]
)
def test_plain_http_or_garbage_on_the_tls_port_closes_only_that_connection(serve, pki, junk):
    server = serve("tlsapp", "--certfile", str(pki.server_pem))
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        raw.sendall(junk)
        received = b""
        while chunk := raw.recv(4096):  # whatever alert rustls sends, then the end
            received += chunk
        assert b"HTTP/1.1" not in received
    # The worker lives on.
    answer = requests.get(server.url("/"), verify=str(pki.ca_pem), timeout=10)
    assert answer.status_code == 200
    assert server.proc.poll() is None


def test_client_certificates_when_required(serve, pki):
    server = serve(
        "tlsapp", "--certfile", str(pki.server_pem), "--ca-certs", str(pki.ca_pem),
        "--cert-reqs", "2",
    )  # fmt: skip
    conn = tls_connection(server, pki.context(client_cert=True))
    conn.request("GET", "/")
    assert conn.getresponse().status == 200
    conn.close()
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        conn = tls_connection(server, pki.context())
        conn.request("GET", "/")
        conn.getresponse().read()


def test_curl_speaks_https_to_it(serve, pki):
    server = serve("tlsapp", "--certfile", str(pki.server_pem))
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--cacert", str(pki.ca_pem), server.url("/")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["HTTPS"] == "on"


def test_websocket_over_tls(serve, pki):
    server = serve("wsapp", "--certfile", str(pki.server_pem))
    with ws_connect(f"wss://{server.address.netloc}/echo", ssl=pki.context()) as ws:
        ws.send("over TLS")
        assert ws.recv(timeout=10) == "over TLS"
        big = "x" * 300_000
        ws.send(big)
        assert ws.recv(timeout=10) == big


def test_a_reload_reads_renewed_certificate_files(serve, pki):
    current = pki.issue("renewed.pem")
    server = serve("tlsapp", "-w", "2", "--certfile", str(current))

    def serial() -> int:
        with tls_socket(server, pki.context()) as tls:
            der = tls.getpeercert(binary_form=True)
        return int.from_bytes(hashlib.sha256(der).digest()[:8], "big")

    before = serial()
    pki.issue("renewed.pem")  # the same path, a new certificate
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_output(r"reload done")
    deadline = time.monotonic() + 10
    while serial() == before:  # the old workers may still finish their last connections
        assert time.monotonic() < deadline, "the new certificate is not served"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--certfile", "/nonexistent/cert.pem"], "/nonexistent/cert.pem"),
        (["--keyfile", "key.pem"], "--certfile"),
        (["--certfile", "{ca}", "--cert-reqs", "3"], "--cert-reqs"),
    ],
)
def test_bad_tls_settings_are_one_line(pki, args, expected):
    args = [a.replace("{ca}", str(pki.ca_pem)) for a in args]
    result = run_evserver(["hello", "-l", "127.0.0.1:0", *args])
    assert result.returncode == 2, result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("evserver: error:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr
