"""deploy/ as written: what cannot run here (systemd, a container runtime, a cluster) is
checked statically: the files parse, and every command, module, path, variable, port and
probe they name exists. (tests/test_gunicorn.py runs the services under gunicorn as
deploy/gunicorn.conf.py and the units say.)"""

from __future__ import annotations

import configparser
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from deploy.cli import main
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
SOURCE = "\n".join(p.read_text("utf-8") for package in ("node", "registry", "corridor")
                   for p in (REPO / package).rglob("*.py"))


def corridor_command_exists(args: list[str]) -> None:
    """``corridor SERVICE --dir DIR COMMAND ...`` names a real command (its --help works)."""
    service, command = args[0], args[3]
    assert args[1] == "--dir"
    result = CliRunner().invoke(main, [service, command, "--help"])
    assert result.exit_code == 0, result.output


def gunicorn_command_holds(args: list[str]) -> None:
    """``gunicorn -c CONF --bind ADDR MODULE:app``: the config is deploy's, the module imports."""
    config = Path(args[args.index("-c") + 1])
    assert config.name == "gunicorn.conf.py" and (DEPLOY / config.name).is_file()
    module = args[-1]
    assert re.fullmatch(r"(node|registry)\.wsgi:app", module), module
    assert importlib.util.find_spec(module.split(":")[0]) is not None


def environment_names(text: str) -> set[str]:
    return set(re.findall(r"\bCORRIDOR_[A-Z_]+\b", text))


def test_there_are_units_for_the_node_and_the_registry() -> None:
    assert [u.name for u in UNITS] == ["corridor-node.service", "corridor-registry.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_a_unit_names_only_what_exists(unit: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text("utf-8"))
    service = parser["Service"]
    pre = shlex.split(service["ExecStartPre"])
    start = shlex.split(service["ExecStart"])
    assert pre[0] == "/opt/corridor/venv/bin/corridor"
    assert start[0] == "/opt/corridor/venv/bin/gunicorn"
    corridor_command_exists(pre[1:])
    gunicorn_command_holds(start[1:])
    directory = service["ReadWritePaths"]
    assert f"--dir {directory}" in service["ExecStartPre"]
    assert {"NoNewPrivileges", "ProtectSystem", "PrivateTmp", "CapabilityBoundingSet",
            "SystemCallFilter", "UMask"} <= set(service)
    assert service["UMask"] == "0077" and service["ProtectSystem"] == "strict"
    for name in environment_names(unit.read_text("utf-8")):
        assert name in SOURCE, f"{unit.name} sets {name}, which nothing reads"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_accepts_the_unit(unit: Path, tmp_path: Path) -> None:
    # Point the unit at this checkout and this virtual environment, then let systemd verify it.
    text = unit.read_text("utf-8").replace("/opt/corridor/venv", sys.prefix)
    text = text.replace("/opt/corridor", str(REPO))
    (tmp_path / unit.name).write_text(text, "utf-8")
    checked = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit.name)],
                             capture_output=True, text=True, timeout=60)
    problems = [line for line in (checked.stdout + checked.stderr).splitlines()
                if unit.name in line]
    assert checked.returncode == 0 and not problems, checked.stdout + checked.stderr


def test_the_container_image_runs_the_entrypoint_that_migrates_then_serves() -> None:
    containerfile = (DEPLOY / "Containerfile").read_text("utf-8")
    for source in re.findall(r"^COPY (\S+) ", containerfile, re.M):
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    packages = set(re.findall(r"^COPY (\w+) \1$", containerfile, re.M))
    assert {"corridor", "crypto", "policies", "node", "registry", "audit", "deploy"} <= packages
    [entrypoint] = re.findall(r'^ENTRYPOINT \["([^"]+)"\]', containerfile, re.M)
    script = DEPLOY / Path(entrypoint).name
    assert entrypoint == f"/opt/corridor/deploy/{script.name}" and script.stat().st_mode & 0o111
    body = script.read_text("utf-8")
    migrate = re.search(r'^corridor "\$CORRIDOR_SERVICE" --dir (\S+) migrate$', body, re.M)
    serve = re.search(r'^exec gunicorn (.+)$', body, re.M)
    assert migrate and serve, body
    for service in ("node", "registry"):
        corridor_command_exists([service, "--dir", migrate.group(1), "migrate"])
        gunicorn_command_holds(shlex.split(serve.group(1).replace('"$CORRIDOR_SERVICE', service)
                                           .replace('.wsgi:app"', ".wsgi:app")))
    assert "--bind 0.0.0.0:8000" in serve.group(1)
    assert re.search(r"^USER corridor$", containerfile, re.M), "the image must not run as root"
    for name in environment_names(containerfile + body):
        assert name in SOURCE or name == "CORRIDOR_SERVICE", name


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    return loaded


