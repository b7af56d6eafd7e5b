"""Command-line helpers shared by the entry points."""

import pytest

from moe_dopamine import cli


@pytest.mark.parametrize('text, seconds', [
    ('150m', 9000.0), ('2.5h', 9000.0), ('2h30m', 9000.0), ('90s', 90.0), ('45', 2700.0),
    ('1h0m30s', 3630.0),
])
def test_durations_read_hours_minutes_and_seconds(text, seconds):
  assert cli.parse_duration(text, '--time_limit') == seconds


@pytest.mark.parametrize('text, message', [
    ('soon', "--time_limit='soon' is not a duration"),
    ('2d', "is not a duration"),
    ('', "is not a duration"),
    ('0m', 'must be positive'),
])
def test_a_bad_duration_names_the_flag_and_the_fix(text, message):
  with pytest.raises(ValueError, match=message):
    cli.parse_duration(text, '--time_limit')
