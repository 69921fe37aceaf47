"""Kafka's quota arithmetic and precedence (kbroker.quotas), on an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbroker.quotas.manager import ClientQuotas
from kbroker.quotas.model import CLIENT_ID, USER
from kbroker.quotas.rate import SampledRate


def test_a_new_rate_is_measured_over_the_windows_it_has_not_lived() -> None:
    rate = SampledRate(samples=11, window_ms=1000)
    rate.record(5000, now_ms=100_000)
    # 10 full windows are assumed: 5000 bytes over 10 s
    assert rate.measure(100_000) == 500.0
    assert rate.window_size_ms(100_500) == 10_500
    # a 1000 B/s quota: a further 6000 bytes make 11,000 over 10 s, throttled (1100-1000)/1000 * 10 s
    assert rate.record_and_throttle_ms(6000, 1000.0, 100_000) == 1000


def test_old_samples_leave_the_window_and_idle_ones_are_reset() -> None:
    rate = SampledRate(samples=3, window_ms=1000)
    for second in range(5):
        rate.record(100, now_ms=second * 1000)
    # samples + 1 kept, but the one last written samples x window ago (at 1000) is reset:
    # the samples of 2000, 3000 and 4000 remain, measured from 2000
    assert rate.window_size_ms(4000) == 2000
    assert rate.measure(4000) == pytest.approx(300 / 2)
    # nothing for samples x window: every sample is reset, the rate is as new
    assert rate.measure(4000 + 3000) == 0.0
    assert rate.window_size_ms(7000) == 2000


def test_throttle_time_is_the_excess_over_the_quota_times_the_window() -> None:
    rate = SampledRate(samples=2, window_ms=1000)
    assert rate.record_and_throttle_ms(1000, 1000.0, now_ms=0) == 0  # at the quota: not throttled
    # 3000 B over the 1 s minimum window, 3x a 1000 B/s quota: (3000 - 1000) / 1000 x 1 s
    assert rate.record_and_throttle_ms(2000, 1000.0, now_ms=0) == 2000
    # later in the same window the window is longer, the excess smaller: 3500 B over 1.5 s
    assert rate.record_and_throttle_ms(500, 1000.0, now_ms=1500) == round(
        (3500 / 1.5 - 1000) / 1000 * 1500
    )


def test_a_burst_of_the_whole_allowance_is_paid_back_until_it_leaves_the_window() -> None:
    """Kafka's figures, by hand: 1000 B/s, 11 windows of 1 s.  A new client's rate is taken
    over at least 10 s, so 10,000 B at once is within quota; while fewer than 10 full windows
    have passed the window stays padded to 10 s, so each later request is throttled for the
    whole excess, (total - 10,000) / 1000 s, which grows with every request; only when the
    burst's sample has had no event for 11 s does it leave the rate."""
    rate = SampledRate(samples=11, window_ms=1000)
    quota = 1000.0
    assert rate.record_and_throttle_ms(10_000, quota, now_ms=0) == 0  # 10,000 B over 10 s
    throttles = []
    now_ms = 1000
    while now_ms < 11_000:
        throttle_ms = rate.record_and_throttle_ms(1000, quota, now_ms)
        throttles.append((now_ms, throttle_ms))
        now_ms += throttle_ms  # the client waits out each throttle, then sends again
    # 11,000 B over 1 + 9 s; 12,000 over 2 + 8 s; 13,000 over 4 + 6 s; 14,000 over 7 + 3 s
    assert throttles == [(1000, 1000), (2000, 2000), (4000, 3000), (7000, 4000)]
    # at 11 s the burst's sample (last written at 0) is reset: 5000 B from 1 s on, 500 B/s
    assert rate.record_and_throttle_ms(1000, quota, now_ms=11_000) == 0
    assert rate.measure(11_000) == 500.0
    # so from 3 s to 10 s this client got 2000 B, 0.29 x its quota: the payback, not a bug
    assert sum(1000 for at, _ in throttles if 3000 <= at < 10_000) / 7 == pytest.approx(
        0.29 * quota, rel=0.02
    )


