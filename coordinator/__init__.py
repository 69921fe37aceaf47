"""coordinator: group and transaction coordinators (no I/O; clock and timers injected).

Entry point for the broker: ``coordinator.group_coordinator.GroupCoordinator`` (its module
docstring shows the runtime loop). Every handler returns a ``coordinator.result.Result``:
append ``records`` to ``__consumer_offsets``, then call ``replies``, then answer with
``response`` (None = parked JoinGroup/SyncGroup, answered through its ``reply``).

Modules: ``state`` (the state table), ``group`` (ClassicGroup, Member), ``rebalance``
(the rebalance barrier and timeouts; theory of operation), ``group_manager`` (Join/Sync/
Heartbeat/Leave handlers), ``offsets`` (commit/fetch/delete/retention), ``records``
(Kafka's ``__consumer_offsets`` formats, ``partition_for``), ``timer`` (Timer protocol,
``CallLaterTimer`` for asyncio, ``FakeTimer``), ``find_coordinator``, ``testing``.
"""
