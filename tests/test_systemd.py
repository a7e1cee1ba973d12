"""systemd: socket activation (LISTEN_FDS/LISTEN_PID, and fd://N for any inherited socket)
and readiness notification (NOTIFY_SOCKET: READY, RELOADING, STOPPING), on both backends."""

import json
import signal
import socket
import sys

import pytest
from support import request, run_evserver


def listening_socket(family=socket.AF_INET, address=("127.0.0.1", 0)):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(64)
    return sock


def get(server, path="/"):
    with server.connect() as conn:
        conn.send(request("GET", path, host=server.address.netloc))
        return conn.response()


def test_an_inherited_socket_is_served_with_fd_n(serve):
    sock = listening_socket()
    port = sock.getsockname()[1]
    server = serve("deployapp", "-b", f"fd://{sock.fileno()}", pass_fds=(sock.fileno(),))
    sock.close()  # the server holds its own copy
    assert server.port == port
    assert json.loads(get(server).body)["environ"]["SERVER_PORT"] == str(port)


def test_socket_activation_serves_systemd_s_sockets(serve, tmp_path, backend):
    tcp = listening_socket()
    unix_path = tmp_path / "activated.sock"
    unix = listening_socket(socket.AF_UNIX, str(unix_path))
    fds = (tcp.fileno(), unix.fileno())
    # As systemd does: the sockets as fds 3 and 4, LISTEN_PID naming the server's own pid
    # (the launcher's, which exec keeps).
    launcher = (
        "import os, sys\n"
        f"os.dup2({fds[0]}, 3); os.dup2({fds[1]}, 4)\n"
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='2')\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'evserver', *sys.argv[1:]])\n"
    )
    server = serve(
        "deployapp", "--backend", backend, command=[sys.executable, "-c", launcher],
        pass_fds=fds, defaults=False,
    )  # fmt: skip
    tcp.close()
    unix.close()
    assert [a.kind for a in server.addresses] == ["tcp", "unix"]
    assert server.addresses[1].path == str(unix_path)
    assert get(server).status == 200
    assert json.loads(get(server).body)["pid"] == server.worker_pid
    # A stop leaves systemd's unix socket file alone.
    assert server.stop() == 0
    assert unix_path.exists()


def test_fd_n_that_is_not_a_listening_socket_is_one_line(tmp_path):
    result = run_evserver(["hello", "-b", "fd://0"])
    assert result.returncode == 1
    lines = [x for x in result.stderr.splitlines() if x.startswith("evserver: error:")]
    assert len(lines) == 1, result.stderr
    assert "fd://0" in lines[0]


def test_readiness_reload_and_stop_are_notified(serve, tmp_path):
    path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(20)

    def next_message():
        return receiver.recv(4096).decode()

    server = serve("hello", "-w", "2", env={"NOTIFY_SOCKET": str(path)})
    ready = next_message()
    assert ready.startswith("READY=1\n"), ready
    assert f"MAINPID={server.pid}" in ready
    assert "2 workers" in ready
    server.proc.send_signal(signal.SIGHUP)
    reloading = next_message()
    assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC="), reloading
    assert next_message() == "READY=1"
    assert get(server).status == 200
    server.proc.send_signal(signal.SIGTERM)
    assert next_message() == "STOPPING=1"
    assert server.proc.wait(10) == 0
    receiver.close()


@pytest.mark.parametrize("variable", ["NOTIFY_SOCKET", "LISTEN_FDS"])
def test_the_application_does_not_see_systemd_s_variables(serve, tmp_path, variable):
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "n.sock"))
    value = str(tmp_path / "n.sock") if variable == "NOTIFY_SOCKET" else "1"
    server = serve(
        "--exec",
        "import os, json\n"
        "def application(e, sr):\n"
        "    sr('200 OK', [])\n"
        f"    return [json.dumps(os.environ.get({variable!r})).encode()]\n",
        env={variable: value, "LISTEN_PID": "1"},
    )
    assert get(server).body == b"null"
    receiver.close()
