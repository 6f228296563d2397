"""Properties of the edit functions: after an edit every reader sees the planned value, and a
second edit changes nothing, whatever mix of spellings and stale values the document held."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wpprotect.config import CLASSIFIER_PRIORITY, CWS_ENABLED, NETWORK_ENABLED, Setting
from wpprotect.config._settings import SETTINGS, effective_value
from wpprotect.config._surfaces import (
    edit_daemonset,
    edit_host_file,
    read_daemonset,
    read_host_file,
)

SP_SETTINGS = [s for s in SETTINGS if "system-probe.yaml" in s.files]
raw_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(["true", "no", "7", "x"])
)


def planned_value(setting: Setting) -> st.SearchStrategy[Any]:
    if setting.value_type is bool:
        return st.booleans()
    return st.integers(1, 65535)


@st.composite
def host_case(draw: st.DrawFn) -> tuple[dict[str, Any], dict[Setting, Any]]:
    doc: dict[str, Any] = {}
    for setting in SP_SETTINGS:
        for key in setting.yaml_keys:
            if draw(st.booleans()):
                node = doc
                *parents, leaf = key.split(".")
                for p in parents:
                    node = node.setdefault(p, {})
                node[leaf] = draw(raw_values)
    chosen = draw(st.lists(st.sampled_from(SP_SETTINGS), min_size=1, unique=True))
    return doc, {s: draw(planned_value(s)) for s in chosen}


@settings(max_examples=150, deadline=None)
@given(host_case())
def test_host_edit_then_read(case: tuple[dict[str, Any], dict[Setting, Any]]) -> None:
    doc, planned = case
    edit_host_file(doc, "system-probe.yaml", planned)
    seen = read_host_file(doc, "system-probe.yaml")
    for setting, value in planned.items():
        assert seen[setting] == value
        assert type(seen[setting]) is type(value)
        # the agent's full reading order (no env) agrees
        ev = effective_value(setting, files={"system-probe.yaml": doc})
        assert ev.value == value
    again = copy.deepcopy(doc)
    assert edit_host_file(again, "system-probe.yaml", planned) is False
    assert again == doc


env_names = st.sampled_from(
    [n for s in SETTINGS for n in s.env_vars] + ["DD_LOG_LEVEL", "HOST_ROOT"]
)
env_entry = st.one_of(
    st.fixed_dictionaries(
        {"name": env_names, "value": st.sampled_from(["true", "false", "9", ""])}
    ),
    st.fixed_dictionaries(
        {"name": env_names, "valueFrom": st.just({"configMapKeyRef": {"name": "c", "key": "k"}})}
    ),
)


@st.composite
def daemonset_case(draw: st.DrawFn) -> tuple[dict[str, Any], dict[Setting, Any]]:
    containers = []
    for name in ("agent", "system-probe", "security-agent"):
        c: dict[str, Any] = {"name": name}
        if draw(st.booleans()):
            c["env"] = draw(st.lists(env_entry, max_size=5))
        containers.append(c)
    ds = {"kind": "DaemonSet", "spec": {"template": {"spec": {"containers": containers}}}}
    chosen = draw(
        st.lists(
            st.sampled_from([CWS_ENABLED, NETWORK_ENABLED, CLASSIFIER_PRIORITY]),
            min_size=1,
            unique=True,
        )
    )
    return ds, {s: draw(planned_value(s)) for s in chosen}


@settings(max_examples=150, deadline=None)
@given(daemonset_case())
def test_daemonset_edit_then_read(case: tuple[dict[str, Any], dict[Setting, Any]]) -> None:
    ds, planned = case
    before = {
        c["name"]: [e["name"] for e in c.get("env", [])]
        for c in ds["spec"]["template"]["spec"]["containers"]
    }
    edit_daemonset(ds, planned)
    seen = read_daemonset(ds)
    for setting, value in planned.items():
        for component in setting.components:
            assert seen[component][setting] == value, (component, setting)
    for c in ds["spec"]["template"]["spec"]["containers"]:
        after = [e["name"] for e in c.get("env", [])]
        # nothing removed, nothing reordered; at most one entry added per setting
        assert after[: len(before[c["name"]])] == before[c["name"]]
        assert len(after) - len(before[c["name"]]) <= len(planned)
        for e in c.get("env", []):
            assert "value" not in e or isinstance(e["value"], str)
    again = copy.deepcopy(ds)
    assert edit_daemonset(again, planned) is False
    assert again == ds
