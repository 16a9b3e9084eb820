#!/usr/bin/env bash
# File a GPU session's outputs (what benchmarks/gpu_check.sh wrote to $OUT, as the device tool
# brought them back) under docs/benchmarks/<date>-<card>/, e.g. docs/benchmarks/2026-11-28-h100/.
#
#     bash benchmarks/collect_gpu_check.sh FOLDER      # the folder holding gpu_check.log
#
# The date and card come from FOLDER/machine.txt; the card becomes a short slug (h100, h200,
# a100, ... else the name in lower case with '-' for anything else). Copies the log, the
# machine file and every CSV and Markdown table; then review and commit the folder.
set -eu
src=${1:?usage: collect_gpu_check.sh FOLDER}
[[ -f $src/machine.txt && -f $src/gpu_check.log ]] || { echo "$src: no machine.txt or gpu_check.log" >&2; exit 1; }
date=$(sed -n 's/^date=//p' "$src/machine.txt")
card=$(sed -n 's/^card=//p' "$src/machine.txt" | tr '[:upper:]' '[:lower:]')
slug=$(grep -o '[a-z][0-9]\{2,4\}\b' <<< "$card" | head -1 || true)
[[ -n $slug ]] || slug=$(tr -cs 'a-z0-9' '-' <<< "$card" | sed 's/^-*//; s/-*$//')
dest=docs/benchmarks/${date:-undated}-${slug:-unknown}
mkdir -p "$dest"
cp "$src"/machine.txt "$src"/*.log "$dest"/
cp "$src"/*.csv "$src"/*.md "$dest"/ 2>/dev/null || true
echo "copied to $dest:"; ls "$dest"
