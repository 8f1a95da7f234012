"""The token Studio gives a person's tab: a project owner's may approve spending past a soft budget
(`usage.approve`, docs/billing.md); a member's may not."""

import pytest

from rooms.models import Membership
from rooms.tokens import verify_token
from tests.studio.test_agents_access import sign_in


@pytest.mark.parametrize(("role", "approve"), [(Membership.Role.OWNER, ["project"]), (Membership.Role.MEMBER, [])])
def test_only_an_owners_tab_may_approve_spending(client, project, role, approve):
    sign_in(client, project, "olga", role)
    claims = verify_token(client.get("/studio/acme/lobby/").context["token"])
    assert claims.grants.raw["usage"] == {"read": ["room"], "approve": approve}
    assert claims.grants.may("usage", "approve", "project") is bool(approve)
