"""evserver._logging on its own: the server's log and the access log, never the root logger."""

import logging

import pytest
from evserver import _logging


@pytest.fixture(autouse=True)
def _restore(restore_loggers):
    """Every test here reconfigures the loggers; conftest puts them back."""


def test_server_log_goes_to_stderr_with_time_and_level(capsys):
    _logging.configure("info", None)
    logging.getLogger("evserver").info("hello-info")
    logging.getLogger("evserver").debug("hello-debug")
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    line = err.splitlines()[0]
    assert line.endswith("[INFO] hello-info")
    assert line[:19].replace("-", "").replace(":", "").replace(" ", "").isdigit()


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("debug", ["d", "i", "w", "e"]),
        ("info", ["i", "w", "e"]),
        ("warning", ["w", "e"]),
        ("error", ["e"]),
        ("WARNING", ["w", "e"]),
    ],
)
def test_log_level(capsys, level, shown):
    _logging.configure(level, None)
    log = logging.getLogger("evserver")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [line.rsplit(" ", 1)[1] for line in capsys.readouterr().err.splitlines()] == shown


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        _logging.configure("loud", None)


def test_errors_are_logged_with_their_traceback(capsys):
    _logging.configure("info", None)
    try:
        raise ZeroDivisionError("in-the-app")
    except ZeroDivisionError as e:
        logging.getLogger("evserver").error(
            "error in application", exc_info=(type(e), e, e.__traceback__)
        )
    err = capsys.readouterr().err
    assert "[ERROR] error in application" in err
    assert "Traceback (most recent call last)" in err
    assert "ZeroDivisionError: in-the-app" in err


def test_configure_twice_does_not_duplicate_lines(capsys):
    _logging.configure("info", "-")
    _logging.configure("info", "-")
    logging.getLogger("evserver").info("once")
    logging.getLogger("evserver.access").info("access once")
    out, err = capsys.readouterr()
    assert err.count("once") == 1
    assert out == "access once\n"


def test_server_log_does_not_reach_the_root_logger(capsys):
    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    root = logging.getLogger()
    catch = Catch()
    root.addHandler(catch)
    try:
        _logging.configure("info", "-")
        logging.getLogger("evserver").info("not-twice")
        logging.getLogger("evserver.access").info("access-line")
    finally:
        root.removeHandler(catch)
    assert seen == []


def test_access_log_is_off_without_a_destination(capsys):
    _logging.configure("debug", None)
    access = logging.getLogger("evserver.access")
    assert not access.isEnabledFor(logging.INFO)
    access.info("must not appear")
    out, err = capsys.readouterr()
    assert "must not appear" not in out + err


def test_access_log_to_stdout_is_the_bare_line(capsys):
    _logging.configure("error", "-")  # the access log does not follow --log-level
    line = '127.0.0.1 - - [24/Nov/2025:10:00:00 +0000] "GET / HTTP/1.1" 200 5'
    logging.getLogger("evserver.access").info(line)
    out, err = capsys.readouterr()
    assert out == line + "\n"
    assert err == ""


def test_access_log_to_a_file_appends(tmp_path):
    path = tmp_path / "access.log"
    path.write_text("before\n")
    _logging.configure("info", str(path))
    logging.getLogger("evserver.access").info("after")
    assert path.read_text() == "before\nafter\n"


def test_a_handler_the_application_configured_gets_the_access_lines_alone(capsys):
    """Django's LOGGING applied before evserver starts (runevserver): one place only."""
    import io
    import logging.config

    theirs = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"mine": {"class": "logging.StreamHandler", "stream": theirs}},
            "loggers": {"evserver.access": {"handlers": ["mine"], "propagate": False}},
        }
    )
    _logging.configure("info", "-")
    logging.getLogger("evserver.access").info("GET / 200")
    out, err = capsys.readouterr()
    assert theirs.getvalue() == "GET / 200\n"
    assert out == "" and err == ""


def test_access_log_file_that_cannot_be_opened(tmp_path):
    with pytest.raises(OSError, match="cannot open access log"):
        _logging.configure("info", str(tmp_path / "no-such-dir" / "access.log"))


def test_root_logger_is_not_configured():
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    _logging.configure("debug", "-")
    assert (list(root.handlers), root.level) == before
