"""The OAuth `state` of the hosted connect flow, attacked on the real callback (real sandbox consent, real
ConnectSessionWorkflow).

Already covered in tests/connect/test_connect_flow.py, not repeated here:
- `test_tampered_foreign_and_missing_state_are_refused`: a signature replaced wholesale, a nonce with a char
  appended, a state used on another platform's callback, a missing or garbage state;
- `test_oauth_connect_completes_and_redirects_with_safe_fields`: the very same callback URL replayed;
- `test_expiry_marks_session_expired_and_refuses_late_callbacks`: a callback after the session's workflow
  marked it expired.

Added here: one changed character in each part of the state (and the genuine state still working after all
of them), a replay carrying a fresh code of the attacker's own, a replay after the state was spent on a denied
consent, a state replaced by a newer attempt, states spliced from another session of another workspace, another
workspace's state carrying this session's code, a session past its expiry whose timer has not fired yet, and a
cancelled session. Each is a clear refusal page (4xx, HTML, saying what happened) that changes nothing: no
account anywhere, the session as it was.
"""

from __future__ import annotations

import string
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import text, update

from store.models import ConnectSession, utcnow
from tests.conftest import ready_stack
from tests.security.support import consent_redirect, oauth_authorize_url

URLSAFE = string.ascii_letters + string.digits + "-_"


@pytest.fixture(scope="module")
async def ostack(module_database, temporal_env):
    async with ready_stack(module_database, temporal_env) as stack:
        stack.other = await stack.new_tenant("Other")  # type: ignore[attr-defined]
        yield stack


async def new_session(stack, key: str, user: str = "victim", platform: str = "twitter") -> dict:
    async with stack.client(key) as c:
        r = await c.post("/v1/connect/sessions", json={"platform": platform, "external_user_id": user,
                                                       "allow_quickstart_creds": True,
                                                       "return_url": "https://app.example.test/done"})
        assert r.status_code == 201, r.text
        return r.json()["data"]


async def row(stack, session_id: str) -> ConnectSession:
    async with stack.db.session() as s:
        return await s.get(ConnectSession, session_id)


async def account_count(stack) -> int:
    async with stack.db.session() as s:
        return (await s.execute(text("SELECT count(*) FROM social_accounts"))).scalar_one()


def parts(callback_url: str) -> tuple[str, str, str]:
    """(callback base, code, state) of the URL the platform sends the browser back to."""
    q = parse_qs(urlsplit(callback_url).query)
    return callback_url.split("?")[0], q["code"][0], q["state"][0]


def callback(base: str, code: str, state: str) -> str:
    return f"{base}?{urlencode({'code': code, 'state': state})}"


def one_char_changed(value: str, index: int) -> str:
    alphabet = string.hexdigits.lower()[:16] if value.startswith("cs_") and index > 2 else URLSAFE
    replacement = next(ch for ch in alphabet if ch != value[index])
    return value[:index] + replacement + value[index + 1:]


