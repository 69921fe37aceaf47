"""Authorized-operations bit sets reported in Metadata and DescribeCluster.

Each set is every operation that applies to the resource type.  Without an authorizer
everything is allowed, so a client asking for authorized operations gets the whole set; with
one, ``kbroker.acl.check.authorized_operations`` keeps the allowed ones.  Codes are Kafka's
AclOperation codes.
"""

# Sent when the client did not ask (Kafka's INT32_MIN sentinel).
OPERATIONS_OMITTED = -2147483648

READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE = 3, 4, 5, 6, 7, 8
CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 9, 10, 11, 12
CREATE_TOKENS, DESCRIBE_TOKENS = 13, 14

TOPIC_OPERATIONS = sum(1 << op for op in (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS))
CLUSTER_OPERATIONS = sum(
    1 << op
    for op in (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, CREATE_TOKENS, DESCRIBE_TOKENS)
)
GROUP_OPERATIONS = sum(1 << op for op in (READ, DELETE, DESCRIBE))
