"""MetricMeans: each key is averaged over the steps that reported it."""

from lwd.utils.metric_means import MetricMeans


def test_keys_reported_on_some_steps_average_over_their_own_count():
    m = MetricMeans()
    m.add({"critic/td": 1.0, "policy/drift": 0.8})
    m.add({"critic/td": 3.0})
    m.add({"critic/td": 5.0})
    assert m.steps == 3
    assert m.means() == {"critic/td": 3.0, "policy/drift": 0.8}
    m.reset()
    assert m.steps == 0 and m.means() == {}
    m.add({"x": 2})
    assert m.means() == {"x": 2.0}