def assert_refusal(r: httpx.Response, status: int, *phrases: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("text/html") and r.headers.get("cache-control") == "no-store"
    assert "location" not in r.headers
    for phrase in phrases:
        assert phrase in r.text, (phrase, r.text)


async def test_one_changed_character_in_any_part_of_the_state_is_refused_and_spends_nothing(ostack):
    """The state is `<session id>.<nonce>.<signature>`: changing any one character of any part (first,
    middle or last) is a 400 "not valid" page; the session stays pending with its state unspent, and the
    genuine callback then still completes the connection."""
    session = await new_session(ostack, ostack.tenant.test_key)
    async with httpx.AsyncClient(timeout=30) as http:
        base, code, state = parts(await consent_redirect(http, await oauth_authorize_url(http, session["url"]),
                                                         username="tamper_target"))
        segments = state.split(".")
        assert len(segments) == 3
        tried = 0
        for i, segment in enumerate(segments):
            for index in sorted({0 if i else 3, len(segment) // 2, len(segment) - 1}):
                forged = ".".join(one_char_changed(s, index) if j == i else s for j, s in enumerate(segments))
                assert forged != state
                r = await http.get(callback(base, code, forged))
                assert_refusal(r, 400, "Sign-in link not valid")
                assert code not in r.text and session["id"] not in r.text
                tried += 1
        assert tried == 9
        current = await row(ostack, session["id"])
        assert (current.status, current.state_used, current.completed_social_account_id) == ("pending", False, None)
        assert await account_count(ostack) == 0

        done = await http.get(callback(base, code, state))
        assert done.status_code == 303 and "status=completed" in done.headers["location"], done.text
    assert (await row(ostack, session["id"])).status == "completed"


async def test_a_replayed_state_is_refused_even_with_a_fresh_code_of_the_attackers(ostack):
    """Once a state has been used (the connection completed), presenting it again with a code the attacker got
    for their own platform account is refused with 400; the session keeps its account and no account of the
    attacker's is connected."""
    session = await new_session(ostack, ostack.tenant.test_key, user="replayed")
    async with httpx.AsyncClient(timeout=30) as http:
        authorize = await oauth_authorize_url(http, session["url"])
        base, code, state = parts(await consent_redirect(http, authorize, username="replay_victim"))
        assert (await http.get(callback(base, code, state))).status_code == 303
        before = await row(ostack, session["id"])
        accounts = await account_count(ostack)

        _, attacker_code, _ = parts(await consent_redirect(http, authorize, username="mallory"))
        r = await http.get(callback(base, attacker_code, state))
        assert_refusal(r, 400, "already used")
    after = await row(ostack, session["id"])
    assert (after.status, after.completed_social_account_id) == ("completed", before.completed_social_account_id)
    assert await account_count(ostack) == accounts
    async with ostack.db.session() as s:
        names = [r[0] for r in (await s.execute(text("SELECT account_name FROM social_accounts"))).all()]
    assert "mallory" not in names


async def test_a_state_spent_on_a_denied_consent_cannot_be_reused(ostack):
    """A denied consent spends the state (the session stays pending for a new attempt); the same state with a
    valid code afterwards is refused with 400 and connects nothing. A new attempt from the hosted page works."""
    session = await new_session(ostack, ostack.tenant.test_key, user="denied")
    async with httpx.AsyncClient(timeout=30) as http:
        authorize = await oauth_authorize_url(http, session["url"])
        denied = await consent_redirect(http, authorize, username="denier", decision="deny")
        assert (await http.get(denied)).status_code == 200
        base, code, state = parts(await consent_redirect(http, authorize, username="denier"))
        accounts = await account_count(ostack)
        r = await http.get(callback(base, code, state))
        assert_refusal(r, 400, "already used")
        current = await row(ostack, session["id"])
        assert (current.status, current.completed_social_account_id) == ("pending", None)
        assert await account_count(ostack) == accounts

        base, code, state = parts(await consent_redirect(http, await oauth_authorize_url(http, session["url"]),
                                                         username="denier"))
        assert (await http.get(callback(base, code, state))).status_code == 303
    assert (await row(ostack, session["id"])).status == "completed"


async def test_a_state_replaced_by_a_newer_attempt_is_refused(ostack):
    """Pressing Continue twice on the hosted page issues a new state; the first one (with its own valid code)
    is refused with 400 and the second completes."""
    session = await new_session(ostack, ostack.tenant.test_key, user="twice")
    async with httpx.AsyncClient(timeout=30) as http:
        first = await oauth_authorize_url(http, session["url"])
        second = await oauth_authorize_url(http, session["url"])
        base, code1, state1 = parts(await consent_redirect(http, first, username="twice_user"))
        _, code2, state2 = parts(await consent_redirect(http, second, username="twice_user"))
        assert state1 != state2
        accounts = await account_count(ostack)
        assert_refusal(await http.get(callback(base, code1, state1)), 400, "replaced by a newer attempt")
        assert (await row(ostack, session["id"])).status == "pending"
        assert await account_count(ostack) == accounts
        assert (await http.get(callback(base, code2, state2))).status_code == 303


async def test_states_spliced_across_sessions_and_workspaces_are_refused(ostack):
    """Parts of the state of a session in another workspace combined with this session's (its id with our
    nonce and signature, our id with its nonce and signature, ...) are refused with 400; another workspace's
    genuine state carrying the code this session's user got is refused by the platform (PKCE binds the code
    to the attempt that asked for it) and connects nothing in either workspace. Both sessions stay pending
    and can still complete on their own."""
    mine = await new_session(ostack, ostack.tenant.test_key, user="splice-mine")
    theirs = await new_session(ostack, ostack.other.test_key, user="splice-theirs")
    async with httpx.AsyncClient(timeout=30) as http:
        my_authorize = await oauth_authorize_url(http, mine["url"])
        their_authorize = await oauth_authorize_url(http, theirs["url"])
        base, my_code, my_state = parts(await consent_redirect(http, my_authorize, username="splice_me"))
        _, their_code, their_state = parts(await consent_redirect(http, their_authorize, username="splice_them"))
        m, t = my_state.split("."), their_state.split(".")
        accounts = await account_count(ostack)
        for forged in (f"{t[0]}.{m[1]}.{m[2]}", f"{m[0]}.{t[1]}.{t[2]}", f"{m[0]}.{m[1]}.{t[2]}",
                       f"{t[0]}.{t[1]}.{m[2]}", f"{m[0]}.{t[1]}.{m[2]}"):
            for code in (my_code, their_code):
                assert_refusal(await http.get(callback(base, code, forged)), 400, "Sign-in link not valid")
        for sid in (mine["id"], theirs["id"]):
            current = await row(ostack, sid)
            assert (current.status, current.state_used) == ("pending", False), sid
        assert await account_count(ostack) == accounts

        # Their genuine state, carrying the code my user got: the exchange fails, nothing is connected.
        r = await http.get(callback(base, my_code, their_state))
        assert_refusal(r, 400, "Not connected")
        assert my_code not in r.text
        for sid in (mine["id"], theirs["id"]):
            assert (await row(ostack, sid)).completed_social_account_id is None
        assert (await row(ostack, theirs["id"])).status == "pending"
        assert await account_count(ostack) == accounts

        # My state is untouched: with a fresh code of my own it completes, in my workspace.
        _, fresh, _ = parts(await consent_redirect(http, my_authorize, username="splice_me"))
        assert (await http.get(callback(base, fresh, my_state))).status_code == 303
    done = await row(ostack, mine["id"])
    assert done.status == "completed" and done.workspace_id == ostack.tenant.workspace_id


async def test_a_session_past_its_expiry_or_cancelled_refuses_its_state(ostack):
    """A session whose expiry has passed (before its workflow's timer marked it) and a cancelled session
    each refuse their genuine state and code with 410 "Nothing was changed": no account, not completed."""
    late = await new_session(ostack, ostack.tenant.test_key, user="late")
    cancelled = await new_session(ostack, ostack.tenant.test_key, user="cancelled")
    async with httpx.AsyncClient(timeout=30) as http:
        base, late_code, late_state = parts(await consent_redirect(
            http, await oauth_authorize_url(http, late["url"]), username="late_user"))
        _, c_code, c_state = parts(await consent_redirect(
            http, await oauth_authorize_url(http, cancelled["url"]), username="cancelled_user"))
        async with ostack.db.session() as s:
            await s.execute(update(ConnectSession).where(ConnectSession.id == late["id"])
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
            await s.commit()
        async with ostack.client(ostack.tenant.test_key) as c:
            assert (await c.post(f"/v1/connect/sessions/{cancelled['id']}/cancel")).status_code == 200
        accounts = await account_count(ostack)
        assert_refusal(await http.get(callback(base, late_code, late_state)), 410, "expired", "Nothing was changed")
        assert_refusal(await http.get(callback(base, c_code, c_state)), 410, "cancelled", "Nothing was changed")
    assert await account_count(ostack) == accounts
    assert (await row(ostack, late["id"])).completed_social_account_id is None
    assert (await row(ostack, cancelled["id"])).status == "cancelled"