def test_with_three_windows_a_client_that_waits_out_its_throttles_gets_its_quota() -> None:
    """1000 B/s over 3 windows of 1 s; a client offering 10x that in 100 B requests, each
    sent as soon as the last throttle has passed: its burst (in the first second the window
    is the time elapsed plus 2 s, so 3000 B at most) is paid back by 3 s, and from 3 s to 10 s it gets its quota within 10%."""
    rate = SampledRate(samples=3, window_ms=1000)
    quota = 1000.0
    sent_at = []
    now_ms = 0
    while now_ms < 10_000:
        sent_at.append(now_ms)
        # 10 ms between requests when not throttled (10,000 B/s offered)
        now_ms += max(rate.record_and_throttle_ms(100, quota, now_ms), 10)
    assert sum(100 for at in sent_at if at < 1000) <= 3000  # the burst allowance
    measured = sum(100 for at in sent_at if 3000 <= at < 10_000) / 7
    assert 0.9 * quota <= measured <= 1.1 * quota, measured


def quotas_with(
    tmp_path: Path, *entries: tuple[tuple[tuple[str, str | None], ...], dict[str, float]]
) -> ClientQuotas:
    quotas = ClientQuotas(tmp_path, samples=11, window_s=1)
    quotas.alter((entity, dict(values)) for entity, values in entries)
    return quotas


LEVELS = [
    ((CLIENT_ID, "c"), (USER, "u")),
    ((CLIENT_ID, None), (USER, "u")),
    ((USER, "u"),),
    ((CLIENT_ID, "c"), (USER, None)),
    ((CLIENT_ID, None), (USER, None)),
    ((USER, None),),
    ((CLIENT_ID, "c"),),
    ((CLIENT_ID, None),),
]
# The sensor each level measures by: (user tag, client-id tag), as Kafka's metric tags.
TAGS = [("u", "c"), ("u", "c"), ("u", ""), ("u", "c"), ("u", "c"), ("u", ""), ("", "c"), ("", "c")]


@pytest.mark.parametrize("level", range(len(LEVELS)))
def test_the_most_specific_level_wins(tmp_path: Path, level: int) -> None:
    """With every level from ``level`` down configured, ``level`` applies."""
    quotas = quotas_with(
        tmp_path,
        *((LEVELS[i], {"producer_byte_rate": 1000.0 + i}) for i in range(level, len(LEVELS))),
    )
    resolved = quotas.resolve("producer_byte_rate", "u", "c")
    assert resolved == (("producer_byte_rate", *TAGS[level]), 1000.0 + level)
    # the other keys are resolved on their own: none is set
    assert quotas.resolve("consumer_byte_rate", "u", "c") is None


def test_a_user_quota_is_shared_by_the_users_clients_and_a_default_is_per_user(
    tmp_path: Path,
) -> None:
    quotas = quotas_with(tmp_path, (((USER, None),), {"producer_byte_rate": 1000.0}))
    assert quotas.record("producer_byte_rate", "u", "a", 8000, 0) == 0
    # client b of the same user: the same sensor (8000 + 4000 over 10 s > 1000 B/s)
    assert quotas.record("producer_byte_rate", "u", "b", 4000, 0) == 2000
    # another user: its own sensor
    assert quotas.record("producer_byte_rate", "v", "a", 8000, 0) == 0


def test_a_request_time_throttle_is_bounded_by_one_window(tmp_path: Path) -> None:
    quotas = quotas_with(tmp_path, (((CLIENT_ID, "c"),), {"request_percentage": 1.0}))
    # 5 s of handler time is 500 percent-seconds: far beyond 1% over 10 s
    throttle_ms = quotas.throttle_request(12, None, None, "User:ANONYMOUS", "c", 100, 5.0, now_ms=0)
    assert throttle_ms == 1000
    assert quotas.throttles == {("Request", "", "c"): [1, 1000]}


def test_changes_are_durable_and_removing_the_last_key_removes_the_entity(tmp_path: Path) -> None:
    quotas = quotas_with(
        tmp_path, (((USER, "u"),), {"producer_byte_rate": 5.0, "consumer_byte_rate": 6.0})
    )
    assert ClientQuotas(tmp_path, 11, 1).entities == {
        ((USER, "u"),): {"producer_byte_rate": 5.0, "consumer_byte_rate": 6.0}
    }
    quotas.alter([(((USER, "u"),), {"producer_byte_rate": None, "consumer_byte_rate": None})])
    assert not quotas.active and ClientQuotas(tmp_path, 11, 1).entities == {}


def test_a_throttle_time_fits_the_int32_field(tmp_path: Path) -> None:
    quotas = quotas_with(tmp_path, (((CLIENT_ID, "c"),), {"producer_byte_rate": 1.0}))
    # 1 GB against 1 B/s: about 10^13 ms by the formula
    assert quotas.record("producer_byte_rate", "u", "c", 1e9, 0) == 2**31 - 1
