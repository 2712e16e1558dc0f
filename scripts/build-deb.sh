#!/usr/bin/env bash
# Builds the Debian package of VARSR Studio (CPU build): target/debian/varsr-studio_<version>-1_<arch>.deb
#
#   scripts/build-deb.sh              release build, then the package
#   scripts/build-deb.sh --no-build   package the existing target/release/varsr (CI, after `cargo test --release`)
#   CARGO_TARGET_DIR=DIR scripts/build-deb.sh    build and package in another target folder
#
# Installs cargo-deb from crates.io when it is missing. The package layout and dependencies are in
# Cargo.toml's [package.metadata.deb]; the desktop entry, metainfo and icons come from packaging/ and assets/icons/.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "build-deb.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! cargo deb --version >/dev/null 2>&1; then
    echo "== installing cargo-deb (crates.io)"
    cargo install cargo-deb --locked
fi

# The metadata files are checked before spending time on the build; the validators are optional here
# (Debian packages desktop-file-utils and appstream) so a developer machine without them still builds.
desktop=packaging/io.github.varsr_studio.VarsrStudio.desktop
metainfo=packaging/io.github.varsr_studio.VarsrStudio.metainfo.xml
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$desktop"
fi
if command -v appstreamcli >/dev/null; then
    appstreamcli validate --no-net "$metainfo"
fi
if [[ ! -f models/README.md ]]; then
    echo "build-deb.sh: models/README.md is missing (installed as the package's MODELS.md)" >&2
    exit 1
fi

if [[ $build == 1 ]]; then
    echo "== cargo build --release"
    cargo build --release --locked
elif [[ ! -x "${CARGO_TARGET_DIR:-target}/release/varsr" ]]; then
    echo "build-deb.sh: --no-build but ${CARGO_TARGET_DIR:-target}/release/varsr does not exist" >&2
    exit 1
fi

echo "== cargo deb"
# cargo-deb maps the asset path target/release/varsr into CARGO_TARGET_DIR when that is set.
deb=$(cargo deb --no-build --locked --output target/debian/ 2>&1 | tee /dev/stderr | tail -n 1)
if [[ ! -f "$deb" ]]; then
    echo "build-deb.sh: cargo deb did not report a package file" >&2
    exit 1
fi

echo "== contents of $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb"
echo "built $deb ($(du -h "$deb" | cut -f1))"

# Install it into an empty root, as on a fresh system (dependencies are not there, so they are not
# checked), then check what landed: the desktop entry validates and the binary runs.
echo "== dpkg -i into an empty root"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --force-script-chrootless --log=/dev/null -i "$deb"
installed_desktop="$root/usr/share/applications/$(basename "$desktop")"
[[ -f "$installed_desktop" ]] || { echo "build-deb.sh: the desktop entry was not installed" >&2; exit 1; }
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$installed_desktop"
fi
for f in usr/bin/varsr usr/share/metainfo/"$(basename "$metainfo")" usr/share/man/man1/varsr.1.gz \
    usr/share/icons/hicolor/scalable/apps/io.github.varsr_studio.VarsrStudio.svg; do
    [[ -e "$root/$f" ]] || { echo "build-deb.sh: /$f is missing from the installed package" >&2; exit 1; }
done
"$root/usr/bin/varsr" --version
echo "installed and checked in an empty root: ok"
