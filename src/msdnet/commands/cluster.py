"""msdnet cluster: run the workflow with a cluster profile once its Snakemake plugins are there.

    msdnet cluster slurm figures --configfile config/paper-cifar100.yaml

is ``snakemake --workflow-profile profiles/slurm figures --configfile ...`` (with this
Python's Snakemake), after checking that the profile's executor plugin (and storage plugin, if it
or the arguments name one) can be imported. A missing plugin is one line naming the pip install,
exit 1 (Snakemake itself prints a page of usage). Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..planning.cluster import (commands_message, environment_message, missing_commands,
                                missing_environment, missing_message, profile_dir, required_plugins)
from ..core.errors import ConfigError

HELP = ("run the workflow with a cluster profile (profiles/PROFILE) after checking that "
        "its Snakemake plugins are installed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true",
                   help="only check the plugins (exit 0 when installed, 1 when not)")
    p.add_argument("profile", metavar="PROFILE", help="a folder of profiles/, e.g. slurm or kubernetes")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, metavar="SNAKEMAKE_ARG",
                   help="passed on to snakemake, e.g. figures --configfile config/paper-cifar100.yaml")


def run(args: argparse.Namespace) -> int:
    profile = profile_dir(args.profile)
    extra = list(args.snakemake_args)
    if any(a in ("--workflow-profile", "--profile") or a.startswith(("--workflow-profile=", "--profile="))
           for a in extra):
        raise ConfigError("give the profile as PROFILE only, not --workflow-profile/--profile")
    missing = [p for p in required_plugins(profile, extra) if not p.installed()]
    if missing:
        print(missing_message(profile, missing), file=sys.stderr)
        return 1
    env = missing_environment(profile, extra)
    if env:
        print(environment_message(profile, env), file=sys.stderr)
        return 1
    commands = missing_commands(profile, extra)
    if commands:
        print(commands_message(profile, commands), file=sys.stderr)
        return 1
    if args.check:
        return 0
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", profile.as_posix(), *extra]
    sys.stdout.flush()
    os.execv(sys.executable, cmd)
    return 0  # not reached
