"""What the ACL compat tests share: a broker with Kafka's StandardAuthorizer whose only ACL
lets the principal under test manage ACLs (ALTER on the cluster), and nothing else.

Setting that up is itself done with a real client: the broker first starts with the
principal as a super user, the test's admin client creates the cluster ACL with CreateAcls,
and the broker restarts without super users and with ``allow.everyone.if.no.acl.found=false``
(ACLs are durable, so the seed survives).  From then on every permission the test needs is
created and deleted by the clients over the wire.

``PRINCIPAL`` is who the clients are: User:ANONYMOUS on a PLAINTEXT listener; with SASL
listeners a test can pass a user's principal and the client settings that authenticate it.
"""

from __future__ import annotations

from collections.abc import Callable

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
PRINCIPAL = "User:ANONYMOUS"


def secured_broker(broker_factory, seed: Callable[[str], None], principal: str = PRINCIPAL):  # type: ignore[no-untyped-def]
    """A started broker as described above; ``seed(bootstrap)`` creates the cluster ALTER ACL
    for ``principal`` with the test's client."""
    b = broker_factory({"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": principal})
    seed(b.bootstrap)
    b.stop()
    del b.settings["super.users"]
    b.settings["allow.everyone.if.no.acl.found"] = "false"
    b.start()
    return b
