#!/usr/bin/env bash
# Wall time of `sftkd quickstart` with its defaults (fp32), measured with /usr/bin/time: run on an idle machine.
# usage: bash scripts/time_quickstart.sh [RUNS] [extra sftkd quickstart arguments, e.g. --jobs 1]
# ONEDNN_MAX_CPU_ISA=AVX2 bash scripts/time_quickstart.sh 1   # oneDNN's kernels limited to AVX2, as on an AVX2-only CPU
set -euo pipefail
runs=${1:-3}; shift || true
out=$(mktemp -d)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); cores: $(nproc); avx512_bf16: $(grep -o -m1 avx512_bf16 /proc/cpuinfo || echo no); ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-unset}; args: $*"
for i in $(seq 1 "$runs"); do
  /usr/bin/time -f "run $i: %e s wall, %U s user, %M kB peak" sftkd quickstart --quiet --out "$out/run$i" "$@" > "$out/run$i.log"
  python -c "import json,sys; r=json.load(open(sys.argv[1])); t=r['trainings']; print('  table:', ', '.join(f\"{x['arm']} {x['test acc (last)']}\" for x in r['table']), f\"| jobs {t['jobs']}, threads {t['threads']}, notebook {r['wall_time_s']:.0f} s\")" "$out/run$i/quickstart.json"
done
