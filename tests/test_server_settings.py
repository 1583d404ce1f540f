"""Service settings that change how the model decodes."""

import pytest
from pydantic import ValidationError

from server.app import load_and_warm_up
from server.settings import Settings


def test_vtln_warps_setting_overrides_the_models_own(monkeypatch):
    monkeypatch.delenv("ASR_VTLN_WARPS", raising=False)
    assert len(load_and_warm_up(Settings()).vtln_warps) > 1  # the shipped model decodes with several warps
    monkeypatch.setenv("ASR_VTLN_WARPS", "[1.0]")
    assert load_and_warm_up(Settings()).vtln_warps == (1.0,)


@pytest.mark.parametrize("value", ["[]", "[2.0]", "1.0,x"])
def test_bad_vtln_warps_are_refused(monkeypatch, value):
    monkeypatch.setenv("ASR_VTLN_WARPS", value)
    with pytest.raises(ValidationError, match="vtln_warps"):
        Settings()
