"""Stand-ins for SLURM's commands, for tests/test_slurm_profile.py: the SLURM executor plugin
submits to these instead of a cluster. The test links sbatch, srun, sacct, squeue, scancel, sinfo,
scontrol, sacctmgr and sshare to this file. Every call is appended to $SHIM_STATE_DIR/calls.jsonl
(not SLURM_*: the jobstep plugin drops those) as {"cmd": name, "args": [...]}, sbatch's also with
the job's "script".

sbatch runs the job in the background on this machine, in its -D folder, and prints the job id
(--parsable); srun runs its command in the foreground; sacct/squeue list each job of a --name as
`<id>|RUNNING` until it exits, then COMPLETED or FAILED (the `<id>|<state>` the plugin parses);
the rest answer as a cluster with partitions cpu and gpu and no accounts would."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ["SHIM_STATE_DIR"])
JOBS = STATE / "jobs"
# A status query with nothing new to say blocks until a job of its run changes state (at most this
# long): the plugin waits 10 s longer after each query where nothing finished, so answering when
# one does keeps it at its initial interval. Below the plugin's 60 s timeout for one query.
WAIT_S = 45.0


def _record(cmd: str, args: list[str], **extra) -> None:
    with open(STATE / "calls.jsonl", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps({"cmd": cmd, "args": args, **extra}) + "\n")


def _option(args: list[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        for name in names:
            if a == name and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(name + "="):
                return a.split("=", 1)[1]
    return None


def _next_id() -> int:
    JOBS.mkdir(parents=True, exist_ok=True)
    with open(STATE / "counter", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = int(f.read() or 1000) + 1
        f.seek(0)
        f.truncate()
        f.write(str(n))
    return n


def sbatch(args: list[str]) -> int:
    script = _option(args, "--wrap")
    if script is None:  # --slurm-pass-command-as-script: the script comes on stdin
        script = sys.stdin.read()
    _record("sbatch", args, script=script)
    jobid = _next_id()
    log = (_option(args, "--output", "-o") or str(JOBS / "%j.log")).replace("%j", str(jobid))
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    (JOBS / f"{jobid}.name").write_text(_option(args, "--job-name", "-J") or "noname")
    rc = shlex.quote(str(JOBS / f"{jobid}.rc"))
    env = {**os.environ, "SLURM_JOB_ID": str(jobid), "SLURM_JOBID": str(jobid)}
    gpus = _option(args, "--gpus")
    if gpus:
        env["SLURM_GPUS"] = gpus
    wrapped = f"( {script}\n) ; echo $? > {rc}.tmp && mv {rc}.tmp {rc}"
    with open(log, "ab") as out:
        subprocess.Popen(["/bin/sh", "-c", wrapped], cwd=_option(args, "-D", "--chdir") or os.getcwd(),
                         env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    print(jobid if "--parsable" in args else f"Submitted batch job {jobid}")
    return 0


def _rows(name: str) -> list[str]:
    rows = []
    for f in sorted(JOBS.glob("*.name")) if JOBS.exists() else []:
        if f.read_text() != name:
            continue
        rc = JOBS / f"{f.stem}.rc"
        state = "RUNNING" if not rc.exists() else ("COMPLETED" if rc.read_text().strip() == "0" else "FAILED")
        rows.append(f"{f.stem}|{state}")
    return rows


def status(args: list[str]) -> int:
    """`<id>|<state>` of each job of --name: at once if they changed since the last answer (a
    submission, a job that ended), else once one of them changes or after WAIT_S."""
    name = _option(args, "--name")
    if name is None:  # sacct -j ID (a failed job's reason or node), sacct -o Account: nothing
        return 0
    last_file = STATE / f"last-answer-{name}"
    last = last_file.read_text().splitlines() if last_file.exists() else None
    deadline, rows = time.monotonic() + WAIT_S, _rows(name)
    while rows == last and any(r.endswith("|RUNNING") for r in rows) and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = _rows(name)
    last_file.write_text("\n".join(rows))
    print("\n".join(rows))
    return 0


def srun(args: list[str]) -> int:
    i = 0
    while i < len(args) and args[i].startswith("-"):  # srun's own options are all -x or --x=y
        i += 1
    cmd = args[i:]
    if cmd == ["sh", "-s"]:  # --slurm-jobstep-pass-command-as-script: the script on stdin
        return subprocess.run(["/bin/sh", "-s"], stdin=sys.stdin).returncode
    return subprocess.run(cmd).returncode


def main() -> int:
    cmd, args = Path(sys.argv[0]).name, sys.argv[1:]
    if cmd == "sbatch":
        return sbatch(args)
    _record(cmd, args)
    if cmd == "srun":
        return srun(args)
    if cmd in ("sacct", "squeue"):
        return status(args)
    if cmd == "sinfo":
        print("PARTITION\ncpu*\ngpu")
        return 0
    if cmd == "scontrol":
        print("MaxArraySize            = 1001\nMinJobAge               = 300 sec")
        return 0
    if cmd in ("scancel", "sacctmgr", "sshare"):
        return 0
    print(f"slurm shim: unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
