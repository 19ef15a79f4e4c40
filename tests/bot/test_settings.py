"""Settings come from the given environment and config file, typed, with plain errors."""

from pathlib import Path

import pytest

from bot.settings import Settings
from runner.errors import ConfigError
from runner.running.export import ExportLimits


def test_defaults_work_without_any_variable() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8080 and settings.backend == "docker"
    assert settings.db_url.startswith("sqlite:///") and settings.db_url.endswith("flowbot.db")
    assert settings.secret_values() == {}


def test_variables_are_typed() -> None:
    settings = Settings.from_env({
        "FLOWBOT_PORT": "9000", "FLOWBOT_REPOS": "octo/*, acme/flows",
        "FLOWBOT_DATA_DIR": "/srv/flowbot", "FLOWBOT_DATABASE_URL": "postgresql+psycopg://db/x",
    })
    assert settings.port == 9000
    assert settings.repos == ("octo/*", "acme/flows")
    assert settings.data_dir == Path("/srv/flowbot")
    assert settings.db_url == "postgresql+psycopg://db/x"


def test_a_malformed_number_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="FLOWBOT_PORT: expected a whole number, got 'eighty'"):
        Settings.from_env({"FLOWBOT_PORT": "eighty"})


def test_config_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "flowbot.toml"
    config.write_text('port = 7000\nworkers = 3\npublic_url = "https://bot.example"\n')
    settings = Settings.from_env({"FLOWBOT_CONFIG": str(config), "FLOWBOT_PORT": "7100"})
    assert (settings.port, settings.workers) == (7100, 3)
    assert settings.public_url == "https://bot.example"


def test_config_file_errors_are_plain(tmp_path: Path) -> None:
    config = tmp_path / "flowbot.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({"FLOWBOT_CONFIG": str(config)})
    config.write_text("port = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Settings.from_env({"FLOWBOT_CONFIG": str(config)})
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.from_env({"FLOWBOT_CONFIG": str(tmp_path / "missing.toml")})


def test_secrets_from_file_and_environment(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("# team secrets\nAPI_KEY=from-file\nDB_PASSWORD=p=w\n\n")
    settings = Settings.from_env({
        "FLOWBOT_SECRETS_FILE": str(secrets), "FLOWBOT_SECRET_API_KEY": "from-env",
    })
    assert settings.secret_values() == {"API_KEY": "from-env", "DB_PASSWORD": "p=w"}


def test_a_bad_secrets_line_names_file_and_line(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("OK=1\nnot a pair\n")
    settings = Settings.from_env({"FLOWBOT_SECRETS_FILE": str(secrets)})
    with pytest.raises(ConfigError, match=r"secrets:2: expected NAME=value"):
        settings.secret_values()


def test_secret_settings_stay_out_of_repr() -> None:
    settings = Settings.from_env({
        "FLOWBOT_WEBHOOK_SECRET": "hook-s3cret", "FLOWBOT_GITHUB_TOKEN": "ghp_t0ken",
        "FLOWBOT_SECRET_X": "value-x",
    })
    text = repr(settings)
    assert "hook-s3cret" not in text and "ghp_t0ken" not in text and "value-x" not in text


def test_the_cli_reports_a_bad_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from bot.cli import main

    monkeypatch.setenv("FLOWBOT_SECRETS_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("FLOWBOT_MAX_PARALLEL_TASKS", "many")
    monkeypatch.chdir(tmp_path)
    code = main(["schedules"])
    err = capsys.readouterr().err
    assert code == 2
    assert "FLOWBOT_MAX_PARALLEL_TASKS: expected a whole number, got 'many'" in err
    assert "Traceback" not in err


def test_task_limits_have_safe_defaults_and_plain_errors() -> None:
    limits = Settings.from_env({}).task_limits()
    assert (limits.memory, limits.max_memory, limits.cpus, limits.max_cpus) == ("1g", "4g", 1, 4)
    assert (limits.read_only_root, limits.pids, limits.log_max_size) == (True, 512, "100m")
    assert limits.task_user() != (0, 0)  # never root by default
    tuned = Settings.from_env({"FLOWBOT_TASK_MAX_CPUS": "1.5", "FLOWBOT_TASK_CPUS": "0.5",
                               "FLOWBOT_TASK_READ_ONLY_ROOT": "false",
                               "FLOWBOT_ENGINE_RECONNECT_SECONDS": "30"})
    assert (tuned.task_limits().max_cpus, tuned.task_limits().read_only_root) == (1.5, False)
    assert tuned.engine_reconnect_seconds == 30.0
    with pytest.raises(ConfigError, match="FLOWBOT_TASK_MEMORY: the default 8g is above the "
                                          "maximum 4g \\(FLOWBOT_TASK_MAX_MEMORY\\)"):
        Settings.from_env({"FLOWBOT_TASK_MEMORY": "8g"}).task_limits()
    with pytest.raises(ConfigError, match="FLOWBOT_TASK_MAX_MEMORY: expected a memory size"):
        Settings.from_env({"FLOWBOT_TASK_MAX_MEMORY": "lots"}).task_limits()
    with pytest.raises(ConfigError, match="FLOWBOT_TASK_CPUS: expected a number, got 'x'"):
        Settings.from_env({"FLOWBOT_TASK_CPUS": "x"})
    with pytest.raises(ConfigError, match="FLOWBOT_TASK_USER: expected a numeric uid:gid"):
        Settings.from_env({"FLOWBOT_TASK_USER": "nobody"}).task_limits()


def test_workspace_bounds_come_from_the_environment_and_must_be_positive() -> None:
    settings = Settings.from_env({"FLOWBOT_WORKSPACE_MAX_BYTES": "65536",
                                  "FLOWBOT_WORKSPACE_MAX_FILES": "20",
                                  "FLOWBOT_WORKSPACE_SECONDS": "2.5"})
    assert settings.workspace_limits() == ExportLimits(max_bytes=65536, max_files=20,
                                                       seconds=2.5)
    assert Settings().workspace_limits() == ExportLimits(1 << 30, 100_000, 300.0)
    with pytest.raises(ConfigError, match="FLOWBOT_WORKSPACE_MAX_FILES: must be more than 0"):
        Settings.from_env({"FLOWBOT_WORKSPACE_MAX_FILES": "0"}).workspace_limits()
