#!/usr/bin/env bash
# The tiny-reasoner's model card, end to end, by the commands it lists: train (or resume) the run, judge it on
# validation seed 2, ship it, look at test seed 1 once, run every sweep the card draws from and redraw every figure
# into the preset folder. The card's numbers are then read from WORK/ (summary.json, each figure's CSV and
# index.md) into MODEL_CARD.md by hand: a card is written, not generated.
#
#   training/redraw-card.sh RUN_DIR [WORK_DIR]      # e.g. runs/tiny-reasoner-4000 runs/card
#
# About 3 hours on 2 CPU cores after training (the ensemble sweep is ~2 h of it); minutes on a GPU. Each step is
# skipped when its output exists, so a killed run resumes with the same command. SHIP=0 stops after the validation
# table (the choice is made on seed 2 only; test seed 1 is looked at after shipping, once).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: training/redraw-card.sh RUN_DIR [WORK_DIR]}
WORK=${2:-runs/card}
PRESET=cos_ray/model/presets/tiny-reasoner
mkdir -p "$WORK"

step() { [ -e "$1" ] && echo "== have $1" && return 1; echo "== $2"; return 0; }

cos-ray train training/configs/tiny-reasoner.yaml --out "$RUN" --quiet  # resumes; a finished run is exported again
if step "$WORK/val-seed2" "validation seed 2 (n = 40): the choice"; then
    cos-ray train-eval "$RUN/export" --seed 2 --n 40 --methods model --out "$WORK/val-seed2"
fi
cat "$WORK/val-seed2/summary.json"
[ "${SHIP:-1}" = 1 ] || exit 0

python -m cos_ray.training.ship "$RUN"  # the weights into the preset; the card and its PNGs are kept
python -m cos_ray.figures.loss "$RUN" "$PRESET/loss_curve.png"
python -m cos_ray.training.vae_preview tiny-reasoner "$PRESET/vae_round_trip.png"
if step "$WORK/test-seed1" "test seed 1 (n = 100), looked at once"; then
    cos-ray train-eval tiny-reasoner --seed 1 --n 100 --out "$WORK/test-seed1"
fi

# One store per job, as the card's commands; `figures NAME --to DIR` writes NAME.png/.svg/.csv/.sql + index.md.
sweep() {  # JOB STORE
    local name; name=$(basename "$1" .yaml)
    if step "$WORK/$2/.done-$name" "sweep $name"; then
        cos-ray submit "$1" --out "$WORK/$2" && touch "$WORK/$2/.done-$name"
    fi
}
figure() {  # SWEEP STORE FIGURE PNG [VERDICT]
    cos-ray figures "$1" --only "$3" ${5:+--verdict "$5"} --overwrite --to "$WORK/figures/$3" --out "$WORK/$2"
    cp "$WORK/figures/$3/$3.png" "$PRESET/$4"
}
sweep jobs/tiny-reasoner-heldout.yaml results-tr
figure tiny-reasoner-heldout results-tr chain-of-steps chain_of_steps.png solved
sweep jobs/paper/fig3b-noise-step-vs-frame-tiny-reasoner.yaml results-3b
figure fig3b-noise-step-vs-frame-tiny-reasoner results-3b fig3b probe_noise_step_vs_frame.png solved
sweep jobs/paper/fig3c-cka-sensitivity-tiny-reasoner.yaml results-3c
figure fig3c-cka-sensitivity-tiny-reasoner results-3c fig3c probe_cka.png
sweep jobs/paper/fig5-energy-tiny-reasoner.yaml results-5
figure fig5-energy-tiny-reasoner results-5 fig5 probe_energy.png
figure fig5-energy-tiny-reasoner results-5 fig5-maps probe_energy_maps.png
sweep jobs/paper/fig6-swap-by-layer-tiny-reasoner.yaml results-6
figure fig6-swap-by-layer-tiny-reasoner results-6 fig6 probe_swap_by_layer.png solved
sweep jobs/tiny-reasoner-ensemble.yaml results-ens
figure tiny-reasoner-ensemble results-ens ensemble ensemble.png solved

# The filmstrip of held-out maze 00006 (test seed 1): x̂0 at every step, labelled rows (steps) and columns (frames).
if step "$WORK/filmstrip" "filmstrip of test maze 00006"; then
    cos-ray tasks generate --for-model tiny-reasoner --n 7 --seed 1 --out "$WORK/test-mazes"
    cos-ray generate "$WORK/test-mazes/In-Domain_50/maze/00006" --model tiny-reasoner --seed 0 --x0-every 1 \
        --out "$WORK/filmstrip"
fi
cp "$WORK/filmstrip/filmstrip.png" "$PRESET/filmstrip_maze00006.png"
echo "redrawn: $PRESET/*.png; numbers for MODEL_CARD.md in $WORK (val-seed2, test-seed1, figures/*/index.md)"
