"""Docker images and containers for the test suites, built locally ``FROM scratch`` (no registry).

Every image is busybox (the static Debian ``busybox-static`` binary at ``/bin/busybox``) with its
applets installed in ``/bin``, plus, for agent images, the simulated agent CLI of
``tests/agent_sim`` installed as ``/usr/bin/security-agent``, ``/usr/bin/system-probe`` and
``/usr/bin/agent`` (in a container the agent binaries are on ``PATH`` by name). The container's
main process is a ``sleep`` loop that exits promptly on SIGTERM, so ``docker stop`` is quick.

Images are tagged ``<prefix>-…`` with a hash of their whole build context: asking twice for the
same content reuses the image (cached per process, and across processes by tag). Containers made
with :func:`container` are always removed; :func:`cleanup` removes whatever a prefix left behind.

Public API (other suites import it; keep it stable)::

    busybox_image(tag_prefix="wpdk") -> str
    build_agent_image(version, *, outcome="ok", tag_prefix="wpdk", sim_env=None,
                      flare_extra_files=None) -> str
    build_image(name, files, *, tag_prefix="wpdk", env=None) -> str
    container(image, name, *, env=None, **create) -> ContextManager[str]   (yields the name)
    cleanup(prefix) -> None                 (every ``<prefix>-…`` container, any owner)
    remove_images(prefix) -> None           (the images this process built or reused)
    docker_client() -> docker.DockerClient
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shlex
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
LABEL = "wpprotect.test"
SIM_DIR = Path(__file__).resolve().parent / "agent_sim"
SIM_CONF = "/etc/wpprotect-sim/env"

# The image's main process: a sleep loop whose `wait` is interrupted by SIGTERM, so `docker stop`
# returns at once instead of waiting 10 s to SIGKILL a PID 1 that ignores TERM.
IDLE_CMD = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1 & wait $!; done"]

_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && /bin/busybox mkdir -p /tmp \
/usr/bin /usr/sbin /sbin /etc /root /var/log/datadog /opt/datadog-agent/run && chmod 1777 /tmp"]
COPY root/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
{env}CMD {cmd}
"""

_lock = threading.Lock()
_built: dict[str, str] = {}
_client: list[Any] = []

FileSpec = bytes | str | tuple[bytes | str, int]


def docker_client() -> Any:
    """The test session's docker client (``docker.from_env()``, created once)."""
    with _lock:
        if not _client:
            import docker

            _client.append(docker.from_env(timeout=120))
        return _client[0]


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _context(files: Mapping[str, FileSpec], env: Mapping[str, str] | None) -> bytes:
    """The build context as a tar: Dockerfile, busybox, and ``files`` under ``root/``."""
    env_lines = "".join(f"ENV {k}={shlex.quote(v)}\n" for k, v in sorted((env or {}).items()))
    dockerfile = _DOCKERFILE.format(env=env_lines, cmd=json.dumps(IDLE_CMD))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0  # the content hash must not depend on when the context was made
            tar.addfile(info, io.BytesIO(data))

        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)

        add("Dockerfile", dockerfile.encode(), 0o644)
        add("busybox", BUSYBOX.read_bytes(), 0o755)
        add_dir("root")
        dirs: set[str] = set()
        for path in sorted(files):
            spec = files[path]
            data, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
            rel = path.lstrip("/")
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "root/" + "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    add_dir(d)
            add("root/" + rel, _as_bytes(data), mode)
    return buf.getvalue()


def build_image(
    name: str,
    files: Mapping[str, FileSpec] | None = None,
    *,
    tag_prefix: str = "wpdk",
    env: Mapping[str, str] | None = None,
) -> str:
    """Build (or reuse) a busybox image with ``files`` added and return its tag.

    :param name: a short name for the tag, e.g. ``agent-7.50``.
    :param files: absolute path in the image -> content, or ``(content, mode)``.
    :param tag_prefix: the calling suite's prefix; the tag is ``<prefix>-<name>:<hash>``.
    :param env: ``ENV`` lines baked into the image.
    :returns: the image tag.
    """
    ctx = _context(files or {}, env)
    digest = hashlib.sha256(ctx).hexdigest()[:16]
    tag = f"{tag_prefix}-{name}:{digest}"
    with _lock:
        if tag in _built:
            return tag
    client = docker_client()
    import docker

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        client.images.build(
            fileobj=io.BytesIO(ctx),
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            labels={LABEL: tag_prefix},
        )
    with _lock:
        _built[tag] = tag
    return tag