def test_compose_starts_a_registry_and_two_nodes_on_postgresql_behind_tls() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "registry", "ru-lotl", "cn-ntlnp", "proxy"}
    databases = set(re.findall(r"CREATE DATABASE (\w+)",
                               (DEPLOY / "compose" / "initdb.sql").read_text()))
    for name, kind in (("registry", "registry"), ("ru-lotl", "node"), ("cn-ntlnp", "node")):
        service = services[name]
        env = service["environment"]
        assert env["CORRIDOR_SERVICE"] == kind
        url = env[f"CORRIDOR_{kind.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and url.rsplit("/", 1)[1] in databases
        assert service["build"]["dockerfile"] == "deploy/Containerfile"
        assert (DEPLOY / "compose" / service["build"]["context"] / "deploy/Containerfile").is_file()
        assert "/healthz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        [volume] = service["volumes"]
        assert volume.split(":")[0] in compose()["volumes"] and volume.endswith(":/srv/corridor")
    proxy = services["proxy"]
    assert proxy["ports"] == ["443:443"]
    for mount in proxy["volumes"] + services["postgres"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./") and source != "./certs":
            assert (DEPLOY / "compose" / source).is_file(), mount
    template = (DEPLOY / "compose" / "nginx.conf.template").read_text()
    env_example = (DEPLOY / "compose" / "corridor.env.example").read_text()
    for variable in set(re.findall(r"\$\{(\w+)\}", template)):
        assert f"\n{variable}=" in f"\n{env_example}", f"{variable} is not in corridor.env.example"
    for name in ("registry", "ru-lotl", "cn-ntlnp"):
        assert f"http://{name}:8000" in template
    assert "proxy_buffering off" in template and "client_header_timeout" in template
    assert "corridor.env" in (REPO / ".gitignore").read_text(), "the env file holds a password"


def manifests() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kubernetes_manifests_hold_what_a_cluster_needs() -> None:
    assert [p.name for p in MANIFESTS] == ["node.yaml", "registry.yaml"]
    for path in MANIFESTS:
        docs = list(yaml.safe_load_all(path.read_text()))
        kinds = sorted(d["kind"] for d in docs)
        assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"], kinds
        by_kind = {d["kind"]: d for d in docs}
        pod = by_kind["Deployment"]["spec"]["template"]["spec"]
        assert by_kind["Deployment"]["spec"]["selector"]["matchLabels"].items() <= \
            by_kind["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
        assert by_kind["Service"]["spec"]["selector"] == \
            by_kind["Deployment"]["spec"]["selector"]["matchLabels"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == \
            by_kind["PersistentVolumeClaim"]["metadata"]["name"]
        assert volumes["config"]["configMap"]["name"] == by_kind["ConfigMap"]["metadata"]["name"]
        assert "secret" in volumes["keys"], "keys come from a Secret"
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["initContainers"] + pod["containers"]:
            for mount in container["volumeMounts"]:
                assert mount["name"] in volumes, (path.name, mount)
        [main_container] = pod["containers"]
        env = {e["name"]: e for e in main_container["env"]}
        kind = env["CORRIDOR_SERVICE"]["value"]
        assert env[f"CORRIDOR_{kind.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        for name in env:
            assert name in SOURCE or name == "CORRIDOR_SERVICE", name
        assert main_container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert main_container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert main_container["ports"][0]["containerPort"] == 8000  # the entrypoint's bind
        config_files = set(by_kind["ConfigMap"]["data"])
        assert f"{kind}.toml" in config_files
        copied = " ".join(pod["initContainers"][0]["args"])
        assert all(f"/config/{f}" in copied for f in config_files)
        assert "chmod 600 /srv/corridor/keys/*" in copied
        toml = by_kind["ConfigMap"]["data"][f"{kind}.toml"]
        assert "proxies = 1" in toml


def test_the_probes_the_manifests_use_are_served(federation: Any) -> None:
    paths = {doc["spec"]["template"]["spec"]["containers"][0][probe]["httpGet"]["path"]
             for doc in manifests() if doc["kind"] == "Deployment"
             for probe in ("readinessProbe", "livenessProbe")}
    for service in ("registry", "cn-ntlnp"):
        for path in paths:
            status, _, _ = federation.servers[service].request("GET", path)
            assert status in (200, 503), (service, path)
