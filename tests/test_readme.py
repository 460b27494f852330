"""The README stays true: every setting and make target it promises exists, and back."""

import re
from pathlib import Path

from alerts.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def test_every_setting_is_documented():
    for name in Settings.model_fields:
        assert f"`ALERTS_{name.upper()}`" in README


def test_documented_settings_exist():
    documented = set(re.findall(r"`ALERTS_([A-Z_]+)`", README))
    test_only = {"SHARED_DATA", "TEST_POSTGRES_URL"}  # read by the test suite, not the service
    assert documented - test_only <= {name.upper() for name in Settings.model_fields}


def test_make_targets_in_the_readme_exist():
    for target in set(re.findall(r"make (\w+)", README)):
        assert re.search(rf"^{target}:", MAKEFILE, re.M), target


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_configuration_table_is_current():
    from alerts.cli import settings_markdown

    table = README.split("<!-- settings:start (alerts config --markdown) -->\n")[1]
    assert table.split("\n<!-- settings:end -->")[0] == settings_markdown()
