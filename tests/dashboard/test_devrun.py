"""What `make run` tells a developer about the dashboard."""

from __future__ import annotations

from devrun import dashboard_login
from store.settings import DEV_OPERATOR_PASSWORD_FILE, Settings
from tests.conftest import TEST_KEY


def test_development_gets_a_password_file_and_is_told_where_it_is(tmp_path):
    settings = Settings(env="development", data_dir=tmp_path, operator_username="ops")
    told = dashboard_login(settings, tmp_path)
    path = tmp_path / DEV_OPERATOR_PASSWORD_FILE
    assert told == f"user ops, password: cat {path}"
    # Created before the API starts, so the API and this message agree on one password.
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_text().strip()) >= 20
    assert settings.operator_password_value() == path.read_text().strip()


def test_an_explicit_password_or_none_is_reported_as_such(tmp_path):
    explicit = Settings(env="development", data_dir=tmp_path, operator_password="from-env")
    assert dashboard_login(explicit, tmp_path) == "user admin, password from HERALD_OPERATOR_PASSWORD"
    assert not (tmp_path / DEV_OPERATOR_PASSWORD_FILE).exists()
    unset = Settings(env="test", data_dir=tmp_path, encryption_keys=TEST_KEY)
    assert dashboard_login(unset, tmp_path) == "disabled until HERALD_OPERATOR_PASSWORD is set"
