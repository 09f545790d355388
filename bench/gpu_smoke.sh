#!/usr/bin/env bash
# GPU smoke test: trains the built-in tiny model through `provenir train` on CUDA and prints, for
# each path, the manifest fields that prove what ran.
#
#   qlora  QLoRA: base model in 4-bit NF4 (bitsandbytes), bf16 compute, LoRA adapter
#   bf16   LoRA in bf16, base model unquantised
#   ddp    DDP over NCCL, 2 processes on 2 GPUs of this machine (skipped with a message when fewer
#          than 2 GPUs are visible, unless asked for by name, which then counts as a failure)
#
# Usage:  bench/gpu_smoke.sh [qlora] [bf16] [ddp]          (no argument: all three)
# Env:    PYTHON (default python3) with provenir[train] installed, and bitsandbytes for qlora;
#         SMOKE_DIR (default: a new temporary folder) for the artifacts; STEPS (default 5).
# Exit:   0 every requested path ran and its manifest shows it; 1 a requested path failed;
#         2 usage error; 3 no CUDA GPU visible to torch (nothing was run).
set -u -o pipefail

PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-5}
EXIT_FAILED=1
EXIT_USAGE=2
EXIT_NO_CUDA=3

paths=("$@")
explicit=1
if [ ${#paths[@]} -eq 0 ]; then
  paths=(qlora bf16 ddp)
  explicit=0
fi
for p in "${paths[@]}"; do
  case "$p" in
    qlora | bf16 | ddp) ;;
    -h | --help)
      sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "gpu_smoke: unknown path '$p' (choose from: qlora bf16 ddp)" >&2
      exit "$EXIT_USAGE"
      ;;
  esac
done

# Refuse before anything else: every path here needs CUDA, and a CPU run would prove nothing.
if ! gpus=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null); then
  echo "gpu_smoke: no CUDA GPU: torch cannot be imported by $PYTHON (set PYTHON to the interpreter with provenir[train])" >&2
  exit "$EXIT_NO_CUDA"
fi
if [ "${gpus:-0}" -lt 1 ]; then
  echo "gpu_smoke: no CUDA GPU visible to torch (torch.cuda.is_available() is False); nothing was run. Run this on a machine with an NVIDIA GPU and a CUDA build of torch." >&2
  exit "$EXIT_NO_CUDA"
fi

SMOKE_DIR=${SMOKE_DIR:-$(mktemp -d -t provenir-gpu-smoke.XXXXXX)}
mkdir -p "$SMOKE_DIR"
echo "gpu_smoke: $gpus CUDA GPU(s) visible; artifacts in $SMOKE_DIR; $STEPS steps per path"

provenir() {
  "$PYTHON" -c 'import sys; from provenir.cli.main import main; sys.argv[0] = "provenir"; sys.exit(main())' "$@"
}

# Print the manifest fields that show what ran, and check them against what the path asked for.
show_manifest() {
  local path=$1 manifest=$2
  "$PYTHON" - "$path" "$manifest" <<'PY'
import json
import sys

path, file = sys.argv[1], sys.argv[2]
m = json.load(open(file, encoding="utf-8"))
env = m.get("environment", {})
torch_env = env.get("torch", {})
config = m.get("config", {})
dist = m.get("distributed") or {}
facts = {
    "status": m.get("status"),
    "device": env.get("device"),
    "precision": config.get("precision"),
    "quantisation": "4-bit nf4" if config.get("peft", {}).get("load_in_4bit") else "none",
    "bitsandbytes": env.get("packages", {}).get("bitsandbytes"),
    "world_size": dist.get("world_size", m.get("extra", {}).get("world_size", 1)),
    "dist_backend": dist.get("dist_backend"),
    "torch": torch_env.get("version"),
    "torch.cuda": torch_env.get("cuda"),
    "nccl": torch_env.get("nccl"),
    "gpus": ", ".join(g.get("name", "?") for g in torch_env.get("gpus", [])) or None,
    "adapter_hash": (m.get("adapter_hash") or "")[:16] or None,
}
for key, value in facts.items():
    print(f"    {key:<13} {value}")
expected = {"status": "completed", "device": "cuda", "precision": "bf16"}
if path == "qlora":
    expected["quantisation"] = "4-bit nf4"
if path == "ddp":
    expected.update(world_size=2, dist_backend="nccl")
wrong = [f"{k} is {facts[k]!r}, expected {v!r}" for k, v in expected.items() if facts[k] != v]
if facts["torch.cuda"] is None:
    wrong.append("torch.cuda is not recorded")
if path == "ddp" and facts["nccl"] is None:
    wrong.append("nccl version is not recorded")
for line in wrong:
    print(f"    MISMATCH: {line}")
sys.exit(1 if wrong else 0)
PY
}

failed=()
ran=()
skipped=()

run_path() {
  local path=$1
  shift
  local out="$SMOKE_DIR/$path" log="$SMOKE_DIR/$path.log" id_file="$SMOKE_DIR/$path.run_id"
  echo "== $path: provenir train --set device=cuda --set precision=bf16 $*"
  local started=$SECONDS
  if ! provenir train --run-id-file "$id_file" \
    --set "output_dir=$out" --set device=cuda --set precision=bf16 --set "max_steps=$STEPS" \
    --set data.max_samples=32 --set batch_size=4 "$@" >"$log" 2>&1; then
    echo "   FAILED after $((SECONDS - started))s; last lines of $log:"
    tail -n 15 "$log" | sed 's/^/    /'
    failed+=("$path")
    return
  fi
  local manifest
  manifest="$out/manifests/$(tr -d '[:space:]' <"$id_file").json"
  echo "   trained in $((SECONDS - started))s; manifest $manifest"
  if show_manifest "$path" "$manifest"; then
    ran+=("$path")
  else
    failed+=("$path")
  fi
}

for path in "${paths[@]}"; do
  case "$path" in
    qlora) run_path qlora --set peft.load_in_4bit=true ;;
    bf16) run_path bf16 ;;
    ddp)
      if [ "$gpus" -lt 2 ]; then
        echo "== ddp: skipped: DDP over NCCL needs 2 GPUs on this machine; $gpus visible"
        if [ "$explicit" -eq 1 ]; then
          failed+=("ddp (needs 2 GPUs)")
        else
          skipped+=("ddp")
        fi
      else
        # Gradient checkpointing off, as in the CPU DDP tests: the smoke test is about NCCL.
        run_path ddp --set distributed.strategy=ddp --set distributed.num_gpus=2 \
          --set gradient_checkpointing=false
      fi
      ;;
  esac
done

echo "gpu_smoke: ran: ${ran[*]:-none}; skipped: ${skipped[*]:-none}; failed: ${failed[*]:-none}"
if [ ${#failed[@]} -gt 0 ]; then
  exit "$EXIT_FAILED"
fi
exit 0
