import numpy as np
import pytest

from edgebench.bench import stats
from edgebench.bench.stoprule import StopRule, measure, warm_up


def test_summary_matches_numpy():
    rng = np.random.RandomState(0)
    v = list(rng.lognormal(1.0, 0.3, size=257))
    s = stats.summarize(v)
    assert s["n"] == 257
    assert s["mean"] == pytest.approx(np.mean(v))
    assert s["std"] == pytest.approx(np.std(v, ddof=1))
    for q in (50, 90, 95, 99):
        key = "median" if q == 50 else f"p{q}"
        assert s[key] == pytest.approx(np.percentile(v, q))
    assert s["min"] == min(v) and s["max"] == max(v)
    assert s["raw"] == v


def test_cv_warning_only_above_ten_percent():
    assert stats.summarize([10.0, 10.1, 9.9, 10.0])["warning"] is None
    noisy = stats.summarize([10.0, 14.0, 7.0, 12.0])
    assert noisy["cv"] > 0.10 and "CV" in noisy["warning"]


def test_summary_rejects_empty():
    with pytest.raises(ValueError):
        stats.summarize([])


def test_images_per_second():
    assert stats.images_per_second(64, [100.0, 100.0]) == pytest.approx(640.0)


class FakeClock:
    def __init__(self, step):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def test_stop_rule_needs_iterations_and_seconds():
    # each call advances the clock 2 x 0.05 s: 10 iterations take ~1 s, so min_seconds=3 decides
    lat = measure(lambda: None, StopRule(min_iterations=10, min_seconds=3.0), clock=FakeClock(0.05))
    assert len(lat) >= 30 and all(v == pytest.approx(50.0) for v in lat)
    # fast clock: min_iterations decides
    lat = measure(lambda: None, StopRule(min_iterations=25, min_seconds=0.001), clock=FakeClock(0.01))
    assert len(lat) == 25


def test_stop_rule_caps_and_reports_cut_short():
    rule = StopRule(min_iterations=1000, min_seconds=1.0, max_seconds=2.0)
    lat = measure(lambda: None, rule, clock=FakeClock(0.1))
    assert len(lat) < 1000
    assert "stopped by a cap" in rule.cut_short(len(lat), sum(lat) / 1000)
    assert StopRule(min_iterations=5, min_seconds=0).cut_short(5, 1.0) is None


def test_warm_up_by_runs_and_time():
    calls = []
    n = warm_up(lambda: calls.append(1), StopRule(warmup_iterations=3, warmup_seconds=1.0), clock=FakeClock(0.1))
    assert n == len(calls) and n >= 5  # time decided (1 s at 0.2 s a run)
    n = warm_up(lambda: None, StopRule(warmup_iterations=7, warmup_seconds=0.0), clock=FakeClock(0.1))
    assert n == 7


@pytest.mark.parametrize("kwargs", [dict(min_iterations=0), dict(min_seconds=-1),
                                    dict(min_iterations=5, max_iterations=2)])
def test_stop_rule_validation(kwargs):
    with pytest.raises(ValueError):
        StopRule(**kwargs).validate()