def busybox_image(*, tag_prefix: str = "wpdk") -> str:
    """A plain busybox image (no agent) whose main process idles until stopped."""
    return build_image("busybox", {}, tag_prefix=tag_prefix)


def _sim_files(
    version: str,
    outcome: str,
    sim_env: Mapping[str, str],
    flare_extra_files: Mapping[str, str] | None,
) -> dict[str, FileSpec]:
    """The simulator's files: the multi-call script three times and its config file."""
    script = (SIM_DIR / "agent-sim.sh").read_bytes()
    conf = {"WPSIM_VERSION": version, "WPSIM_SELFTEST": outcome, **sim_env}
    conf_text = "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(conf.items()))
    files: dict[str, FileSpec] = {
        "/usr/bin/security-agent": (script, 0o755),
        "/usr/bin/system-probe": (script, 0o755),
        "/usr/bin/agent": (script, 0o755),
        SIM_CONF: conf_text,
    }
    files.update(_flare_templates(flare_extra_files))
    return files


def _flare_templates(flare_extra_files: Mapping[str, str] | None) -> dict[str, FileSpec]:
    """The flare template zips, when the simulator package can build them."""
    try:
        from tests import agent_sim
    except ImportError:  # pragma: no cover - the simulator package is not there yet
        return {}
    builder = getattr(agent_sim, "image_files", None)
    if builder is None:
        return {}
    out: dict[str, FileSpec] = {}
    templates = builder(Path(SIM_CONF).parent, flare_extra_files=flare_extra_files)
    for path, data in templates.items():
        out[str(path)] = data
    return out


def build_agent_image(
    version: str,
    *,
    outcome: str = "ok",
    tag_prefix: str = "wpdk",
    sim_env: Mapping[str, str] | None = None,
    flare_extra_files: Mapping[str, str] | None = None,
) -> str:
    """Build (or reuse) an image running the simulated agent CLI at ``version``.

    :param version: the agent version the simulator reports, e.g. ``7.50.3`` or ``7.78``
        (a two-part version gets ``.0``).
    :param outcome: the self-test outcome (``WPSIM_SELFTEST``: ``ok``, ``disabled``...).
    :param tag_prefix: the calling suite's prefix.
    :param sim_env: more ``WPSIM_*`` settings for the simulator's config file.
    :param flare_extra_files: more files (name in the flare -> text) in the flare templates.
    :returns: the image tag.
    """
    if version.count(".") == 1:
        version += ".0"
    safe = version.replace("+", "_")
    files = _sim_files(version, outcome, dict(sim_env or {}), flare_extra_files)
    return build_image(f"agent-{safe}-{outcome}", files, tag_prefix=tag_prefix)


@contextlib.contextmanager
def container(
    image: str,
    name: str,
    *,
    env: Mapping[str, str] | None = None,
    start: bool = True,
    **create: Any,
) -> Iterator[str]:
    """Run a container from ``image`` named ``name`` and always remove it (and anything the
    test renamed it to, ``<name>.*``) afterwards.

    :param create: more keyword arguments for ``client.containers.create`` (``cap_add``,
        ``volumes``, ``labels``...).
    :yields: the container's name.
    """
    client = docker_client()
    labels = {LABEL: name.split("-", 1)[0], **create.pop("labels", {})}
    try:
        c = client.containers.create(
            image, name=name, environment=dict(env or {}), labels=labels, **create
        )
        if start:
            c.start()
            _wait_running(c)
        yield name
    finally:
        _remove_named(client, name)


def _wait_running(c: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.reload()
        if c.status == "running":
            return
        time.sleep(0.05)
    raise RuntimeError(f"container {c.name} did not start: {c.status}")


def _remove_named(client: Any, name: str) -> None:
    """Remove the container ``name`` and every ``<name>.…`` left by a rename."""
    for c in client.containers.list(all=True, filters={"name": name}):
        if c.name == name or c.name.startswith(name + "."):
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)


def cleanup(prefix: str) -> None:
    """Remove every container named ``<prefix>-…`` (any state)."""
    client = docker_client()
    for c in client.containers.list(all=True, filters={"name": prefix + "-"}):
        if c.name.startswith(prefix + "-"):
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)


def remove_images(prefix: str) -> None:
    """Remove the images this process built under ``prefix`` (those still in use stay)."""
    client = docker_client()
    with _lock:
        tags = [t for t in _built if t.startswith(prefix + "-")]
    for tag in tags:
        with contextlib.suppress(Exception):
            client.images.remove(tag, noprune=False)
        with _lock:
            _built.pop(tag, None)
