#!/usr/bin/env bash
# Screenshots of the main states of the window, taken under Xvfb and driven with xdotool, plus the
# window's CPU use while idle. Writes screenshots/*.png.
#
# Debian packages: xvfb x11-apps xdotool imagemagick, and a software GPU driver for wgpu:
# libegl1 libegl-mesa0 libgl1-mesa-dri (GL) or mesa-vulkan-drivers libvulkan1 (Vulkan).
#
# The model is the built-in one (models/varsr-studio-small.safetensors) when it exists, else the
# tiny random-weight test fixture (whose output is noise); VARSR_MODEL names another one. SCALES is
# the model's number of scales (8 for the built-in model, 10 for the release and the fixture).
set -euo pipefail
cd "$(dirname "$0")/.."

out=screenshots
builtin=models/varsr-studio-small.safetensors
if [ -f "$builtin" ]; then
    model=${VARSR_MODEL:-$builtin}
    scales=${SCALES:-8}
else
    model=${VARSR_MODEL:-tests/fixtures/parity/parity-d2}
    scales=${SCALES:-10}
fi
display_num=${SCREENSHOT_DISPLAY:-97}
# Seconds one upscale of the sample may take at most.
job_wait=${JOB_WAIT:-300}

for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install xvfb xdotool imagemagick)" >&2; exit 1; }
done

cargo build --release --bin varsr

tmp=$(mktemp -d)
xvfb_pid=
app_pid=
cleanup() {
    [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
    [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# A fresh settings folder: the screenshots show the defaults, and the person's settings stay.
export XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data HOME=$tmp/home
mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$HOME/Pictures"
cp assets/samples/butterfly_128.png "$tmp/butterfly.png"

Xvfb ":$display_num" -screen 0 1280x820x24 -nolisten tcp &
xvfb_pid=$!
export DISPLAY=":$display_num"
unset WAYLAND_DISPLAY
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done

VARSR_MODEL=$model VARSR_DEVICE=cpu ./target/release/varsr "$tmp/butterfly.png" \
    >"$tmp/app.log" 2>&1 &
app_pid=$!

wid=$(xdotool search --sync --onlyvisible --name "VARSR Studio" | head -n1)
xdotool windowmove "$wid" 0 0 windowsize "$wid" 1280 820 windowfocus --sync "$wid" || true
mkdir -p "$out"

shot() {
    sleep "${2:-1}"
    import -window root "$out/$1.png"
    echo "  $out/$1.png"
}
key() { xdotool key --clearmodifiers "$@"; }
# Waits until the app's log (mirrored to stderr) has a line matching $1.
wait_log() {
    for _ in $(seq $((job_wait * 10))); do
        grep -qE "$1" "$tmp/app.log" && return 0
        sleep 0.1
    done
    echo "timed out waiting for: $1" >&2
    tail -n 20 "$tmp/app.log" >&2
    return 1
}

echo "Screenshots:"
wait_log "Model loaded"
wait_log "Opened butterfly"
shot 01-opened 1
key Return
wait_log "Job 1: Upscale"
shot 02-generating 2.5
wait_log "Job 1: .* in [0-9.]+ s"
shot 03-result 1
key 2
shot 04-zoom-200 0.5
xdotool keydown space
shot 05-hold-space-input 0.5
xdotool keyup space
key 0 m
shot 06-split 0.5
# From the last scale back to scale 3 (of 1…scales).
back=$(printf 'Left %.0s' $(seq $((scales - 2))))
key $back
shot 07-scale-3 0.5
key ${back//Left/Right} m
key ctrl+s
wait_log "Saved "
shot 08-exported 0.5
key ctrl+s
shot 09-overwrite-question 1
key Escape l
shot 10-result-only-with-log 0.5
key l
sleep 0.5
key F1
shot 11-shortcuts 0.5
key F1
# Back to side by side, then the trust view (what the model invented over bicubic).
key m t
wait_log "Trust view \("
shot 12-trust-view 0.5
key t
# Re-sample a region: Shift+drag a rectangle over the result, then "Re-sample region" (with the
# result's own settings it rolls a new seed). Coordinates are for the 1280×820 window: the result
# pane's picture spans x 824–1267, y 174–617. The pauses let the window see each step in a frame.
xdotool mousemove 1000 300 keydown shift
sleep 0.2
xdotool mousedown 1
sleep 0.2
xdotool mousemove 1050 350
sleep 0.2
xdotool mousemove 1150 450
sleep 0.2
xdotool mouseup 1
sleep 0.2
xdotool keyup shift
sleep 0.3
xdotool mousemove 66 338 click 1
wait_log "Job 2: .* in [0-9.]+ s"
xdotool mousemove 640 780
shot 13-region-resampled 1

# CPU use of the idle window: processor time over a few seconds of doing nothing.
ticks() { awk '{print $14 + $15}' "/proc/$app_pid/stat"; }
hz=$(getconf CLK_TCK)
sleep 2
t0=$(ticks)
sleep 5
t1=$(ticks)
echo "Idle CPU: $(( (t1 - t0) * 1000 / hz )) ms of processor time in 5 s ($(awk "BEGIN{printf \"%.1f\", ($t1-$t0)/$hz/5*100}") %)"
echo "App log: $tmp/app.log (removed on exit)"; tail -n 5 "$tmp/app.log" || true
