"""The Kubernetes profile (profiles/kubernetes) against the real executor and storage
plugins, without a cluster or a bucket.

Snakemake runs in a subprocess (this file, run as a script): S3 is moto's in-memory fake, the
kube config names a server nobody listens on, the Kubernetes API objects are replaced by ones
that keep what would be sent, and any network connection raises. So the dry run and the job the
executor builds are the real plugins' work, and nothing is contacted.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILE_DIR = ROOT / "profiles" / "kubernetes"
PROFILE = yaml.safe_load((PROFILE_DIR / "config.yaml").read_text())
IMAGE = "registry.example.org/msdnet:test"
BUCKET, PREFIX = "bucket", "bucket/msdnet"

# The resources snakemake-executor-plugin-kubernetes reads from a job (checked against its source
# below): threads arrive as _cores.
PLUGIN_RESOURCES = {"mem_mb", "disk_mb", "gpu", "gpu_manufacturer", "scale", "machine_type"}


# ---- the sandbox (this file as a script) ---------------------------------------------------------

def _no_network(*args, **kwargs):
    raise AssertionError(f"network connection attempted: {args}")


def _sandbox_main(argv: list[str]) -> int:
    """`python test_kubernetes_profile.py OUT.json [--put KEY] -- SNAKEMAKE ARGS`."""
    import socket

    socket.socket.connect = socket.socket.connect_ex = _no_network
    socket.create_connection = _no_network
    out, rest = Path(argv[0]), argv[1:]
    sep = rest.index("--")
    puts, args = rest[1:sep:2], rest[sep + 1:]               # --put KEY ... -- ARGS

    import kubernetes.client
    from moto import mock_aws
    from snakemake.cli import main

    sent: dict = {"jobs": [], "secrets": []}

    class Batch:                                   # what the executor would send, kept
        def create_namespaced_job(self, namespace, body):
            sent["jobs"].append({"namespace": namespace, "job": body.to_dict()})
            out.write_text(json.dumps(sent, default=str))
            os._exit(0)                            # one job is all a test looks at

        def delete_namespaced_job(self, *args, **kwargs):
            pass

    class Core:
        def create_namespaced_secret(self, namespace, body):
            sent["secrets"].append(sorted(body.data))

        def delete_namespaced_secret(self, *args, **kwargs):
            pass

        def list_namespaced_pod(self, *args, **kwargs):
            return kubernetes.client.V1PodList(items=[])

    kubernetes.client.BatchV1Api, kubernetes.client.CoreV1Api = Batch, Core
    code = 0
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        for key in puts:
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
    out.write_text(json.dumps(sent, default=str))
    return int(code or 0)


def _snakemake(tmp_path: Path, args: list[str], puts: list[str] = ()) -> tuple[subprocess.CompletedProcess, dict]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
        "users": [{"name": "nobody", "user": {"token": "none"}}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNAKEMAKE_STORAGE_S3_"))}
    env.update(KUBECONFIG=str(kubeconfig), MSDNET_IMAGE=IMAGE, MSDNET_S3_PREFIX=PREFIX,
               SNAKEMAKE_STORAGE_S3_ACCESS_KEY="testing", SNAKEMAKE_STORAGE_S3_SECRET_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    out = tmp_path / "sent.json"
    put_args = [a for key in puts for a in ("--put", key)]
    cmd = [sys.executable, __file__, str(out), *put_args, "--",
           "--workflow-profile", str(PROFILE_DIR.relative_to(ROOT)), "--nolock", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    return proc, json.loads(out.read_text()) if out.exists() else {}


def _preset(path: str):
    from msdnet.planning.workflow import Preset, validate_preset

    return Preset(validate_preset(yaml.safe_load((ROOT / path).read_text()), path), path)


# ---- 1. dry run -----------------------------------------------------------------------------------

def test_dry_run_plans_every_job_in_the_bucket(tmp_path):
    proc, _ = _snakemake(tmp_path, ["figures", "-n", "--configfile", "config/tiny.yaml"])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", log.split("Job stats:")[1], re.M))
    preset = _preset("config/tiny.yaml")
    assert int(stats["train_model"]) == len(preset.runs_needed())
    assert int(stats["figure"]) == len(preset.figures)
    assert int(stats["notebook"]) == 1
    assert f"s3://{PREFIX}/results/tiny/" in log                  # outputs live in the bucket
    assert f"s3://{PREFIX}/data/paper" not in log                  # repository files do not
    assert "network connection attempted" not in log


# ---- 2. the job the executor submits -------------------------------------------------------------

def _submitted(tmp_path: Path, preset_file: str) -> tuple[dict, object, list[str]]:
    """The Kubernetes job the real executor builds for the first training run of a preset, and
    the keys of the secret it registers for the run."""
    preset = _preset(preset_file)
    model, seed = preset.runs_needed()[0]
    summary = f"msdnet/{preset.data_summary(model)}"              # its one input, in the bucket
    proc, sent = _snakemake(tmp_path, [str(preset.model_file(model, seed)), "--configfile", preset_file,
                                       "--latency-wait", "0"], puts=[summary])
    log = proc.stdout + proc.stderr
    assert "network connection attempted" not in log
    assert len(sent.get("jobs", [])) == 1 and len(sent["secrets"]) == 1, log[-3000:]
    return sent["jobs"][0], preset, sent["secrets"][0]


def _container(job: dict) -> tuple[dict, dict]:
    pod = job["job"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def _requests_from_profile(rule: str, preset) -> dict:
    """The profile's defaults, then the preset's `resources:` of the rule, then the profile's
    set-resources (which win over a rule's own resources in Snakemake)."""
    res = (dict(PROFILE["default-resources"]) | preset.cfg.get("resources", {}).get(rule, {})
           | PROFILE["set-resources"].get(rule, {}))
    return {"memory": f"{res['mem_mb']}M", "ephemeral-storage": f"{res['disk_mb']}M"}


def _cpu(threads: int) -> str:
    """The CPU request the executor derives from a job's threads (its --kubernetes-cpu-scalar)."""
    from snakemake_executor_plugin_kubernetes import ExecutorSettings

    return f"{int(threads * ExecutorSettings.__dataclass_fields__['cpu_scalar'].default * 1000)}m"


def _check_command(container: dict, rule: str) -> None:
    assert container["command"] == ["/bin/sh"] and container["args"][0] == "-c"
    script = container["args"][1]
    steps = [s.strip() for s in script.split(" && ")]
    # the profile's precommand first, then the sources, then the job through snakemake
    assert steps[0] == "export PYTHONPATH=/workdir/src"
    assert container["working_dir"] == "/workdir"
    local = re.search(r"--local-storage-prefix base64//(\S+)", script).group(1)
    local = base64.b64decode(local).decode()
    for name in ("results", "figures"):               # the pod keeps its copies where the preset says
        assert f"ln -sfn /workdir/{name} {local}/s3/{PREFIX}/{name}" in steps
    assert any(s.startswith(f"python -m snakemake --deploy-sources s3://{PREFIX}/") for s in steps)
    job = steps[-1]
    assert job.startswith("python -m snakemake --snakefile 'Snakefile'")
    assert f"--target-jobs '{rule}:" in job and f"--default-storage-prefix 's3://{PREFIX}'" in job


def test_gpu_job_asks_for_one_nvidia_gpu_with_limits(tmp_path):
    job, preset, sent_secret_keys = _submitted(tmp_path, "config/paper-cifar100.yaml")
    assert preset.cfg["gpu_jobs"] == 1
    pod, container = _container(job)
    assert container["image"] == IMAGE
    assert job["namespace"] == PROFILE["kubernetes-namespace"]
    res = container["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "1"
    threads = preset.cfg["threads"]
    assert res["requests"]["cpu"] == _cpu(threads)
    assert res["limits"]["cpu"] == f"{threads * 1000}m"
    for key, value in _requests_from_profile("train_model", preset).items():
        assert res["requests"][key] == res["limits"][key] == value
    # the memory is the preset's, not a profile-wide guess
    assert res["requests"]["memory"] == f'{preset.cfg["resources"]["train_model"]["mem_mb"]}M'
    assert [(t["key"], t["value"], t["effect"]) for t in pod["tolerations"]] == [
        ("nvidia.com/gpu", "present", "NoSchedule")]
    assert pod["node_selector"] == {}                              # only machine_type sets one
    _check_command(container, "train_model")
    # the bucket's credentials (as docs/workflow.md sets them) reach the pod, from the run's secret
    secret = {e["name"]: e["value_from"]["secret_key_ref"]["key"] for e in container["env"]}
    assert {"SNAKEMAKE_STORAGE_S3_ACCESS_KEY", "SNAKEMAKE_STORAGE_S3_SECRET_KEY"} <= set(secret)
    assert set(secret.values()) <= set(sent_secret_keys)


def test_cpu_job_asks_for_no_gpu(tmp_path):
    job, preset, _ = _submitted(tmp_path, "config/tiny.yaml")
    assert preset.cfg["gpu_jobs"] == 0
    pod, container = _container(job)
    assert container["image"] == IMAGE
    res = container["resources"]
    assert not any("gpu" in key for part in res.values() if part for key in part)
    assert pod["tolerations"] is None
    assert res["requests"]["cpu"] == _cpu(preset.cfg["threads"])
    for key, value in _requests_from_profile("train_model", preset).items():
        assert res["requests"][key] == value
    _check_command(container, "train_model")


# ---- 3. what the profile, the extras and the Dockerfile promise ------------------------------------

def test_profile_names_only_what_the_plugins_read():
    import snakemake_executor_plugin_kubernetes as k8s
    import inspect

    assert PROFILE["executor"] == "kubernetes" and PROFILE["default-storage-provider"] == "s3"
    named = set(PROFILE["default-resources"]) | {r for rs in PROFILE["set-resources"].values() for r in rs}
    assert named <= PLUGIN_RESOURCES
    source = inspect.getsource(k8s.Executor.run_job)
    for name in named | {"gpu", "_cores"}:
        assert f'"{name}"' in source, f"the Kubernetes executor no longer reads {name}"
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    for rule in PROFILE["set-resources"]:
        assert f"rule {rule}:" in rules
    fields = {f.replace("_", "-") for f in k8s.ExecutorSettings.__dataclass_fields__}
    for key in PROFILE:
        if key.startswith("kubernetes-"):
            assert key.removeprefix("kubernetes-") in fields, key
    assert PROFILE["container-image"] == "$MSDNET_IMAGE"
    assert PROFILE["default-storage-prefix"] == "s3://$MSDNET_S3_PREFIX"


def test_extras_install_both_plugins():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = {f"snakemake-executor-plugin-{PROFILE['executor']}",
              f"snakemake-storage-plugin-{PROFILE['default-storage-provider']}"}
    for extra in ("cluster", "dev"):
        names = {re.match(r"[A-Za-z0-9_.-]+", req).group(0) for req in extras[extra]}
        assert wanted <= names, (extra, wanted - names)


def test_dockerfile_builds_the_documented_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install '\.\[cluster\]'", dockerfile, re.M)
    python = re.search(r"^FROM python:(\d+)\.(\d+)", dockerfile, re.M)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.13" and (3, 11) <= tuple(map(int, python.groups())) < (3, 13)
    # everything COPY takes is let into the build context, which starts from nothing
    ignore = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and ln[0] != "#"]
    assert ignore[0] == "*"
    copied = {src for line in re.findall(r"^COPY (.+)$", dockerfile, re.M) for src in shlex.split(line)[:-1]}
    assert copied == {ln[1:] for ln in ignore if ln.startswith("!")}
    # one image name in every place that tells how to build and use it
    guide = (ROOT / "docs" / "workflow.md").read_text()
    bullet = guide[guide.index("* **Kubernetes**"):guide.index("## What reruns when")]
    comment = (PROFILE_DIR / "config.yaml").read_text()
    names = set()
    for text in (dockerfile, bullet, comment):
        built = re.findall(r"docker build -t (\S+) \.", text)
        pushed = re.findall(r"docker push (\S+)", text)
        exported = re.findall(r"export MSDNET_IMAGE=(\S+)", text)
        assert built and pushed and exported, text[:200]
        names |= set(built) | set(pushed) | set(exported)
    assert len(names) == 1 and names.pop().split("/")[-1].split(":")[0] == "msdnet"


if __name__ == "__main__":
    sys.exit(_sandbox_main(sys.argv[1:]))
