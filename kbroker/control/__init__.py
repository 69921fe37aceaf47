"""The control API (``kbroker.control.enabled``): JSON over HTTP under ``/v1/`` on the
broker's HTTP listener, to change a running broker from outside for tests.

- :mod:`kbroker.control.api`: the dispatcher; it serves the route tables of the modules in
  ``ROUTE_MODULES``;
- :mod:`kbroker.control.faults_routes`: ``/v1/faults``;
- :mod:`kbroker.control.cluster_routes`: ``/v1/nodes``, ``/v1/partitions``, ``/v1/state``;
- :mod:`kbroker.control.faults` and :mod:`kbroker.control.placement`: the fault-rule engine
  (present on every broker; the in-process test broker uses it directly).
"""
