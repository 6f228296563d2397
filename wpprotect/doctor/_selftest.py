"""The runtime self-test of every agent found (only when asked: it creates temporary files and
rules in the agent)."""

from __future__ import annotations

from wpprotect._jsonable import jsonable
from wpprotect.agent import SelfTestResult
from wpprotect.doctor._context import Context
from wpprotect.doctor._report import Check
from wpprotect.errors import WPProtectError
from wpprotect.platforms import BasePlatform

__all__ = ["check_self_test"]

# The self-test has its own deadline; the thread gets a little longer to report it.
_GRACE = 5.0


def check_self_test(ctx: Context) -> list[Check]:
    """``self-test:<target>``: run the runtime self-test on each agent found."""
    if not ctx.options.self_test:
        return [
            Check(
                "self-test",
                "skipped",
                "not run: pass --self-test (it creates temporary files and rules in the agent)",
            )
        ]
    if not ctx.agents:
        return [Check("self-test", "skipped", "no running agent found to test")]
    return [_self_test(ctx, agent) for agent in ctx.agents]


def _self_test(ctx: Context, agent: BasePlatform) -> Check:
    name = f"self-test:{agent.target}"
    seconds = ctx.options.self_test_timeout

    def run() -> SelfTestResult:
        return agent.self_test(timeout=seconds)

    try:
        result = ctx.within(run, name, seconds + _GRACE)
    except WPProtectError as exc:  # ExecTimeoutError included
        return Check(name, "error", str(exc))
    except Exception as exc:  # one agent's failure must not hide the others
        return Check(name, "error", f"{type(exc).__name__}: {exc}")
    data = {"result": jsonable(result)}
    if result.ok and result.confirmed == "confirmed":
        return Check(name, "ok", "Runtime self test: OK (confirmed by the status)", data=data)
    if result.ok:
        return Check(
            name,
            "ok",
            f"Runtime self test: OK, unconfirmed ({result.confirmed_reason}): only the "
            "agent's word, the status could not show the tests' results",
            data=data,
        )
    return Check(
        name,
        "problem",
        f"self-test failed ({result.confirmed}): {result.error or 'the self-test failed'}",
        fix=f"check the 'Runtime Security' section of `security-agent status` on "
        f"{agent.target}; collect a flare for support: `wpprotect flare --platform "
        f"{agent.kind}`",
        data=data,
    )
