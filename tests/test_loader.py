"""evserver._loader on its own (no server, no extension): how an app is named and found, and
the one-line message for every way that fails."""

import sys
import textwrap
import uuid

import pytest
from evserver import _loader
from evserver._loader import LoadError, load

APP = """
def application(environ, start_response):
    return [b"app"]

def other(environ, start_response):
    return [b"other"]

def factory():
    return other

def bad_factory():
    return 42

def failing_factory():
    raise ValueError("factory-failed")

class Holder:
    inner = staticmethod(other)

holder = Holder()
VALUE = 42
NOTHING = None
TEXT = "text"
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory, sys.path and set of modules for each test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if not name.startswith("evserver"):
            del sys.modules[name]


@pytest.fixture
def module(workdir):
    """Writes a module into the working directory and returns its (unique) name."""

    def write(source=APP, name=None, package=False):
        name = name or f"m_{uuid.uuid4().hex[:12]}"
        if package:
            (workdir / name).mkdir()
            (workdir / name / "__init__.py").write_text("")
            (workdir / name / "sub.py").write_text(textwrap.dedent(source))
        else:
            (workdir / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


def called(app):
    return app({}, lambda *a: None)


def message(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text, "a load error is one line"
    return text


# --- names that load ---------------------------------------------------------------------------


def test_module_alone_means_its_application(module):
    assert called(load(module(), None, None)) == [b"app"]


def test_module_and_name(module):
    assert called(load(f"{module()}:other", None, None)) == [b"other"]


def test_dotted_name(module):
    assert called(load(f"{module()}:holder.inner", None, None)) == [b"other"]


def test_factory_is_called(module):
    assert called(load(f"{module()}:factory()", None, None)) == [b"other"]


def test_module_in_a_package(module):
    name = module(package=True)
    assert called(load(f"{name}.sub:application", None, None)) == [b"app"]


def test_working_directory_comes_first_on_sys_path(module, workdir):
    name = module()
    load(name, None, None)
    assert sys.path[0] == str(workdir)
    assert sys.modules[name].__file__ == str(workdir / f"{name}.py")


def test_working_directory_shadows_an_installed_module(module, workdir):
    # A module named like one elsewhere on the path: the working directory wins.
    module(name="json_lookalike_xyz")
    other = workdir / "elsewhere"
    other.mkdir()
    (other / "json_lookalike_xyz.py").write_text("application = None\n")
    sys.path.insert(0, str(other))
    assert called(load("json_lookalike_xyz", None, None)) == [b"app"]


# --- names that fail ---------------------------------------------------------------------------


def test_missing_module(workdir):
    with pytest.raises(LoadError) as e:
        load("nosuch_xyz", None, None)
    assert message(e) == "cannot import module 'nosuch_xyz': No module named 'nosuch_xyz'"


def test_missing_submodule_of_a_missing_package(workdir):
    with pytest.raises(LoadError) as e:
        load("nosuch_pkg_xyz.wsgi:application", None, None)
    assert message(e) == (
        "cannot import module 'nosuch_pkg_xyz.wsgi': No module named 'nosuch_pkg_xyz'"
    )


def test_missing_attribute(module):
    name = module()
    with pytest.raises(LoadError) as e:
        load(f"{name}:app", None, None)
    assert message(e) == f"module '{name}' has no attribute 'app'"


def test_module_without_application(module):
    name = module("x = 1\n")
    with pytest.raises(LoadError) as e:
        load(name, None, None)
    assert message(e) == f"module '{name}' has no attribute 'application'"


def test_missing_dotted_attribute(module):
    name = module()
    with pytest.raises(LoadError) as e:
        load(f"{name}:holder.nope", None, None)
    assert message(e) == f"'{name}:holder' has no attribute 'nope'"


@pytest.mark.parametrize(
    ("attr", "kind"),
    [("VALUE", "an int"), ("NOTHING", "None"), ("TEXT", "a str")],
)
def test_not_callable(module, attr, kind):
    name = module()
    with pytest.raises(LoadError) as e:
        load(f"{name}:{attr}", None, None)
    assert message(e) == f"'{name}:{attr}' is not callable (it is {kind})"


def test_factory_returning_a_non_callable(module):
    name = module()
    with pytest.raises(LoadError) as e:
        load(f"{name}:bad_factory()", None, None)
    assert message(e) == (
        f"application factory '{name}:bad_factory()' returned an int, not a WSGI callable"
    )


def test_factory_raising_shows_the_traceback(module, capsys):
    name = module()
    with pytest.raises(LoadError) as e:
        load(f"{name}:failing_factory()", None, None)
    assert message(e) == (
        f"application factory '{name}:failing_factory()' raised ValueError: factory-failed"
    )
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "in failing_factory" in err


@pytest.mark.parametrize(
    "spec",
    ["", ":app", "mod:", "mod:app(1)", "mod app", "mod::app", "mod:class", "1mod", "mod:a..b"],
)
def test_invalid_names(workdir, spec):
    with pytest.raises(LoadError) as e:
        load(spec, None, None)
    assert message(e).startswith(f"invalid application {spec!r}: expected ")


def test_exception_while_importing_shows_the_users_traceback(module, capsys):
    name = module("import os\n\nx = 1\nraise KeyError('import-time-bug')\n")
    with pytest.raises(LoadError) as e:
        load(name, None, None)
    assert message(e) == f"error while importing module '{name}': KeyError: 'import-time-bug'"
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert f'{name}.py", line 4, in <module>' in err
    assert "_loader.py" not in err and "importlib" not in err, "only the user's frames"


def test_syntax_error_in_the_module(module, capsys):
    name = module("def broken(:\n    pass\n")
    with pytest.raises(LoadError) as e:
        load(name, None, None)
    assert message(e).startswith(f"error while importing module '{name}': SyntaxError")
    assert "SyntaxError" in capsys.readouterr().err


def test_missing_dependency_of_the_module_is_the_users_bug(module, capsys):
    name = module("import nosuch_dependency_xyz\n")
    with pytest.raises(LoadError) as e:
        load(name, None, None)
    assert message(e) == (
        f"error while importing module '{name}': "
        "ModuleNotFoundError: No module named 'nosuch_dependency_xyz'"
    )
    assert "Traceback" in capsys.readouterr().err


def test_system_exit_while_importing_is_a_load_error(module, capsys):
    name = module("import sys\nsys.exit(3)\n")
    with pytest.raises(LoadError) as e:
        load(name, None, None)
    assert message(e) == f"error while importing module '{name}': SystemExit: 3"


# --- --exec ------------------------------------------------------------------------------------


def test_exec_binds_application(module):
    name = module()
    app = load(None, f"import {name}\napplication = {name}.other", None)
    assert called(app) == [b"other"]


def test_exec_runs_in_a_fresh_namespace(workdir):
    load(None, "application = lambda e, s: [b'1']\nleak_xyz = 1", None)
    app = load(None, "application = lambda e, s: [globals().get('leak_xyz', 'fresh')]", None)
    assert called(app) == ["fresh"]


def test_exec_finds_modules_in_the_working_directory(module):
    name = module()
    assert called(load(None, f"from {name} import application", None)) == [b"app"]


def test_exec_without_application(workdir):
    with pytest.raises(LoadError) as e:
        load(None, "x = 1", None)
    assert message(e) == "--exec code did not bind 'application'"


def test_exec_binding_a_non_callable(workdir):
    with pytest.raises(LoadError) as e:
        load(None, "application = 'no'", None)
    assert message(e) == "'application' bound by --exec is not callable (it is a str)"


def test_exec_with_a_syntax_error(workdir):
    with pytest.raises(LoadError) as e:
        load(None, "application = (", None)
    assert message(e).startswith("--exec code has a syntax error: ")


def test_exec_raising_shows_the_traceback(workdir, capsys):
    with pytest.raises(LoadError) as e:
        load(None, "x = 1\n1 / 0", None)
    assert message(e) == "--exec code raised ZeroDivisionError: division by zero"
    err = capsys.readouterr().err
    assert '"<--exec>", line 2' in err


# --- --framework -------------------------------------------------------------------------------


def test_framework_demo(workdir):
    from evserver import demo

    assert load(None, None, "demo") is demo.application


def test_nothing_given_means_the_demo(workdir):
    from evserver import demo

    assert load(None, None, None) is demo.application


def test_unknown_framework(workdir):
    with pytest.raises(LoadError) as e:
        load(None, None, "flask")
    assert message(e) == "unknown framework 'flask' (choose one of: demo, django)"


def test_django_needs_its_settings_variable(workdir, monkeypatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    with pytest.raises(LoadError) as e:
        load(None, None, "django")
    assert message(e).startswith("--framework django needs DJANGO_SETTINGS_MODULE")


FAKE_DJANGO = {
    "django/__init__.py": "",
    "django/conf.py": "import importlib, os\n"
    "class _S:\n"
    "    def __getattr__(self, name):\n"
    "        m = importlib.import_module(os.environ['DJANGO_SETTINGS_MODULE'])\n"
    "        return getattr(m, name)\n"
    "settings = _S()\n",
    "django/core/__init__.py": "",
    "django/core/wsgi.py": "import logging, logging.config\n"
    "from django.conf import settings\n"
    "def get_wsgi_application():\n"
    "    if getattr(settings, 'FAIL', False):\n"
    "        raise RuntimeError('django-setup-failed')\n"
    "    logging.config.dictConfig(settings.LOGGING)\n"
    "    def application(environ, start_response):\n"
    "        return [b'django']\n"
    "    return application\n",
}


@pytest.fixture
def fake_django(workdir, monkeypatch):
    """A stand-in for Django with its one entry point, so no Django install is needed."""
    for path, source in FAKE_DJANGO.items():
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_text(source)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "fake_settings_xyz")
    # The stand-in must win over a real Django that another suite imported in this process.
    for name in [n for n in sys.modules if n == "django" or n.startswith("django.")]:
        monkeypatch.delitem(sys.modules, name)
    return workdir


def test_django_application_is_loaded(fake_django):
    (fake_django / "fake_settings_xyz.py").write_text("LOGGING = {'version': 1}\n")
    assert called(load(None, None, "django")) == [b"django"]


def test_django_logging_config_keeps_evserver_loggers_enabled(fake_django, restore_loggers):
    import logging

    from evserver import _logging

    (fake_django / "fake_settings_xyz.py").write_text("LOGGING = {'version': 1}\n")
    _logging.configure("info", None)
    load(None, None, "django")  # dictConfig disables existing loggers it does not name
    assert not logging.getLogger("evserver").disabled
    assert not logging.getLogger("evserver.access").isEnabledFor(logging.INFO)


def test_django_missing_settings_module(fake_django):
    with pytest.raises(LoadError) as e:
        load(None, None, "django")
    assert message(e) == (
        "cannot import module 'fake_settings_xyz': No module named 'fake_settings_xyz'"
    )


def test_django_failing_to_start(fake_django, capsys):
    (fake_django / "fake_settings_xyz.py").write_text("FAIL = True\n")
    with pytest.raises(LoadError) as e:
        load(None, None, "django")
    assert message(e) == (
        "Django failed to start with settings 'fake_settings_xyz': "
        "RuntimeError: django-setup-failed"
    )
    assert "Traceback" in capsys.readouterr().err


# --- more than one source ----------------------------------------------------------------------


def test_app_and_exec_together_are_refused(workdir):
    with pytest.raises(LoadError) as e:
        load("hello", "application = None", None)
    assert message(e) == "give only one of APP, --exec and --framework (got APP and --exec)"


def test_load_error_messages_are_always_one_line():
    assert str(LoadError("a\nb\r\nc")) == "a b c"
    assert _loader.FRAMEWORKS == ("demo", "django")
