#!/usr/bin/env bash
# Prompt-format and input-order robustness on TREC DL19 (BM25 top-20, 43 queries): pointwise, PRP sliding and
# FIRST with SmolLM2-135M, and cosine-minilm as the control. One study at a time, each under the shared lock.
# Outputs: eval/results/robustness/<preset>/ (robustness.json, report.md/.html, plots, formats/*.yaml); the
# answer cache (not committed) in runs/robustness-dl19.sqlite, so a rerun or a resumed run is free.
# K (--formats, the template as written included) and M (--orders, shuffles besides the BM25 order) are sized
# for ~1 h 40 min on 2 shared cores (see eval/robustness.md); threads=1 because two processes with two OpenMP
# threads each on two cores ran 8x slower here (it does not change cache keys).
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--dataset trec-dl-2019/passage --depth 20 --seed 0 --set threads=1 --cache runs/robustness-dl19.sqlite
        --yes --no-progress)
run() {  # PRESET K M
  flock /tmp/rerankkit-heavy.lock "${PYTHON:-python}" -m rerankkit robustness "$1" --formats "$2" --orders "$3" "${common[@]}" \
    -o "eval/results/robustness/$1"
}
run cosine-minilm 4 4            # control: ~1 min
run pointwise-smollm2-135m 8 3   # 8 runs x ~145 s; the shuffles are answered from the cache
run first-smollm2-135m 6 4       # 10 runs x ~190 s
run prp-smollm2-135m 4 2         # 6 runs x ~460 s
"${PYTHON:-python}" eval/robustness_summary.py eval/results/robustness/{cosine-minilm,pointwise-smollm2-135m,first-smollm2-135m,prp-smollm2-135m}/robustness.json
