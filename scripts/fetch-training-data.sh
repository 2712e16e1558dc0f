#!/usr/bin/env bash
# Fetches the photos the default model is trained on, from Debian packages, without installing them
# (`apt-get download` + `dpkg-deb -x`), and cuts them into training patches.
#
# Output (gitignored): work-data/photos/*.png (each photo downscaled 2x to hide JPEG artefacts) and
# work-data/patches.bin (see src/train/data.rs). Set5/Set14 are never used here: they are for evaluation.
#
# Usage: scripts/fetch-training-data.sh [WORK_DIR]   (default: work-data)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-work-data}"
PACKAGES=(lomiri-wallpapers-16.04 plasma-workspace-wallpapers mate-backgrounds palapeli-data)
mkdir -p "$WORK/debs" "$WORK/extract" "$WORK/photos"

if [ ! -f "$WORK/debs/.done" ]; then
    if ! (cd "$WORK/debs" && apt-get download "${PACKAGES[@]}"); then
        echo "apt-get download failed; try 'apt-get update' first" >&2
        exit 1
    fi
    touch "$WORK/debs/.done"
fi
for deb in "$WORK"/debs/*.deb; do
    dpkg-deb -x "$deb" "$WORK/extract"
done
# Record what was fetched (package, version, licence file) for the model card.
: > "$WORK/sources.txt"
for deb in "$WORK"/debs/*.deb; do
    dpkg-deb -f "$deb" Package Version >> "$WORK/sources.txt"
done

# Photos only: JPEG files of at least 2 megapixels (the packages also hold drawings and small thumbnails).
python3 - "$WORK" <<'PY'
import os, re, sys
from PIL import Image
work = sys.argv[1]
out = os.path.join(work, "photos")
# Wallpaper packages ship one picture at several sizes (`.../images/1920x1080.jpg`, `Foo_3840x2160.jpg`):
# keep the largest of each.
best = {}
for root, _, files in sorted(os.walk(os.path.join(work, "extract"))):
    for f in sorted(files):
        if not f.lower().endswith((".jpg", ".jpeg")):
            continue
        p = os.path.join(root, f)
        try:
            with Image.open(p) as im:
                w, h = im.size
        except Exception as e:
            print("skip", p, e)
            continue
        if w * h < 2_000_000:
            continue
        rel = os.path.relpath(p, os.path.join(work, "extract"))
        key = re.sub(r"[_/]?\d+x\d+$", "", os.path.splitext(rel)[0])
        key = key.replace("/contents/images", "").replace("usr/share/", "").replace("/", "_")
        if key not in best or best[key][0] < w * h:
            best[key] = (w * h, p)
for key, (_, p) in sorted(best.items()):
    dst = os.path.join(out, key + ".png")
    if os.path.exists(dst):
        continue
    im = Image.open(p).convert("RGB")
    # Downscale 2x (box filter) so that JPEG blocking and demosaicking noise vanish.
    im.reduce(2).save(dst, compress_level=1)
print(f"{len(best)} photos in {out}")
PY
