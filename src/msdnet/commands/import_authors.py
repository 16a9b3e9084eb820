"""msdnet import-authors: an MSDNet checkpoint of the authors' PyTorch code as our final artifact."""

from __future__ import annotations

import argparse

HELP = ("import a checkpoint of the authors' PyTorch MSDNet (kalviny/MSDNet-PyTorch) as a final "
        "artifact that msdnet predict, infer and msdnet.load_model read")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="the authors' checkpoint (a dict with 'state_dict', keys with or without "
                               "DataParallel's 'module.')")
    p.add_argument("--config", required=True, metavar="MODEL.yaml",
                   help="our model config of the same network (e.g. config/models/msdnet-imagenet-k4.yaml); "
                        "every tensor's name and shape is checked against it")
    p.add_argument("--out", required=True, metavar="OUT.pt", help="where to write the artifact")
    p.add_argument("--recipe", metavar="RECIPE.yaml",
                   help="recipe whose data: section (and train:, recorded as is) goes with the model, so "
                        "that msdnet predict knows which images to use; without it only the model is recorded")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a key of the recipe or (model.KEY=VALUE) of the model config; repeatable")
    p.add_argument("--expect-key", metavar="KEY",
                   help="refuse unless SRC with this config has this run key (the workflow's guard; "
                        "see msdnet.planning.runs.import_key)")


def run(args: argparse.Namespace) -> int:
    from ..inference.authors import import_authors
    from ..core.config import load_yaml
    from ..core.errors import ConfigError
    from ..models import parse
    from ..planning.runs import apply_overrides, import_key, resolve

    if args.recipe:
        run_cfg = resolve(args.config, args.recipe, args.set)
        model, config = dict(run_cfg.model), run_cfg.to_dict()
        if args.expect_key and import_key(args.src, run_cfg) != args.expect_key:
            raise ConfigError(f"{args.config}: {args.src} with this config is run "
                              f"{import_key(args.src, run_cfg)}, not the planned {args.expect_key} (a "
                              "config file changed after planning); re-run the workflow")
    else:
        if args.expect_key:
            raise ConfigError("--expect-key needs --recipe (the key covers the recipe)")
        sets = apply_overrides({}, args.set, args.config)
        if set(sets) - {"model"}:
            raise ConfigError(f"--set {sorted(set(sets) - {'model'})[0]}.*: only model.* keys without --recipe")
        model = {**load_yaml(args.config), **sets.get("model", {})}
        parse(model, args.config)
        config = {"model": model}
    art = import_authors(args.src, args.out, model, config, args.config)
    info = art["imported"]
    print(f"{args.out}: {len(art['model'])} tensors, {art['num_exits']} exits, from {args.src} "
          f"(sha256 {info['source_sha256'][:12]}..., epoch {info['epoch']}, best_prec1 {info['best_prec1']})")
    return 0
