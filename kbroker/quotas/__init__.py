"""Client quotas (Kafka's user / client-id / (user, client-id) quotas): the entity model and
Kafka's checks (``model``), the durable copy (``store``), the windowed rate (``rate``) and
the manager that resolves and enforces them (``manager``)."""
