"""ACLs with the semantics of Kafka's StandardAuthorizer.

- ``model``: Kafka's enums (resource type, pattern type, operation, permission), the ACL
  binding and the binding filter with Kafka's matching rules, and creation validation.
- ``authorizer``: the indexed ACL set and the authorization decision.
- ``store``: the ACLs' durable copy in the data dir.
- ``check``: the small helpers each request handler calls.

The authorizer exists only when ``authorizer.class.name`` names Kafka's StandardAuthorizer
(``Broker.authorizer``); otherwise it is None and every request is allowed, as in Kafka.
"""
